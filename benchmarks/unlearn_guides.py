"""How each guide reads a patient's night, next to each retrained reference (issue 6).

The unlearner holds a patient's minutes at the mean of the guides that never saw them
(`teacher.guide_targets`); the certificate measures it against models retrained without the patient.
This puts the two side by side, model by model, with the nights each guide was also trained without.
The models come from `unlearn_patients.py`'s cache: run that first, with the same patients,
references and partitions (a model missing there is trained and cached). `--also-without` retrains
(seed 0, cached) without the patient and each of those nights, then without all of them: whether the
nights a guide also missed are what moves its reading. `--complete-guides EPOCHS...` also reads the
night with the patient's guides given back their fold-mates first (`teacher.complete_guides`).

    EDGEKIT_DATA=../shared/data uv run python benchmarks/unlearn_guides.py --patients a03 a11 a19 b02 c04 --references 2
    EDGEKIT_DATA=../shared/data uv run python benchmarks/unlearn_guides.py --patients a03 --references 2 \\
        --also-without a02 b05
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

import teacher
from teacher import per_example_loss
from unlearn_patients import MeanOfGuides, cached_guides, patient_minutes, references_without, run_data, trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", nargs="+", required=True)
    parser.add_argument("--validation", action="store_true", help="the models of unlearn_patients.py --validation")
    parser.add_argument("--references", type=int, default=1)
    parser.add_argument("--guide-partitions", type=int, default=teacher.GUIDE_PARTITIONS)
    parser.add_argument("--guide-folds", type=int, default=teacher.GUIDE_FOLDS)
    parser.add_argument("--guides-apart", action="store_true", help="the guides of unlearn_patients.py --guides-apart")
    parser.add_argument("--complete-guides", type=int, nargs="+", default=[], metavar="EPOCHS",
                        help="also the guides given back their fold-mates (teacher.complete_guides), these many epochs")
    parser.add_argument("--complete-lr", type=float, default=1e-3, help="the completion's learning rate")
    parser.add_argument("--also-without", nargs="+", default=[], help="nights to leave out besides the patient")
    parser.add_argument("--cache", default="runs/unlearn-patients")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    split, config, data, _, score = run_data(args.validation, args.data_dir)
    windows = data.train
    cache = Path(args.cache) / ("validation" if args.validation else "test")
    folds, guides, _ = cached_guides(config, windows, cache, args.guide_partitions, args.guides_apart,
                                     progress=False, k=args.guide_folds)

    def reading(model, minutes) -> str:
        loss = float(per_example_loss(model, minutes.inputs, minutes.labels).mean())
        return f"{100 * score(model, minutes):.1f} % | {loss:.3f}"

    print("| patient (apnea minutes) | model | accuracy on the night | mean loss | also without |")
    print("|---|---|---|---|---|")
    for patient in args.patients:
        forget, retain = patient_minutes(windows, patient)
        name = f"{patient} ({np.mean(forget.labels):.0%})"
        holding_out = [j for j, fold in enumerate(folds) if patient in fold]
        for j in holding_out:
            others = ", ".join(sorted(set(folds[j]) - {patient}))
            print(f"| {name} | guide {j} | {reading(guides[j], forget)} | {others} |")
        target = MeanOfGuides([guides[j] for j in holding_out])
        print(f"| {name} | mean of those guides (the target) | {reading(target, forget)} | |")
        for epochs in args.complete_guides:
            completed = teacher.complete_guides(guides, folds, [patient], config, retain.inputs, retain.labels,
                                                retain.records, epochs=epochs, lr=args.complete_lr)
            for j in holding_out:
                print(f"| {name} | guide {j} completed, {epochs} epoch(s) | {reading(completed[j], forget)} | |")
            target = MeanOfGuides([completed[j] for j in holding_out])
            print(f"| {name} | mean of those (completed target, {epochs}) | {reading(target, forget)} | |")
        for seed, (model, _) in enumerate(references_without(config, patient, retain, cache, args.references)):
            print(f"| {name} | retrained, seed {seed} | {reading(model, forget)} | |")
        groups = [[night] for night in args.also_without] + ([args.also_without] if len(args.also_without) > 1 else [])
        for nights in groups:
            left_out = [patient, *nights]
            kept, _ = teacher.leave_patients_out(split["train"], left_out)
            model, _ = trained(replace(config, train_records=kept, seed=0),
                               windows.select(~np.isin(windows.records, left_out)),
                               cache / f"retrained-{'+'.join(left_out)}-seed0")
            print(f"| {name} | retrained, seed 0 | {reading(model, forget)} | {', '.join(nights)} |")


if __name__ == "__main__":
    main()
