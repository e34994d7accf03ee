"""Apnea-ECG through the kit's beat detector (issue 33): its beats against `.qrs`, and the apnea
models fed them instead of the annotated ones.

Beats: the detector's R peaks on the record's ECG (`teacher.read_ecg`, signal quality included)
against its `.qrs` with a 150 ms window, after moving `.qrs` by its constant offset (sqrs125 fires
~40 ms before the R peak); and the same on the first minute of every Apnea-ECG record
(`--first-minutes`), pooled over those with >= 40 `.qrs` beats there, the others listed with
their quality marks (flat or saturated minutes must be marked, not detected).

Models: for each model (a teacher or student artifact), the same night read twice: its `.qrs` beats
(`teacher.read_night(..., beats="annotations")`, as the models were trained) and the kit's beat
detector on its ECG (`beats="detector"`, ecg-to-beats/1, as a phone with an ECG patch runs it),
each through the same windows and the model's decision rule. Reports, over the labelled minutes
with signal either way: the share of minutes flagged alike, per-minute accuracy each way and its
change, and the estimated AHI each way.

    EDGEKIT_DATA=../shared/data uv run python benchmarks/detected_beats.py --runs runs/apnea \
        --models TEACHER STUDENT --data-dir ../shared/data/ecg-signals/apnea-ecg-a01-prefix --record a01 \
        --first-minutes ../shared/data/ecg-signals/apnea-ecg-first-minute
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
import wfdb
from tqdm import tqdm
from wfdb.processing import compare_annotations

import student
import teacher
from edgekit import ArtifactStore


def night_flags(model, rule: teacher.DecisionRule, night: teacher.Night, spec: teacher.WindowSpec) -> dict:
    windows, scored, report = teacher.night_windows(night, spec)
    decided = student.night_decisions(model, torch.from_numpy(windows).float(), rule, scored)
    return {"flags": decided["flags"], "scored": scored, "ahi": decided["estimated_ahi"], "report": report}


def compare(model, rule: teacher.DecisionRule, record: str, data_dir, contract: teacher.InputContract) -> dict:
    spec = contract.window_spec()
    annotated = teacher.read_night(record, data_dir, beats="annotations")
    detected = teacher.read_night(record, data_dir, beats="detector")
    by_qrs, by_detector = (night_flags(model, rule, night, spec) for night in (annotated, detected))
    labels = annotated.labels.astype(bool)
    minutes = by_qrs["scored"] & by_detector["scored"]
    accuracy = {name: float(np.mean(result["flags"][minutes] == labels[minutes]))
                for name, result in (("annotations", by_qrs), ("detector", by_detector))}
    return {
        "record": record,
        "beats": {"annotations": int(annotated.beat_times.size), "detector": int(detected.beat_times.size)},
        "labelled_minutes": int(labels.size),
        "minutes_with_signal_both_ways": int(minutes.sum()),
        "no_signal_minutes": {"annotations": by_qrs["report"]["no_signal_minutes"],
                              "detector": by_detector["report"]["no_signal_minutes"]},
        "flags_agree": float(np.mean(by_qrs["flags"][minutes] == by_detector["flags"][minutes])),
        "minute_accuracy": accuracy,
        "accuracy_change_points": round(100 * (accuracy["detector"] - accuracy["annotations"]), 3),
        "estimated_ahi": {"annotations": by_qrs["ahi"], "detector": by_detector["ahi"]},
        "rejected_beats": detected.rejected_beats,
    }


QRS_OFFSET_S = 0.04  # Apnea-ECG's .qrs sits this far before the R peak (ecg-signals/README.md)
MIN_REFERENCE_BEATS = 40  # a first minute with fewer .qrs beats has too little signal to score


def match(reference: np.ndarray, detected: np.ndarray, fs: float) -> dict:
    """Detected R peaks against reference beats moved by `QRS_OFFSET_S`, 150 ms window."""
    counts = {"reference": int(reference.size), "detected": int(detected.size)}
    if not reference.size or not detected.size:  # compare_annotations fails on an empty side
        return {**counts, "tp": 0, "fn": int(reference.size), "fp": int(detected.size)}
    shifted = reference + int(round(QRS_OFFSET_S * fs))
    result = compare_annotations(shifted, detected, int(round(0.15 * fs)))
    return {**counts, "tp": int(result.tp), "fn": int(result.fn), "fp": int(result.fp)}


def rates(counts: dict) -> dict:
    tp, fn, fp = counts["tp"], counts["fn"], counts["fp"]
    return {**counts, "sensitivity": tp / max(tp + fn, 1), "ppv": tp / max(tp + fp, 1),
            "extra_share": fp / max(counts["reference"], 1)}


def record_beats(path: Path, reference_dir: Path, seconds: float | None = None) -> tuple[dict, teacher.Night]:
    """The detector's beats on one record's ECG against its .qrs (its first `seconds`, when given)."""
    night = teacher.read_ecg(path)
    detected = np.round(night.beat_times * night.fs).astype(np.int64)
    end = night.n_samples if seconds is None else int(seconds * night.fs)
    reference = wfdb.rdann(str(reference_dir / path.name), "qrs", sampto=end).sample
    return match(reference[reference < end], detected[detected < end], night.fs), night


def first_minutes(folder: Path, reference_dir: Path) -> dict:
    pooled = {"reference": 0, "detected": 0, "tp": 0, "fn": 0, "fp": 0}
    scored, unscored = [], {}
    for header in tqdm(sorted(folder.glob("*.hea")), desc="first minutes", unit="record"):
        counts, night = record_beats(header.with_suffix(""), reference_dir, seconds=60.0)
        if counts["reference"] >= MIN_REFERENCE_BEATS:
            scored.append(header.stem)
            pooled = {key: pooled[key] + counts[key] for key in pooled}
        else:
            unscored[header.stem] = {**counts, "quality_seconds_lost": night.quality.counts()}
    return {"records_scored": scored, "pooled": rates(pooled), "records_with_too_few_qrs_beats": unscored}


def cut_to_signal(folder: Path, record: str, staging: Path) -> Path:
    """A copy of a record whose signal was cut short (the a01 prefix), with its .qrs cut to the
    signal: the kit refuses beats past a recording's end as a header and annotation that disagree."""
    header = wfdb.rdheader(str(folder / record))
    qrs = wfdb.rdann(str(folder / record), "qrs", sampto=header.sig_len)
    for extension in ("hea", "dat", "apn"):
        shutil.copy(folder / f"{record}.{extension}", staging / f"{record}.{extension}")
    wfdb.wrann(record, "qrs", qrs.sample, symbol=qrs.symbol, fs=header.fs, write_dir=str(staging))
    return staging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True)
    parser.add_argument("--models", nargs="+", required=True, help="teacher or student artifact ids in --runs")
    parser.add_argument("--record", default="a01")
    parser.add_argument("--data-dir", default=None, help="a folder holding the record's .hea, .dat, .qrs and .apn")
    parser.add_argument("--first-minutes", default=None, help="a folder of Apnea-ECG first minutes (.hea, .dat)")
    parser.add_argument("--json", default="benchmarks/results/detected_beats_a01.json")
    args = parser.parse_args()

    annotations = teacher.find_apnea_dir()  # every record's .qrs (the first minutes carry none)
    record_dir = Path(args.data_dir) if args.data_dir else annotations
    beats, _ = record_beats(record_dir / args.record, record_dir)
    report = {"record": args.record, "beats": rates(beats)}
    print(json.dumps(report["beats"]))
    if args.first_minutes:
        report["first_minutes"] = first_minutes(Path(args.first_minutes), annotations)
        print(json.dumps(report["first_minutes"]["pooled"]))

    staging = Path(tempfile.mkdtemp(prefix="detected-beats-"))
    model_dir = cut_to_signal(record_dir, args.record, staging)
    store = ArtifactStore(args.runs)
    rows = []
    for reference in args.models:
        artifact = store.get(reference)
        model, checkpoint = teacher.load_teacher(artifact.path)
        rule = teacher.TrainConfig(**checkpoint["config"]).decision
        contract = teacher.InputContract.from_dict(artifact.manifest["contract"])
        rows.append({"model": artifact.id, "kind": artifact.kind,
                     **compare(model, rule, args.record, model_dir, contract)})
        print(json.dumps(rows[-1]))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    report["models"] = rows
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
