"""How far one patient request's figures move with the unlearner's seed alone (issue 6).

The certificate scores one unlearned model against the mean of K retrained references. The
references' spread is reported with it; this measures the other side: the same request (same
original, same guide targets) run with seeds 0..S-1, which changes only the order of the
reconstruction batches and the anchor draws. Each run's accuracy on the unseen nights and on the
patient's night, its threshold-attack AUC and the mean losses on the two sides that attack
compares, next to the references'. Models come from `unlearn_patients.py`'s cache (run it first
with the same patients and references).

    EDGEKIT_DATA=../shared/data uv run python benchmarks/unlearn_seeds.py --validation \\
        --patients c02 c03 c05 a05 b03 a10 --seeds 4 --references 2
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

import teacher
from teacher import per_example_loss
from unlearn_patients import CachedRequests, patient_figures, patient_minutes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", nargs="+", required=True)
    parser.add_argument("--validation", action="store_true", help="the models of unlearn_patients.py --validation")
    parser.add_argument("--seeds", type=int, default=4, help="unlearning runs per patient, seeds 0..S-1")
    parser.add_argument("--references", type=int, default=2)
    parser.add_argument("--cache", default="runs/unlearn-patients")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    run = CachedRequests.load(args.validation, args.data_dir, args.cache)

    def figures(model, forget) -> dict:
        """With the mean loss on each side the attack compares: which side moved shows in them."""
        unseen_loss = per_example_loss(model, run.attack_eval.inputs, run.attack_eval.labels)
        return {"unseen_accuracy": run.score(model, run.unseen),
                **patient_figures(model, forget, run.attack_eval, run.score),
                "unseen_mean_loss": float(unseen_loss.mean())}

    rows = {}
    print("| patient | model | unseen nights | patient's night | threshold AUC | mean loss: patient's night, unseen "
          "minutes |\n|---|---|---|---|---|---|")
    for patient in args.patients:
        forget, retain = patient_minutes(run.windows, patient)
        targets = run.targets(forget)
        models = {f"retrained, seed {seed}": model
                  for seed, model in enumerate(run.references(patient, retain, args.references))}
        for seed in range(args.seeds):
            models[f"unlearned, seed {seed}"] = run.unlearn(forget, retain, targets,
                                                              replace(teacher.PATIENT_UNLEARN, seed=seed))
        rows[patient] = {name: figures(model, forget) for name, model in models.items()}
        for name, row in rows[patient].items():
            print(f"| {patient} | {name} | {row['unseen_accuracy']:.2%} | {row['forget_accuracy']:.2%} "
                  f"| {row['threshold_attack_auc']:.3f} "
                  f"| {row['forget_mean_loss']:.3f}, {row['unseen_mean_loss']:.3f} |", flush=True)
    print("\n| patient | unseen nights: references' range | unlearned runs' range | unlearned runs' mean "
          "- references' mean |\n|---|---|---|---|")
    for patient, row in rows.items():
        references = [v["unseen_accuracy"] for k, v in row.items() if k.startswith("retrained")]
        runs = [v["unseen_accuracy"] for k, v in row.items() if k.startswith("unlearned")]
        print(f"| {patient} | {min(references):.2%}-{max(references):.2%} | {min(runs):.2%}-{max(runs):.2%} "
              f"| {100 * (np.mean(runs) - np.mean(references)):+.2f} points |")
    if args.json:
        Path(args.json).write_text(json.dumps({"unlearn_config": teacher.PATIENT_UNLEARN.to_dict(),
                                               "patients": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
