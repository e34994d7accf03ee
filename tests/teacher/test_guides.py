"""Guides for forgetting patients: folds of nights, and each example's target from the guide that
never saw its night."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import teacher


class Constant(nn.Module):
    """Gives every input the same class probabilities."""

    def __init__(self, probabilities):
        super().__init__()
        self.logits = nn.Parameter(torch.log(torch.tensor(probabilities)))

    def forward(self, inputs):
        return self.logits.expand(len(inputs), -1)


def test_folds_hold_every_night_once_and_each_kind_is_dealt_out():
    nights = [f"a{i:02d}" for i in range(1, 11)] + ["b01", "b02", "c01", "c02", "c03"]
    folds = teacher.guide_folds(nights, 5)
    assert sorted(night for fold in folds for night in fold) == sorted(nights)
    assert [len(fold) for fold in folds] == [3] * 5
    assert all(sum(night.startswith("a") for night in fold) == 2 for fold in folds)
    assert len(teacher.guide_folds(["a01", "b01", "c01"], 5)) == 3  # never an empty fold


def test_each_example_gets_the_outputs_of_the_guide_that_never_saw_its_night():
    folds = [["a01", "b01"], ["c01"]]
    guides = [Constant([0.9, 0.1]), Constant([0.2, 0.8])]
    nights = np.array(["c01", "a01", "b01", "c01"])
    targets = teacher.guide_targets(guides, folds, np.zeros((4, 3), dtype=np.float32), nights)
    expected = torch.tensor([[0.2, 0.8], [0.9, 0.1], [0.9, 0.1], [0.2, 0.8]])
    assert torch.allclose(torch.softmax(targets, dim=1), expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"no guide was trained without night\(s\) \['x01'\]"):
        teacher.guide_targets(guides, folds, np.zeros((1, 3), dtype=np.float32), np.array(["x01"]))
