"""Apnea students on synthetic windows, judged on validation nights only (x01-x35 are not read).

A teacher is trained on the learning nights minus the validation nights (`teacher.official_split`),
Gen{h1} synthesises windows from it, a student is trained on them alone, and teacher and student
are scored per minute and per night on the validation nights with the teacher's decision rule.
This is where synthetic-set and student settings are chosen before the test set is scored once.

    EDGEKIT_DATA=../shared/data uv run python benchmarks/apnea_synth_validation.py --size 20000 \\
        --students apnea_cnn apnea_cnn_small
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import synth
import teacher
import edgekit
from edgekit import ArtifactStore
from synth_settings import validation_scorer  # benchmarks/ is on the path when run as a script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--labels", choices=("soft", "hard"), default="soft")
    parser.add_argument("--students", nargs="+", default=["apnea_cnn", "apnea_cnn_small"])
    parser.add_argument("--validation-seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--runs", default="runs/bench-apnea-synth")
    parser.add_argument("--json", default="benchmarks/results/apnea_synth_validation.json")
    args = parser.parse_args()

    split = teacher.official_split(args.validation_seed)
    store = ArtifactStore(args.runs)
    config = teacher.TrainConfig(train_records=split["train"], val_records=split["val"])
    teacher_artifact = edgekit.train_teacher(store, config, args.data_dir, resume=True)
    synthetic = edgekit.synthesise(store, teacher_artifact.id, synth.SynthConfig(size=args.size, labels=args.labels),
                                     resume=True)
    model, _ = teacher.load_teacher(teacher_artifact.path)
    contract = teacher.model_contract(config.arch, config.arch_options)

    score = validation_scorer(teacher_artifact.manifest["config"], contract, args.data_dir)

    rows = [{"model": f"teacher ({config.arch}, real windows)", **score(model)}]
    for arch in args.students:
        student_artifact = edgekit.distill(store, synthetic.id, arch, args.data_dir, resume=True,
                                             score_on_test=False)
        student_model, _ = teacher.load_teacher(student_artifact.path)
        rows.append({"model": f"student {arch} (synthetic only)", "artifact": student_artifact.id,
                     **score(student_model)})
        print(json.dumps(rows[-1]), flush=True)
    result = {"validation_nights": split["val"], "teacher": teacher_artifact.id, "synth": synthetic.id,
              "synth_metrics": synthetic.manifest["metrics"], "rows": rows}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"\nvalidation nights: {', '.join(split['val'])}")
    print("| model | accuracy | ROC AUC | nights |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['model']} | {row['accuracy']:.2%} | {row['roc_auc']:.3f} | {row['nights_correct']}/{row['nights']} |")


if __name__ == "__main__":
    main()
