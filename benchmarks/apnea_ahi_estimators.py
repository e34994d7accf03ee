"""Can a different night-level AHI estimate rescue the mildest apneic nights? (learning nights only)

Out-of-fold probabilities of the shipped recipe (5 folds of whole learning nights, as
`apnea_validation.py`), then each night's AHI estimated three ways, at smoothing k = 0, 1, 3:
flagged minutes per hour (the shipped rule), and the expected apnea minutes per hour (mean
probability * 60). Prints the nights each estimator calls wrong, and for the apneic nights the
shipped rule misses, what the model makes of their apnea minutes; `--plot` draws the RR series of
such a night's longest apnea run with the model's out-of-fold probabilities over it.

`--hmm` also decodes each night with a two-state hidden Markov model instead of the moving average
(forward-backward posteriors; transitions and prior counted from the training folds' labels, the
network's probabilities turned into likelihoods at a temperature that softens their confidence).

    EDGEKIT_DATA=../shared/data uv run python benchmarks/apnea_ahi_estimators.py --seed 1 \
        --plot benchmarks/results/apnea_missed_nights.png
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


def longest_run(labels: np.ndarray) -> tuple[int, int]:
    """(first, last + 1) minute of the longest run of apnea minutes."""
    best, start = (0, 0), None
    for minute, label in enumerate([*labels.tolist(), 0]):
        if label == 1 and start is None:
            start = minute
        elif label != 1 and start is not None:
            best, start = max(best, (start, minute), key=lambda run: run[1] - run[0]), None
    return best


def plot_missed(nights: list[str], data: teacher.ApneaWindows, probabilities: np.ndarray, data_dir, path: str) -> None:
    """Per missed night: cleaned RR over its longest apnea run (+- 10 minutes), apnea minutes shaded,
    and the out-of-fold apnea probability of each minute (k = 0) on the right axis."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(len(nights), 1, figsize=(12, 3.2 * len(nights)), dpi=100, squeeze=False)
    for axis, record in zip(axes[:, 0], nights):
        night = teacher.read_night(record, teacher.find_apnea_dir(data_dir))
        series = teacher.clean_rr(night.beat_times)
        first, last = longest_run(night.labels)
        shown = (max(first - 10, 0), min(last + 10, night.n_minutes))
        in_view = (series.times >= shown[0] * 60) & (series.times < shown[1] * 60)
        axis.plot(series.times[in_view] / 60, series.rr[in_view], linewidth=0.6)
        for minute in range(*shown):
            if night.labels[minute] == 1:
                axis.axvspan(minute, minute + 1, color="tab:red", alpha=0.15, linewidth=0)
        axis.set_xlabel("minute of the night")
        axis.set_ylabel("RR (s)")
        rows = (data.records == record) & (data.minutes >= shown[0]) & (data.minutes < shown[1])
        right = axis.twinx()
        right.step(data.minutes[rows] + 0.5, probabilities[rows], where="mid", color="black", linewidth=1.2)
        right.set_ylim(0, 1)
        right.set_ylabel("P(apnea), out of fold")
        axis.set_title(f"{record}: apnea minutes shaded; black: the model's probability per minute")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def label_transitions(data: teacher.ApneaWindows, records: list[str]) -> np.ndarray:
    """P(next minute's label | this minute's label) over `records`, counted with one pseudo-count."""
    counts = np.ones((2, 2))
    for record in records:
        rows = np.flatnonzero(data.records == record)
        labels = data.labels[rows[np.argsort(data.minutes[rows])]]
        np.add.at(counts, (labels[:-1], labels[1:]), 1)
    return counts / counts.sum(axis=1, keepdims=True)


def hmm_posteriors(probabilities: np.ndarray, transitions: np.ndarray, prior: float, temperature: float) -> np.ndarray:
    """P(apnea) per minute of one night (in time order) by forward-backward. The network's posterior
    over the training prior is a scaled likelihood; its logit is multiplied by `temperature` first."""
    clipped = np.clip(probabilities.astype(np.float64), 1e-6, 1 - 1e-6)
    softened = 1 / (1 + np.exp(-temperature * np.log(clipped / (1 - clipped))))
    likelihood = np.stack([(1 - softened) / (1 - prior), softened / prior], axis=1)
    forward, backward = np.zeros_like(likelihood), np.ones_like(likelihood)
    step = np.array([1 - prior, prior]) * likelihood[0]
    forward[0] = step / step.sum()
    for t in range(1, len(likelihood)):
        step = (forward[t - 1] @ transitions) * likelihood[t]
        forward[t] = step / step.sum()
    for t in range(len(likelihood) - 2, -1, -1):
        step = transitions @ (likelihood[t + 1] * backward[t + 1])
        backward[t] = step / step.sum()
    posterior = forward * backward
    return posterior[:, 1] / posterior.sum(axis=1)


