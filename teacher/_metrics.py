"""Per-minute and per-night apnea figures of flags a `DecisionRule` made (numpy only, so replay and
tests share them)."""

from __future__ import annotations

import numpy as np

from teacher._decision import DecisionRule, estimated_ahi


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula, ties counted half."""
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = np.asarray(scores)[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # Average ranks over runs of equal scores.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def minute_metrics(labels: np.ndarray, scores: np.ndarray, flags: np.ndarray) -> dict:
    """Accuracy, sensitivity, specificity of the flags and ROC AUC of the scores over labelled minutes."""
    labels = np.asarray(labels).astype(int)
    predictions = np.asarray(flags).astype(int)
    tp = int(((predictions == 1) & (labels == 1)).sum())
    tn = int(((predictions == 0) & (labels == 0)).sum())
    fp = int(((predictions == 1) & (labels == 0)).sum())
    fn = int(((predictions == 0) & (labels == 1)).sum())
    return {
        "minutes": int(labels.size),
        "accuracy": (tp + tn) / max(labels.size, 1),
        "sensitivity": tp / max(tp + fn, 1),
        "specificity": tn / max(tn + fp, 1),
        "roc_auc": roc_auc(labels, scores),
        "confusion": {"tp": tp, "tn": tn, "fp": fp, "fn": fn},
    }


def night_metrics(records: np.ndarray, labels: np.ndarray, flags: np.ndarray, rule: DecisionRule,
                  scored: np.ndarray | None = None) -> dict:
    """Per-night estimated vs reference AHI, the rule's call (AHI > 5), its accuracy and the AHI correlation.

    The estimate counts the minutes with signal (`scored`, default all); the reference, every
    labelled minute.
    """
    nights = []
    flags = np.asarray(flags).astype(bool)
    scored = np.ones(flags.size, dtype=bool) if scored is None else np.asarray(scored, dtype=bool)
    for name in sorted(set(records.tolist())):
        rows = records == name
        estimated, reference = estimated_ahi(flags[rows], scored[rows]), estimated_ahi(labels[rows])
        kept = rows & scored
        nights.append(
            {
                "record": name,
                "minutes": int(rows.sum()),
                "no_signal_minutes": int((rows & ~scored).sum()),
                "estimated_ahi": estimated,
                "reference_ahi": reference,
                "predicted_apneic": rule.is_apneic(estimated),
                "reference_apneic": rule.is_apneic(reference),
                "minute_accuracy": float(np.mean(flags[kept] == labels[kept].astype(bool))) if kept.any() else float("nan"),
            }
        )
    correct = sum(n["predicted_apneic"] == n["reference_apneic"] for n in nights)
    estimated = np.array([n["estimated_ahi"] for n in nights])
    reference = np.array([n["reference_ahi"] for n in nights])
    correlation = (
        float(np.corrcoef(estimated, reference)[0, 1])
        if len(nights) > 1 and estimated.std() > 0 and reference.std() > 0
        else float("nan")
    )
    return {
        "nights": len(nights),
        "nights_correct": int(correct),
        "night_accuracy": correct / max(len(nights), 1),
        "ahi_correlation": correlation,
        "per_night": nights,
    }
