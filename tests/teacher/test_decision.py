"""The night smoothing of the decision rule and the night-relative rescaling, on hand-made inputs."""

import numpy as np
import pytest
import torch

from teacher import (
    ApneaWindows,
    DecisionRule,
    WindowSpec,
    best_threshold,
    night_windows,
    smooth_by_night,
    smooth_night,
)
from teacher._apnea import NIGHT_MEDIAN_RR_S
from teacher._apnea_io import Night


def test_smooth_night_is_an_edge_padded_moving_average():
    p = np.array([0.0, 0.0, 0.9, 0.0, 0.0, 0.6], dtype=np.float32)
    smoothed = smooth_night(p, 1)
    # By hand: means of (0,0,0), (0,0,.9), (0,.9,0), (.9,0,0), (0,0,.6), (0,.6,.6).
    np.testing.assert_allclose(smoothed, [0.0, 0.3, 0.3, 0.3, 0.2, 0.4], atol=1e-6)
    assert smoothed.dtype == np.float32
    np.testing.assert_array_equal(smooth_night(p, 0), p)


def test_a_lone_flag_is_removed_and_a_run_is_kept():
    p = np.array([0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0], dtype=np.float64)
    flags = smooth_night(p, 2) >= 0.5
    assert not flags[3]
    assert flags[7:12].all()


def test_smooth_by_night_keeps_nights_apart_and_rows_in_place():
    records = np.array(["b", "a", "b", "a", "b"])
    minutes = np.array([2, 1, 0, 0, 1])
    p = np.array([1.0, 0.0, 0.0, 1.0, 0.0])
    smoothed = smooth_by_night(records, minutes, p, 1)
    # night b in time order: minute 0 -> 0.0, 1 -> 0.0, 2 -> 1.0; night a: minute 0 -> 1.0, 1 -> 0.0
    np.testing.assert_allclose(smoothed[[2, 4, 0]], [0.0, 1 / 3, 2 / 3])
    np.testing.assert_allclose(smoothed[[3, 1]], [2 / 3, 1 / 3])


def test_night_relative_windows_have_the_reference_median():
    beats = np.cumsum(np.full(400, 0.75))  # 80 bpm for ~5 minutes
    night = Night(name="t01", fs=100.0, n_samples=int(beats[-1] * 100) + 100, beat_times=beats,
                  labels=np.zeros(4, dtype=np.int8), beat_source="t01.qrs")
    absolute, _, _ = night_windows(night, WindowSpec(4.0, 1, night_relative=False))
    relative, _, _ = night_windows(night, WindowSpec(4.0, 1, night_relative=True))
    np.testing.assert_allclose(absolute, 0.75, atol=1e-6)
    np.testing.assert_allclose(relative, NIGHT_MEDIAN_RR_S, atol=1e-6)


class ProbabilityIsTheMean(torch.nn.Module):
    """A 'model' whose apnea probability is the mean of its input window: known outputs."""

    def forward(self, inputs):
        p = inputs.mean(dim=(1, 2)).clamp(1e-6, 1 - 1e-6)
        return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], dim=1)


def test_best_threshold_separates_known_probabilities_and_breaks_ties_towards_one_half():
    p = np.array([0.1, 0.2, 0.33, 0.7, 0.8, 0.9], dtype=np.float32)
    windows = ApneaWindows(inputs=np.repeat(p[:, None, None], 4, axis=2), labels=np.array([0, 0, 1, 1, 1, -1]),
                           records=np.array(["a"] * 6), minutes=np.arange(6))
    # 0.25 and 0.30 both score 5/5 on the labelled minutes (the unlabelled one is ignored).
    threshold, accuracy = best_threshold(ProbabilityIsTheMean(), windows, DecisionRule(smoothing_minutes=0))
    assert (threshold, accuracy) == (0.3, 1.0)
    threshold, accuracy = best_threshold(ProbabilityIsTheMean(), windows, DecisionRule(smoothing_minutes=0),
                                         candidates=(0.5, 0.75))
    assert threshold == 0.5 and accuracy == pytest.approx(0.8)


def test_decision_rule_by_hand_smooths_flags_and_calls_the_night():
    rule = DecisionRule(smoothing_minutes=1, threshold=0.5, ahi_threshold=5.0)
    # 12 minutes: one run of three high minutes; the moving average over +-1 flags the middle three.
    p = np.array([0.0] * 4 + [0.9, 0.9, 0.9] + [0.0] * 5, dtype=np.float32)
    night = rule.apply(p)
    np.testing.assert_allclose(night["smoothed"][3:8], [0.3, 0.6, 0.9, 0.6, 0.3], atol=1e-6)
    assert night["flags"].tolist() == [False] * 4 + [True] * 3 + [False] * 5
    assert night["estimated_ahi"] == pytest.approx(15.0)  # 3 flagged minutes of 12: 15 an hour
    assert night["apneic"] is True
    assert rule.is_apneic(5.0) is False  # the cut-off itself is not above it


def test_decision_rule_round_trips_and_refuses_an_incomplete_or_other_rule():
    rule = DecisionRule(smoothing_minutes=2, threshold=0.3)
    assert DecisionRule.from_dict(rule.to_dict()) == rule
    assert rule.to_dict()["name"] == "smoothed-threshold/1"
    incomplete = {key: value for key, value in rule.to_dict().items() if key != "threshold"}
    with pytest.raises(ValueError, match="missing.*threshold"):
        DecisionRule.from_dict(incomplete)
    with pytest.raises(ValueError, match="not implemented"):
        DecisionRule.from_dict({**rule.to_dict(), "name": "hmm/1"})
