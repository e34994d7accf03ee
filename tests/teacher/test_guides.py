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


def test_each_split_holds_every_night_once_and_deals_out_each_kind():
    nights = [f"a{i:02d}" for i in range(1, 11)] + ["b01", "b02", "c01", "c02", "c03"]
    folds = teacher.guide_folds(nights, 5, partitions=2)
    assert len(folds) == 10
    for split in (folds[:5], folds[5:]):
        assert sorted(night for fold in split for night in fold) == sorted(nights)
        assert [len(fold) for fold in split] == [3] * 5
        assert all(sum(night.startswith("a") for night in fold) == 2 for fold in split)
    assert {frozenset(fold) for fold in folds[:5]} != {frozenset(fold) for fold in folds[5:]}
    assert teacher.guide_folds(nights, 5, partitions=1) == folds[:5]
    # never an empty fold; three nights split only one way, so the second split is not repeated
    assert len(teacher.guide_folds(["a01", "b01", "c01"], 5, partitions=2)) == 3


def test_apart_partitions_hold_fewer_nights_out_together_again():
    nights = list(teacher.LEARNING_RECORDS)

    def repeated_pairs(folds):
        first, second = ({frozenset((x, y)) for fold in split for x in fold for y in fold if x < y}
                         for split in (folds[:5], folds[5:]))
        return len(first & second)

    random_folds = teacher.guide_folds(nights, 5, partitions=2)
    apart_folds = teacher.guide_folds(nights, 5, partitions=2, apart=True)
    assert apart_folds[:5] == random_folds[:5]  # the first split is the same
    assert sorted(night for fold in apart_folds[5:] for night in fold) == sorted(nights)
    assert all(sum(night.startswith("a") for night in fold) == 4 for fold in apart_folds[5:])
    # 5 folds of 7 from 5 earlier folds share at least 2 pairs each: 10 is the floor
    assert 10 <= repeated_pairs(apart_folds) < repeated_pairs(random_folds)


def test_each_example_gets_the_outputs_of_the_guide_that_never_saw_its_night():
    folds = [["a01", "b01"], ["c01"]]
    guides = [Constant([0.9, 0.1]), Constant([0.2, 0.8])]
    nights = np.array(["c01", "a01", "b01", "c01"])
    targets = teacher.guide_targets(guides, folds, np.zeros((4, 3), dtype=np.float32), nights)
    expected = torch.tensor([[0.2, 0.8], [0.9, 0.1], [0.9, 0.1], [0.2, 0.8]])
    assert torch.allclose(torch.softmax(targets, dim=1), expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"no guide was trained without night\(s\) \['x01'\]"):
        teacher.guide_targets(guides, folds, np.zeros((1, 3), dtype=np.float32), np.array(["x01"]))
    with pytest.raises(ValueError, match="no examples"):
        teacher.guide_targets(guides, folds, np.zeros((0, 3), dtype=np.float32), np.array([], dtype=str))


def test_a_night_left_out_by_guides_of_several_splits_gets_their_mean_probabilities():
    folds = [["a01", "b01"], ["c01"], ["a01"], ["b01", "c01"]]
    guides = [Constant([0.9, 0.1]), Constant([0.2, 0.8]), Constant([0.5, 0.5]), Constant([0.4, 0.6])]
    nights = np.array(["a01", "b01", "c01"])
    targets = teacher.guide_targets(guides, folds, np.zeros((3, 3), dtype=np.float32), nights)
    expected = torch.tensor([[0.7, 0.3], [0.65, 0.35], [0.3, 0.7]])
    assert torch.allclose(torch.softmax(targets, dim=1), expected, atol=1e-6)


def test_a_drawn_target_is_one_guide_per_example_and_every_guide_gets_drawn():
    folds = [["a01"], ["a01"]]
    guides = [Constant([0.9, 0.1]), Constant([0.2, 0.8])]
    nights = np.array(["a01"] * 400)
    targets = torch.softmax(teacher.guide_targets(guides, folds, np.zeros((400, 3), dtype=np.float32), nights,
                                                  draw_seed=0), dim=1)
    first = torch.isclose(targets, torch.tensor([0.9, 0.1]), atol=1e-6).all(1)
    second = torch.isclose(targets, torch.tensor([0.2, 0.8]), atol=1e-6).all(1)
    assert bool((first | second).all())  # never a mix of the two
    assert 150 < int(first.sum()) < 250  # each guide about half the time
    again = teacher.guide_targets(guides, folds, np.zeros((400, 3), dtype=np.float32), nights, draw_seed=0)
    assert torch.equal(torch.softmax(again, dim=1), targets)


def test_completing_a_guide_trains_a_copy_on_what_the_retained_data_hold_of_its_fold():
    folds = [["a01", "b01"], ["c01"]]
    guides = [Constant([0.9, 0.1]), Constant([0.5, 0.5])]
    # D_r: a01 (the guide's fold-mate of the forgotten b01) all class 1; c01, which it saw, half and half
    nights = np.array(["a01"] * 64 + ["c01"] * 64)
    labels = np.array([1] * 64 + [0, 1] * 32)
    inputs = np.zeros((128, 3), dtype=np.float32)
    config = teacher.TrainConfig(batch_size=16)
    completed = teacher.complete_guides(guides, folds, ["b01"], config, inputs, labels, nights, epochs=3, lr=0.1)
    assert completed[1] is guides[1]  # its fold holds no forgotten night: not needed, not touched
    assert torch.allclose(torch.softmax(guides[0].logits, 0), torch.tensor([0.9, 0.1]))  # the guide is kept
    before, after = (torch.softmax(guide(torch.zeros(1, 3)), 1)[0, 1] for guide in (guides[0], completed[0]))
    # three quarters of what it trained on were class 1 (all of a01, half the replayed c01)
    assert after > 0.5 > before
    again = teacher.complete_guides(guides, folds, ["b01"], config, inputs, labels, nights, epochs=3, lr=0.1)
    assert torch.equal(again[0].logits, completed[0].logits)  # seeded
