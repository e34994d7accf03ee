"""Can a different night-level AHI estimate rescue the mildest apneic nights? (learning nights only)

Out-of-fold probabilities of the shipped recipe (5 folds of whole learning nights, as
`apnea_validation.py`), then each night's AHI estimated three ways, at smoothing k = 0, 1, 3:
flagged minutes per hour (the shipped rule), and the expected apnea minutes per hour (mean
probability * 60). Prints the nights each estimator calls wrong.

    EDGEKIT_DATA=../shared/data uv run python benchmarks/apnea_ahi_estimators.py --seed 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import teacher


def out_of_fold(seed: int, data_dir, work: Path) -> tuple[teacher.ApneaWindows, np.ndarray]:
    spec = teacher.WindowSpec(grid_hz=4.0, context_minutes=2, night_relative=True)
    data, _ = teacher.load_windows(teacher.LEARNING_RECORDS, data_dir, spec, progress=False)
    config = teacher.TrainConfig(arch_options={"length": spec.length}, seed=seed)
    probabilities = np.zeros(len(data), dtype=np.float32)
    for fold in teacher.leave_nights_out_folds(5, seed=seed):
        held_out = np.isin(data.records, fold)
        train = data.select(~held_out)
        model, _ = teacher.fit(config, train.inputs, train.labels, work, progress=False)
        probabilities[held_out] = teacher.predict_proba(model, data.inputs[held_out])[:, 1]
    return data, probabilities


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--work", default="runs/bench-apnea-ahi")
    args = parser.parse_args()
    data, probabilities = out_of_fold(args.seed, args.data_dir, Path(args.work))
    threshold = teacher.TrainConfig.decision_threshold
    for k in (0, 1, 3):
        smoothed = teacher.smooth_by_night(data.records, data.minutes, probabilities, k)
        for name, estimate in (("flagged minutes", lambda p: np.mean(p >= threshold) * 60),
                               ("expected minutes", lambda p: np.mean(p) * 60)):
            wrong, estimates, references = [], [], []
            for record in sorted(set(data.records.tolist())):
                rows = data.records == record
                estimated, reference = estimate(smoothed[rows]), teacher.estimated_ahi(data.labels[rows])
                estimates.append(estimated)
                references.append(reference)
                if (estimated > teacher.AHI_THRESHOLD) != (reference > teacher.AHI_THRESHOLD):
                    wrong.append(f"{record} (est {estimated:.1f}, ref {reference:.1f})")
            r = np.corrcoef(estimates, references)[0, 1]
            print(f"k={k} {name:16s} AHI r {r:.3f}  wrong: {', '.join(wrong) or 'none'}")


if __name__ == "__main__":
    main()
