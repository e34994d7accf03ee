"""teacher._metrics: ROC AUC, per-minute confusion figures and per-night AHI figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from teacher import DecisionRule, estimated_ahi, minute_metrics, night_metrics, roc_auc


def brute_force_auc(labels, scores) -> float:
    """P(score of a random positive > score of a random negative), ties counted half."""
    positives = [s for s, y in zip(scores, labels) if y]
    negatives = [s for s, y in zip(scores, labels) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_matches_pairwise_count_on_random_scores(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(200) < 0.3
    scores = rng.normal(size=200) + labels * rng.uniform(0, 2)
    assert roc_auc(labels, scores) == pytest.approx(brute_force_auc(labels, scores), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_matches_pairwise_count_with_ties(seed):
    rng = np.random.default_rng(100 + seed)
    labels = rng.random(150) < 0.5
    scores = rng.integers(0, 4, size=150) / 4.0  # four distinct values: ties everywhere
    assert roc_auc(labels, scores) == pytest.approx(brute_force_auc(labels, scores), abs=1e-12)


def test_roc_auc_known_values():
    labels = np.array([0, 0, 1, 1])
    assert roc_auc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert roc_auc(labels, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    # positives 0.3, 0.6 against negatives 0.4, 0.6: 0.3 wins none; 0.6 beats 0.4 and ties 0.6 -> 1.5 / 4
    assert roc_auc(labels, np.array([0.4, 0.6, 0.3, 0.6])) == 0.375


def test_roc_auc_of_one_class_is_nan():
    assert math.isnan(roc_auc(np.array([1, 1, 1]), np.array([0.1, 0.5, 0.9])))
    assert math.isnan(roc_auc(np.array([0, 0]), np.array([0.1, 0.5])))


# The night call of the kit's rule at a threshold of 0.5 (the flags are made by hand below).
RULE = DecisionRule(smoothing_minutes=0, threshold=0.5)

# The hand example: predictions at 0.5 are [1, 1, 0, 0, 1, 0, 0, 1].
LABELS = np.array([1, 1, 1, 0, 0, 0, 0, 1])
PROBABILITIES = np.array([0.9, 0.5, 0.2, 0.1, 0.6, 0.49, 0.0, 0.7])


def test_minute_metrics_confusion_by_hand():
    figures = minute_metrics(LABELS, PROBABILITIES, PROBABILITIES >= 0.5)
    # tp: minutes 0, 1 (0.5 counts as apnea), 7; fn: 2; fp: 4; tn: 3, 5, 6.
    assert figures["confusion"] == {"tp": 3, "tn": 3, "fp": 1, "fn": 1}
    assert figures["minutes"] == 8
    assert figures["accuracy"] == 6 / 8
    assert figures["sensitivity"] == 3 / 4
    assert figures["specificity"] == 3 / 4
    # Positive/negative pairs won: 0.9 -> 4, 0.5 -> 3, 0.2 -> 2, 0.7 -> 4, of 16.
    assert figures["roc_auc"] == 13 / 16


def test_minute_metrics_threshold_moves_the_confusion():
    figures = minute_metrics(LABELS, PROBABILITIES, PROBABILITIES >= 0.65)
    # predictions [1, 0, 0, 0, 0, 0, 0, 1]
    assert figures["confusion"] == {"tp": 2, "tn": 4, "fp": 0, "fn": 2}
    assert figures["sensitivity"] == 0.5 and figures["specificity"] == 1.0
    assert figures["roc_auc"] == 13 / 16  # threshold-free


def test_estimated_ahi_is_flagged_minutes_per_hour():
    assert estimated_ahi(np.array([1, 0, 0, 0])) == 15.0
    assert estimated_ahi(np.zeros(90, dtype=bool)) == 0.0
    assert estimated_ahi(np.ones(7, dtype=bool)) == 60.0
    assert math.isnan(estimated_ahi(np.array([])))


def night_rows(name: str, minutes: int, apnea: int, flagged: int) -> tuple[list, list, list]:
    """`apnea` labelled minutes first, `flagged` minutes scored 0.9 first, the rest 0.1 / 0."""
    labels = [1] * apnea + [0] * (minutes - apnea)
    probabilities = [0.9] * flagged + [0.1] * (minutes - flagged)
    return [name] * minutes, labels, probabilities


def test_night_metrics_by_hand():
    # n1: 60 min, 12 apnea, 6 flagged: reference AHI 12, estimate 6, both > 5 (correct call).
    # n2: 120 min, 4 apnea, 14 flagged: reference 2, estimate 7 (wrong call).
    # n3: 30 min, 0 apnea, 1 flagged: reference 0, estimate 2 (correct call).
    parts = [night_rows("n1", 60, 12, 6), night_rows("n2", 120, 4, 14), night_rows("n3", 30, 0, 1)]
    records = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    probabilities = np.concatenate([p[2] for p in parts])
    shuffle = np.random.default_rng(0).permutation(records.size)  # rows need not be grouped by night
    records, labels, probabilities = records[shuffle], labels[shuffle], probabilities[shuffle]

    figures = night_metrics(records, labels, probabilities >= 0.5, RULE)
    assert figures["nights"] == 3
    assert figures["nights_correct"] == 2
    assert figures["night_accuracy"] == pytest.approx(2 / 3)
    per_night = {row["record"]: row for row in figures["per_night"]}
    assert [row["record"] for row in figures["per_night"]] == ["n1", "n2", "n3"]
    expected = {
        # minutes, estimated AHI, reference AHI, predicted apneic, reference apneic, minute accuracy
        "n1": (60, 6.0, 12.0, True, True, 54 / 60),
        "n2": (120, 7.0, 2.0, True, False, 110 / 120),
        "n3": (30, 2.0, 0.0, False, False, 29 / 30),
    }
    for name, (minutes, est, ref, predicted, reference, accuracy) in expected.items():
        row = per_night[name]
        assert row["minutes"] == minutes
        assert row["estimated_ahi"] == pytest.approx(est)
        assert row["reference_ahi"] == pytest.approx(ref)
        assert row["predicted_apneic"] is predicted and row["reference_apneic"] is reference
        assert row["minute_accuracy"] == pytest.approx(accuracy)
    # Pearson r of (6, 7, 2) and (12, 2, 0): deviations (1, 2, -3) and (22, -8, -14) / 3.
    covariance = (1 * 22 + 2 * -8 + -3 * -14) / 3  # 16
    r = covariance / math.sqrt((1 + 4 + 9) * (22**2 + 8**2 + 14**2) / 9)
    assert figures["ahi_correlation"] == pytest.approx(r)
    assert r == pytest.approx(0.4703, abs=1e-4)


def test_night_call_needs_ahi_above_5_and_probability_at_threshold_flags():
    # 12 minutes with one flagged minute is exactly AHI 5: not above the cut-off.
    records = np.array(["n"] * 12)
    labels = np.array([1, 1] + [0] * 10)  # reference AHI 10
    probabilities = np.array([0.5] + [0.4999] * 11)  # only the first reaches the threshold
    row = night_metrics(records, labels, RULE.flags(probabilities), RULE)["per_night"][0]
    assert row["estimated_ahi"] == pytest.approx(5.0)
    assert row["predicted_apneic"] is False and row["reference_apneic"] is True
    assert row["minute_accuracy"] == pytest.approx(11 / 12)


def test_night_metrics_correlation_undefined_for_one_night_or_constant_ahi():
    records = np.array(["a"] * 10)
    one = night_metrics(records, np.zeros(10), np.full(10, 0.9) >= 0.5, RULE)
    assert one["nights"] == 1 and math.isnan(one["ahi_correlation"])
    records = np.array(["a"] * 10 + ["b"] * 10)
    constant = night_metrics(records, np.zeros(20), np.linspace(0, 1, 20) >= 0.5, RULE)
    assert math.isnan(constant["ahi_correlation"])  # the reference AHI is 0 on both nights
