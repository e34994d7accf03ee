"""Audit measures on constructed cases whose answers are known."""

import pytest
import torch

from synth._audit import interpretation_rates, nearest_neighbour_distances, nearest_neighbour_ratio, split_teams


def test_nearest_neighbour_distance_is_exact_on_a_grid():
    references = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    queries = torch.tensor([[3.0, 4.0], [10.0, 1.0]])
    assert nearest_neighbour_distances(queries, references).tolist() == pytest.approx([5.0, 1.0])


def test_copied_training_samples_give_a_ratio_near_zero_and_fresh_draws_near_one():
    generator = torch.Generator().manual_seed(0)
    train = torch.randn(2000, 8, generator=generator)
    heldout = torch.randn(500, 8, generator=generator)
    copies = train[:500] + 1e-3 * torch.randn(500, 8, generator=generator)
    fresh = torch.randn(500, 8, generator=generator)

    memorised = nearest_neighbour_ratio(copies, train, heldout)
    assert memorised["ratio"] < 0.01
    assert memorised["synthetic_closer_than_heldout_p1"] == 1.0
    unseen = nearest_neighbour_ratio(fresh, train, heldout)
    assert 0.85 < unseen["ratio"] < 1.15
    assert unseen["synthetic_closer_than_heldout_p1"] < 0.05


def test_nearest_neighbour_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="values each"):
        nearest_neighbour_distances(torch.zeros(3, 4), torch.zeros(3, 5))


def test_fooling_and_hidden_message_follow_definitions_4_1_and_4_2():
    teacher = torch.tensor([0, 0, 1, 2, 2])
    similar = torch.tensor([0, 1, 1, 2, 0])
    # Three members of S. Example 0: all agree with h -> neither. Example 1: two of three say 2 and h_s
    # disagrees with h -> fooling only. Example 2: all say 0, h_s agrees with h -> fooling and hidden.
    # Example 3: votes split 0/1/2 -> no class other than h's has a majority. Example 4: two say 1 ->
    # fooling, but h_s disagrees with h -> not hidden.
    members = torch.tensor([
        [0, 2, 0, 0, 1],
        [0, 2, 0, 1, 1],
        [0, 0, 0, 2, 2],
    ])
    rates = interpretation_rates(teacher, similar, members)
    assert rates["fooling_rate"] == pytest.approx(3 / 5)
    assert rates["hidden_message_rate"] == pytest.approx(1 / 5)
    assert rates["set_agreement_with_teacher"] == pytest.approx([1 / 5, 1 / 5, 4 / 5])


def test_a_majority_split_over_two_wrong_classes_is_not_fooling():
    # Four members: two say 1, two say 2; no single class other than h's 0 has more than N/2 votes.
    rates = interpretation_rates(torch.tensor([0]), torch.tensor([0]), torch.tensor([[1], [1], [2], [2]]))
    assert rates["fooling_rate"] == 0.0


def test_teams_alternate_through_sorted_records_and_need_four():
    first, second = split_teams(["c01", "a02", "b01", "a01", "c02", "a03"])
    assert first == ["a01", "a03", "c01"] and second == ["a02", "b01", "c02"]
    with pytest.raises(ValueError, match="at least 4"):
        split_teams(["a01", "a02", "a03"])
