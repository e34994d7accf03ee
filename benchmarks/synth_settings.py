"""Choosing Gen{h1} and student settings on validation data (never the test split or x01-x35).

One call synthesises a set with the given SynthConfig fields from a teacher, trains one or more
students on it alone, and scores them on the teacher's validation data: the training images its
run held out (images), or the validation nights carved from the learning set (Apnea-ECG). One JSON
line per call is appended to --json. Apnea models are also scored with every beat moved a few
milliseconds (`beat_jitter`): how steady their flags are under another beat detector.

    EDGEKIT_DATA=../shared/data uv run python benchmarks/synth_settings.py --teacher ID --runs runs/mnist \\
        --size 6000 --synth '{"premove_max_steps": 20}' --students '[["cnn_id", "soft", 4.0, {}]]'

A student is [arch, labels, temperature, {TrainConfig overrides, e.g. "epochs": 30}].
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import synth
import teacher
from _results import append_json_line
from edgekit import ArtifactStore
from student import student_config, student_targets, teacher_labeller
from teacher import score_windows, split_validation

THRESHOLD_SWEEP = (0.05, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6)
# Beat-timing jitter (uniform, +-seconds) for the robustness figure: a detector's R peaks differ from
# the .qrs annotator's by 0 or 1 sample (10 ms at 100 Hz); a model whose flags move under it cannot
# give the same answers from a strap's or the kit's own beats (benchmarks/notes/beat-detection.md).
BEAT_JITTER_S = (0.005, 0.01)


def validation_scorer(teacher_config: dict, contract, data_dir):
    """A function model -> validation figures, for the teacher's own validation data."""
    if teacher_config["dataset"] == "apnea-ecg":
        nights = teacher_config["val_records"]
        if not nights:
            raise SystemExit("the teacher has no validation nights: train it with --val-records")
        rule = teacher.DecisionRule.from_dict(teacher_config["decision"])
        windows, _ = teacher.load_windows(nights, data_dir, contract.window_spec(), progress=False)
        learning, _ = teacher.load_windows(teacher_config["train_records"], data_dir, contract.window_spec(),
                                           progress=False)
        night_beats = [teacher.read_night(night, data_dir) for night in nights]

        def score_nights(model, own_rule: teacher.DecisionRule | None = None) -> dict:
            """Figures at the teacher's decision threshold, and the accuracy at other thresholds: a
            student's probabilities need not be calibrated like its teacher's. `calibrated`: the
            threshold that scores best on the teacher's training nights, and its validation accuracy.
            `beat_jitter`: how far its flags (at `own_rule`, default the teacher's) move when the beats move."""
            model = model.cpu()
            figures = score_windows(model, windows, rule)
            sweep = {str(threshold): round(score_windows(model, windows, rule.with_threshold(threshold))
                                           ["minute"]["accuracy"], 4)
                     for threshold in THRESHOLD_SWEEP}
            return {"accuracy": figures["minute"]["accuracy"], "roc_auc": figures["minute"]["roc_auc"],
                    "sensitivity": figures["minute"]["sensitivity"], "specificity": figures["minute"]["specificity"],
                    "nights_correct": figures["night"]["nights_correct"], "nights": len(nights),
                    "accuracy_by_threshold": sweep, "calibrated": calibrated(model),
                    "beat_jitter": beat_jitter(model, own_rule or rule)}

        def calibrated(model) -> dict:
            threshold, learning_accuracy = teacher.best_threshold(model, learning, rule)
            figures = score_windows(model, windows, rule.with_threshold(threshold))
            return {"threshold": threshold, "learning_accuracy": round(learning_accuracy, 4),
                    "accuracy": round(figures["minute"]["accuracy"], 4),
                    "nights_correct": figures["night"]["nights_correct"]}

        def beat_jitter(model, own_rule: teacher.DecisionRule) -> dict:
            """Share of the validation minutes with signal whose flag changes when every .qrs beat
            moves by U(-j, j) seconds (seeded), and the change of per-minute accuracy, per j."""
            result = {}
            for jitter in BEAT_JITTER_S:
                generator = np.random.default_rng(0)
                changed = minutes = right_before = right_after = 0
                for night in night_beats:
                    moved = night.beat_times + generator.uniform(-jitter, jitter, night.beat_times.size)
                    before, after = (night_flags(model, own_rule, dataclasses.replace(night, beat_times=times))
                                     for times in (night.beat_times, np.sort(moved)))
                    scored = before["scored"] & after["scored"]
                    labels = night.labels.astype(bool)[scored]
                    changed += int(np.sum(before["flags"][scored] != after["flags"][scored]))
                    minutes += int(scored.sum())
                    right_before += int(np.sum(before["flags"][scored] == labels))
                    right_after += int(np.sum(after["flags"][scored] == labels))
                result[f"{1000 * jitter:g}ms"] = {"flags_changed": round(changed / minutes, 5),
                                                  "accuracy_change_points": round(100 * (right_after - right_before) / minutes, 3)}
            return result

        def night_flags(model, own_rule: teacher.DecisionRule, night: teacher.Night) -> dict:
            windows, scored, _ = teacher.night_windows(night, contract.window_spec())
            probability = teacher.predict_proba(model, torch.from_numpy(windows).float())[:, 1]
            return {"flags": own_rule.apply(probability, scored)["flags"], "scored": scored}
        return score_nights

    train = teacher.load_image_dataset(teacher_config["dataset"], "train", data_dir, progress=False)
    _, validation = split_validation(train, teacher_config["validation_size"], teacher_config["seed"])
    if validation is None:
        raise SystemExit("the teacher held out no validation images")

    def score_images(model) -> dict:
        predicted = teacher.predict_proba(model, validation.images).argmax(1)
        return {"accuracy": float(np.mean(predicted == validation.labels.numpy()))}
    return score_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, help="teacher artifact id in --runs")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--size", type=int, default=6000)
    parser.add_argument("--synth", default="{}", help="SynthConfig fields as JSON")
    parser.add_argument("--students", default='[["cnn_id", "soft", 4.0, {}]]')
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--device", default="auto", help="where the students train (auto, cpu, cuda)")
    parser.add_argument("--json", default="benchmarks/results/synth_settings.jsonl")
    args = parser.parse_args()

    store = ArtifactStore(args.runs)
    teacher_artifact = store.get(args.teacher)
    teacher_config = teacher_artifact.manifest["config"]
    contract = teacher.InputContract.from_dict(teacher_artifact.manifest["contract"])
    model, _ = teacher.load_teacher(teacher_artifact.path)
    score = validation_scorer(teacher_config, contract, args.data_dir)
    config = synth.SynthConfig(size=args.size, **json.loads(args.synth))

    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        statistics = synth.generate(model, contract.modality, contract.shape, config, Path(work) / "synth",
                                    grid_hz=contract.grid_hz)
        synthetic = synth.load_synthetic(Path(work) / "synth")
        row = {"teacher": teacher_artifact.id, "dataset": teacher_config["dataset"], "synth": json.loads(args.synth),
               "size": args.size, "synth_seconds": round(time.perf_counter() - started, 1),
               "harvest_rate": statistics["harvest_rate"], "teacher_validation": score(model),
               "threads": torch.get_num_threads(), "students": []}
        for index, (arch, labels, temperature, overrides) in enumerate(json.loads(args.students)):
            student = student_config(teacher_config, arch, labels=labels, temperature=temperature, **overrides)
            targets = student_targets(synthetic["logits"], labels, student.temperature)
            started = time.perf_counter()
            label_batch = teacher_labeller(model, labels, student.temperature) if student.mixup else None
            network, _ = teacher.fit(student, synthetic["inputs"], targets, Path(work) / f"student-{index}",
                                     label_batch=label_batch, device=args.device)
            figures = score(network, student.decision) if teacher_config["dataset"] == "apnea-ecg" else score(network)
            row["students"].append({"arch": arch, "labels": labels, "temperature": temperature, **overrides,
                                    "fit_seconds": round(time.perf_counter() - started, 1),
                                    "validation": figures})
            print(json.dumps(row["students"][-1]), flush=True)
    append_json_line(args.json, row)


if __name__ == "__main__":
    main()
