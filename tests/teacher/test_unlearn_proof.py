"""The evidence of the unlearning certificate, on cases whose answers are known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import teacher
from teacher._unlearn_proof import (
    Examples,
    ShadowAttack,
    example_epsilons,
    forgetting_score,
    output_distance,
    threshold_attack_auc,
)


def memoriser(inputs: torch.Tensor, labels: torch.Tensor, seed: int = 0, epochs: int = 300) -> nn.Module:
    """An MLP that learns random labels by heart: sure of its members, guessing elsewhere."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(inputs.shape[1], 256), nn.ReLU(), nn.Linear(256, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(inputs), labels).backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def random_labels():
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(600, 20, generator=generator)
    labels = torch.randint(0, 2, (600,), generator=generator)
    members, unseen, shadow_unseen = (Examples(inputs[s], labels[s]) for s in (slice(0, 200), slice(200, 400),
                                                                               slice(400, 600)))
    return members, unseen, shadow_unseen, memoriser(members.inputs, members.labels)


def test_threshold_attack_finds_memorised_members(random_labels):
    members, unseen, _, model = random_labels
    pairs = lambda e: (e.inputs, e.labels)  # noqa: E731
    # Half the unseen examples get their random label right by chance, confidently: 0.75 is the floor.
    assert threshold_attack_auc(model, pairs(members), pairs(unseen)) > 0.8
    # Two sets the model never saw cannot be told apart.
    assert abs(threshold_attack_auc(model, pairs(unseen), pairs(random_labels[2])) - 0.5) < 0.1


def test_shadow_attack_trained_on_one_memoriser_finds_another_ones_members(random_labels):
    members, unseen, shadow_unseen, target = random_labels
    generator = torch.Generator().manual_seed(1)
    shadow_members = Examples(torch.randn(200, 20, generator=generator), torch.randint(0, 2, (200,), generator=generator))
    shadow = memoriser(shadow_members.inputs, shadow_members.labels, seed=1)
    attack = ShadowAttack(shadow, (shadow_members.inputs, shadow_members.labels),
                          (shadow_unseen.inputs, shadow_unseen.labels))
    assert attack.auc(target, (members.inputs, members.labels), (unseen.inputs, unseen.labels)) > 0.8


def test_output_distance_is_zero_to_itself_and_grows_with_disagreement(random_labels):
    members, _, _, model = random_labels
    other = memoriser(members.inputs, 1 - members.labels, seed=2)
    assert output_distance(model, model, members.inputs) == pytest.approx(0.0, abs=1e-9)
    assert output_distance(model, other, members.inputs) > 0.5  # ln 2 = 0.69 is total disagreement


def test_epsilon_is_zero_for_the_same_outputs_and_bounded_by_the_references_when_apart():
    same = np.tile(np.linspace(-2, 2, 5), (4, 1))
    assert np.all(example_epsilons(same, same) == 0)
    apart = example_epsilons(np.full((4, 3), 5.0), np.full((4, 3), -5.0), delta=0.01)
    # All 4 unlearned above every retrained: the add-half rates are 0.5 / 5, so epsilon = log(0.89 / 0.1).
    np.testing.assert_allclose(apart, math.log((1 - 0.01 - 0.1) / 0.1))


def test_forgetting_score_bins():
    assert forgetting_score(np.zeros(10)) == 1.0
    assert forgetting_score(np.full(10, 0.7)) == 0.5
    assert forgetting_score(np.r_[np.zeros(5), np.full(5, 1.2)]) == pytest.approx((1.0 + 0.25) / 2)


def test_certify_a_model_against_itself_holds_and_against_a_memoriser_fails(random_labels):
    members, unseen, shadow_unseen, model = random_labels
    forgot = memoriser(unseen.inputs, unseen.labels, seed=3)  # never saw `members`: a retrained model
    seconds = {"unlearn": 1.0, "retrain": 10.0}
    same = teacher.certify(model, forgot, [forgot], members, unseen, shadow_unseen, shadow_unseen, seconds)
    assert same["verified"], same["checks"]
    assert same["gaps_to_retrained"]["threshold_attack_auc"] == 0.0
    kept = teacher.certify(model, model, [forgot], members, unseen, shadow_unseen, shadow_unseen, seconds)
    assert not kept["verified"]
    assert kept["models"]["unlearned"]["forget_accuracy"] == 1.0
    assert kept["models"]["retrained"]["forget_accuracy"] < 0.7
    assert not kept["checks"]["passed"]["attack_auc"]


def test_certify_with_two_references_measures_to_their_mean_and_reports_their_spread(random_labels):
    members, unseen, shadow_unseen, model = random_labels
    forgot = memoriser(unseen.inputs, unseen.labels, seed=3)
    seconds = {"unlearn": 1.0, "retrain": 10.0}
    alone = teacher.certify(model, forgot, [forgot], members, unseen, shadow_unseen, shadow_unseen, seconds)
    pair = teacher.certify(model, forgot, [forgot, model], members, unseen, shadow_unseen, shadow_unseen, seconds)
    forgot_accuracy = alone["models"]["retrained"]["forget_accuracy"]
    assert pair["references"] == 2
    assert pair["models"]["retrained"]["forget_accuracy"] == pytest.approx((forgot_accuracy + 1.0) / 2)
    assert pair["reference_spread"]["forget_accuracy"] == pytest.approx(1.0 - forgot_accuracy)
    assert pair["gaps_to_retrained"]["forget_accuracy_points"] == pytest.approx(100 * (1.0 - forgot_accuracy) / 2)
    # a reference's distance is to the other reference: these two disagree on the forgotten data
    assert pair["models"]["retrained"]["forget_distance_to_retrained"] > 0
    assert "reference_spread" not in alone
