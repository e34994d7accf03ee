"""How the apnea teacher's settings were chosen: 5-fold cross-validation over the learning nights.

x01-x35 are never read here. The 35 learning nights are split into 5 folds stratified by group
(a/b/c); each variant trains on 4 folds and predicts the 5th, and the pooled out-of-fold minutes are
scored with and without night smoothing (+-k minutes).

    EDGEKIT_DATA=../shared/data uv run python benchmarks/apnea_validation.py [--variants base rel ...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import teacher
from teacher import training_beat_noise

# Each variant: window options, then TrainConfig overrides. "rel" is the shipped default.
VARIANTS = {
    "base": {"night_relative": False, "config": {"epochs": 10}},
    "rel": {"night_relative": True, "config": {"epochs": 10}},
    "no-level-channel": {"night_relative": False, "config": {"epochs": 10, "arch_options": {"level_channel": False}}},
    "context-5min": {"night_relative": False, "context_minutes": 5, "config": {"epochs": 10}},
    "rel-20ep-wd": {"night_relative": True, "config": {"epochs": 20, "weight_decay": 0.05}},
    "rel-wide": {"night_relative": True, "config": {"epochs": 10, "arch_options": {"widths": [32, 48, 64, 64]}}},
    "rel-no-augment": {"night_relative": True, "config": {"epochs": 10, "rr_scale_jitter": 0.0, "rr_noise_s": 0.0}},
    "rel-label-smoothing": {"night_relative": True, "config": {"epochs": 10, "label_smoothing": 0.1}},
    "rel-no-augment-20ep-wd": {"night_relative": True, "config": {
        "epochs": 20, "weight_decay": 0.05, "rr_scale_jitter": 0.0, "rr_noise_s": 0.0}},
    "rel-no-augment-20ep-wd-smooth8s": {"night_relative": True, "config": {
        "epochs": 20, "weight_decay": 0.05, "rr_scale_jitter": 0.0, "rr_noise_s": 0.0,
        "arch_options": {"smooth_samples": 33}}},
    "rel-no-augment-20ep-wd-context4min": {"night_relative": True, "context_minutes": 4, "config": {
        "epochs": 20, "weight_decay": 0.05, "rr_scale_jitter": 0.0, "rr_noise_s": 0.0}},
    # Nights with few apnea minutes (the b nights) have their apnea minutes repeated in training.
    "rel-no-augment-20ep-wd-balanced-nights": {"night_relative": True, "balance_nights": True, "config": {
        "epochs": 20, "weight_decay": 0.05, "rr_scale_jitter": 0.0, "rr_noise_s": 0.0}},
    "rel-no-augment-20ep-wd-noisy-copy": {"night_relative": True, "config": {
        "epochs": 20, "weight_decay": 0.05, "rr_scale_jitter": 0.0, "rr_noise_s": 0.0, "noisy_beat_copies": 1}},
}
SMOOTHING = (0, 1, 2, 3, 5)
THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55)
EVALUATION_NOISE = teacher.BeatNoise(jitter_s=0.015, missed=0.03, extra=0.03, seed=7)
MAX_REPEATS = 4


def balance_apnea_minutes(windows):
    """Repeat the apnea minutes of nights that have few of them, round(sqrt(median / n)) times (at most
    MAX_REPEATS; the median over the nights with at least 5 apnea minutes), so that a mild night's
    apneas are not drowned by the severe nights' hundreds."""
    counts = {record: int(windows.labels[windows.records == record].sum()) for record in np.unique(windows.records)}
    median = np.median([n for n in counts.values() if n >= 5])
    repeats = np.ones(len(windows), dtype=int)
    for record, n in counts.items():
        if n >= 5:
            factor = int(np.clip(round(np.sqrt(median / n)), 1, MAX_REPEATS))
            repeats[(windows.records == record) & (windows.labels == 1)] = factor
    return windows.select(np.repeat(np.arange(len(windows)), repeats))


