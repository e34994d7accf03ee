"""Would a model retrained without the patient pass the certificate's checks itself? (issue 6)

The certificate's bars (3 points on the patient's minutes, 0.05 attack AUC, 1 point on unseen
nights) are measured against retrained references, which differ from one another. This takes each
cached reference in turn as the candidate and certifies it against the others, and certifies the
unlearned model (seed 0, the certificate's run) against the very same others: a paired comparison
of how often retraining and unlearning pass the same checks against the same references. The time
check is left out (a retraining is its own cost). Models come from `unlearn_patients.py`'s cache
(run it first with the same patients and references; K >= 2).

    EDGEKIT_DATA=../shared/data uv run python benchmarks/unlearn_reference_noise.py --validation \\
        --patients a05 b03 c02 a10 b01 c05 a12 b04 c03 a16 --references 2
    EDGEKIT_DATA=../shared/data uv run python benchmarks/unlearn_reference_noise.py \\
        --patients a03 a11 a19 b02 c04 --references 3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import teacher
from teacher import certify
from unlearn_patients import CachedRequests, patient_minutes

CHECKS = ("forget_accuracy", "attack_auc", "test_accuracy")  # the certificate's, less the time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", nargs="+", required=True)
    parser.add_argument("--validation", action="store_true", help="the models of unlearn_patients.py --validation")
    parser.add_argument("--references", type=int, default=2, help="cached references per patient (at least 2)")
    parser.add_argument("--cache", default="runs/unlearn-patients")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.references < 2:
        parser.error("--references must be at least 2: each reference is certified against the others")

    run = CachedRequests.load(args.validation, args.data_dir, args.cache)
    rows = []
    print("| patient | held out as candidate | model | accuracy gap | AUC gaps (threshold, shadow) | unseen below "
          "| passes |\n|---|---|---|---|---|---|---|")
    for patient in args.patients:
        forget, retain = patient_minutes(run.windows, patient)
        references = run.references(patient, retain, args.references)
        unlearned = run.unlearn(forget, retain, run.targets(forget))
        for held_out in range(args.references):
            others = references[:held_out] + references[held_out + 1:]
            for name, candidate in ((f"retrained, seed {held_out}", references[held_out]), ("unlearned", unlearned)):
                certificate = certify(run.original, candidate, others, forget, retain, run.unseen, run.unseen,
                                      {"unlearn": 1.0, "retrain": 1.0}, score=run.score)
                gaps, passed = certificate["gaps_to_retrained"], certificate["checks"]["passed"]
                row = {"patient": patient, "held_out": held_out, "model": name,
                       "gaps": {key: value for key, value in gaps.items() if key != "time_ratio"},
                       "passed": {check: passed[check] for check in CHECKS},
                       "passes": all(passed[check] for check in CHECKS)}
                rows.append(row)
                print(f"| {patient} | seed {held_out} | {name} | {gaps['forget_accuracy_points']:.2f} "
                      f"| {gaps['threshold_attack_auc']:.3f}, {gaps['shadow_attack_auc']:.3f} "
                      f"| {gaps['test_accuracy_points_below']:+.2f} | {'yes' if row['passes'] else 'no'} |", flush=True)

    print("\n| model | comparisons passing every check | accuracy | attack AUC | unseen nights |\n|---|---|---|---|---|")
    for kind in ("retrained", "unlearned"):
        mine = [row for row in rows if row["model"].startswith(kind)]
        counts = [sum(row["passed"][check] for row in mine) for check in CHECKS]
        print(f"| {kind} | {sum(row['passes'] for row in mine)} of {len(mine)} | "
              + " | ".join(f"{count} of {len(mine)}" for count in counts) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"mode": "validation" if args.validation else "test",
                                               "references": args.references,
                                               "unlearn_config": teacher.PATIENT_UNLEARN.to_dict(),
                                               "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