def hmm_decoded(data: teacher.ApneaWindows, probabilities: np.ndarray, seed: int, temperature: float) -> np.ndarray:
    """Every held-out night decoded with the transitions and prior of the folds its model trained on."""
    decoded = np.zeros_like(probabilities, dtype=np.float64)
    for fold in teacher.leave_nights_out_folds(5, seed=seed):
        training = [record for record in teacher.LEARNING_RECORDS if record not in fold]
        transitions = label_transitions(data, training)
        prior = float(np.mean(data.labels[np.isin(data.records, training)]))
        for record in fold:
            rows = np.flatnonzero(data.records == record)
            rows = rows[np.argsort(data.minutes[rows])]
            decoded[rows] = hmm_posteriors(probabilities[rows], transitions, prior, temperature)
    return decoded


def print_rule(name: str, data: teacher.ApneaWindows, decided: np.ndarray) -> None:
    """Per-minute accuracy and the nights called wrong, at the shipped threshold and at 0.5."""
    for threshold in (teacher.DecisionRule().threshold, 0.5):
        flags = teacher.DecisionRule().with_threshold(threshold).flags(decided)
        nights = teacher.night_metrics(data.records, data.labels, flags, teacher.DecisionRule())["per_night"]
        wrong = [f"{night['record']} (est {night['estimated_ahi']:.1f})" for night in nights
                 if night["reference_apneic"] != night["predicted_apneic"]]
        print(f"{name:22s} threshold {threshold:.2f}: accuracy {np.mean(flags == data.labels):.2%}, "
              f"wrong: {', '.join(wrong) or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--work", default="runs/bench-apnea-ahi")
    parser.add_argument("--plot", default=None, help="PNG of the apneic nights the shipped rule misses")
    parser.add_argument("--hmm", nargs="*", type=float, default=None, metavar="TEMPERATURE",
                        help="also decode with a two-state HMM at these temperatures (none given: 1 0.5 0.3 0.2)")
    args = parser.parse_args()
    data, probabilities = out_of_fold(args.seed, args.data_dir, Path(args.work))
    if args.hmm is not None:
        print_rule("moving average, k=3", data, teacher.smooth_by_night(data.records, data.minutes, probabilities, 3))
        for temperature in args.hmm or (1.0, 0.5, 0.3, 0.2):
            print_rule(f"HMM, temperature {temperature:g}", data, hmm_decoded(data, probabilities, args.seed, temperature))
    shipped_rule = teacher.DecisionRule()
    threshold = shipped_rule.threshold
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
                if shipped_rule.is_apneic(estimated) != shipped_rule.is_apneic(reference):
                    wrong.append(f"{record} (est {estimated:.1f}, ref {reference:.1f})")
            r = np.corrcoef(estimates, references)[0, 1]
            print(f"k={k} {name:16s} AHI r {r:.3f}  wrong: {', '.join(wrong) or 'none'}")
    # The apneic nights the shipped rule (k = 3, flagged minutes) calls normal.
    _, shipped = shipped_rule.apply_by_night(data.records, data.minutes, probabilities)
    missed = [night["record"] for night in teacher.night_metrics(data.records, data.labels, shipped, shipped_rule)["per_night"]
              if night["reference_apneic"] and not night["predicted_apneic"]]
    for record in missed:
        rows = data.records == record
        apnea = probabilities[rows][data.labels[rows] == 1]
        print(f"{record}: {apnea.size} apnea minutes, out-of-fold probability (k = 0) median {np.median(apnea):.2f}, "
              f"upper quartile {np.quantile(apnea, 0.75):.2f}; {np.mean(apnea >= threshold):.0%} flagged")
    if args.plot and missed:
        plot_missed(missed, data, probabilities, args.data_dir, args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