def cross_validate(name: str, variant: dict, data_dir, work: Path) -> dict:
    spec = teacher.WindowSpec(
        grid_hz=4.0,
        context_minutes=variant.get("context_minutes", 2),
        night_relative=variant["night_relative"],
    )
    data, _ = teacher.load_windows(teacher.LEARNING_RECORDS, data_dir, spec, progress=False)
    overrides = dict(variant["config"])
    noisy = [
        teacher.load_windows(teacher.LEARNING_RECORDS, data_dir, spec, beat_noise=training_beat_noise(copy),
                             progress=False)[0]
        for copy in range(overrides.get("noisy_beat_copies", 0))
    ]
    arch_options = {"length": spec.length, **overrides.pop("arch_options", {})}
    config = teacher.TrainConfig(arch_options=arch_options, **overrides)
    # Robustness: the held-out nights again, through a noisier beat detector than sqrs125.
    degraded, _ = teacher.load_windows(teacher.LEARNING_RECORDS, data_dir, spec, beat_noise=EVALUATION_NOISE,
                                       progress=False)
    probabilities = np.zeros(len(data), dtype=np.float32)
    degraded_probabilities = np.zeros(len(degraded), dtype=np.float32)
    started = time.perf_counter()
    for fold in teacher.leave_nights_out_folds(5, seed=0):
        held_out = np.isin(data.records, fold)
        train = data.select(~held_out)
        for copy in noisy:  # noisy copies of the training folds only
            train = train.concatenate(copy.select(~np.isin(copy.records, fold)))
        if variant.get("balance_nights"):
            train = balance_apnea_minutes(train)
        model, _ = teacher.fit(config, train.inputs, train.labels, work / name, progress=False)
        probabilities[held_out] = teacher.predict_proba(model, data.inputs[held_out])[:, 1]
        degraded_held_out = np.isin(degraded.records, fold)
        degraded_probabilities[degraded_held_out] = teacher.predict_proba(model, degraded.inputs[degraded_held_out])[:, 1]
    def figures(rule: teacher.DecisionRule, windows: teacher.ApneaWindows, scores: np.ndarray) -> dict:
        smoothed, flags = rule.apply_by_night(windows.records, windows.minutes, scores)
        return {"minute": teacher.minute_metrics(windows.labels, smoothed, flags),
                "night": teacher.night_metrics(windows.records, windows.labels, flags, rule)}

    # Smoothing compared at 0.5 (the threshold is chosen after it, below).
    accuracy = {k: figures(teacher.DecisionRule(smoothing_minutes=k, threshold=0.5), data, probabilities)["minute"]["accuracy"]
                for k in SMOOTHING}
    nights = figures(teacher.DecisionRule(smoothing_minutes=3, threshold=0.5), data, probabilities)["night"]
    # The decision threshold, chosen here and only here: figures at k = 3 for each candidate.
    thresholds = {}
    for threshold in THRESHOLDS:
        chosen = figures(teacher.DecisionRule(smoothing_minutes=3, threshold=threshold), data, probabilities)
        thresholds[f"{threshold:.2f}"] = {**{key: chosen["minute"][key] for key in ("accuracy", "sensitivity", "specificity")},
                                          "nights_correct": chosen["night"]["nights_correct"]}
    return {
        "variant": name,
        "seconds": round(time.perf_counter() - started),
        "accuracy_by_smoothing": accuracy,
        "roc_auc": teacher.roc_auc(data.labels, probabilities),
        "noisy_beats_accuracy_k3": figures(teacher.DecisionRule(smoothing_minutes=3, threshold=0.5), degraded,
                                           degraded_probabilities)["minute"]["accuracy"],
        "nights_correct": nights["nights_correct"],
        "wrong_nights": [n["record"] for n in nights["per_night"] if n["predicted_apneic"] != n["reference_apneic"]],
        "by_threshold_k3": thresholds,
        "worst_nights": sorted(
            ((n["record"], round(n["minute_accuracy"], 3)) for n in nights["per_night"]), key=lambda x: x[1]
        )[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--work", default="runs/bench-apnea-validation")
    parser.add_argument("--json", default="benchmarks/results/apnea_validation.json")
    args = parser.parse_args()

    results = []
    for name in args.variants:
        results.append(cross_validate(name, VARIANTS[name], args.data_dir, Path(args.work)))
        print(json.dumps(results[-1]), flush=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))

    print("\n| variant | " + " | ".join(f"acc k={k}" for k in SMOOTHING) + " | AUC | nights | noisy beats acc k=3 | s |")
    print("|---" * (len(SMOOTHING) + 5) + "|")
    for r in results:
        accuracies = " | ".join(f"{r['accuracy_by_smoothing'][k]:.2%}" for k in SMOOTHING)
        print(f"| {r['variant']} | {accuracies} | {r['roc_auc']:.4f} | {r['nights_correct']}/35 | {r['noisy_beats_accuracy_k3']:.2%} | {r['seconds']} |")


if __name__ == "__main__":
    main()
