"""The phone core's beat detector (Kotlin, android_demo/core) against the server's (Python), on real ECG.

Why: a phone with an ECG patch turns the night into beats itself (ecg-to-beats/1 and signal-quality/1,
ported to Kotlin); its apnea scores only equal the server's replay when its beats do. On the 8 whole
MIT-BIH records of `<data>/ecg-signals/mitdb/` (channel 0, 360 Hz) and the Apnea-ECG a01 prefix
(`apnea-ecg-a01-prefix/`, 100 Hz, 4 h 22 min), each record is read and run through the ECG path both
ways: Python `teacher.read_ecg` then `teacher.ecg_beats`; Kotlin `org.edgekit.core.BeatsMain` (the
core's WFDB reader, then `ecgBeats`), one JVM for all records after one untimed warm-up pass. Reports
per record: the signal read alike (SHA-256 of the float32 samples), the share of beat sample indices
equal (equal / union), the beats only one side found, the dropped beats per reason, and seconds of
`ecg_beats` per hour of signal for each side, in the same run.

    make -C android_demo core KOTLINC=... JSON_JAR=...   # or let this script build it (toolchain.sh)
    EDGEKIT_DATA=../shared/data .venv/bin/python benchmarks/phone_beats.py
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import edge_export
import teacher
from _results import write_json

ROOT = Path(__file__).resolve().parents[1]
ANDROID = ROOT / "android_demo"
RECORDS = [("mitdb", r) for r in ("100", "102", "104", "106", "108", "114", "116", "121")] + [
    ("apnea-ecg-a01-prefix", "a01")]
LISTED = 20  # differences listed per record, at most


def toolchain() -> dict[str, str]:
    """KOTLINC, JUNIT_JAR and JSON_JAR as android_demo/tools/toolchain.sh finds them."""
    found = subprocess.run(["bash", str(ANDROID / "tools" / "toolchain.sh")], check=True, capture_output=True, text=True)
    return dict(line.split("=", 1) for line in found.stdout.split())


def kotlin_beats(paths: list[Path]) -> list[dict]:
    """BeatsMain on every record in one JVM (the core jar rebuilt first when a source changed)."""
    tools = toolchain()
    subprocess.run(["make", "-s", "-C", str(ANDROID), "core", f"KOTLINC={tools['KOTLINC']}",
                    f"JSON_JAR={tools['JSON_JAR']}"], check=True)
    stdlib = Path(tools["KOTLINC"]).parent.parent / "lib" / "kotlin-stdlib.jar"
    classpath = ":".join([str(ANDROID / "build" / "core.jar"), str(stdlib), tools["JSON_JAR"]])
    with tempfile.TemporaryDirectory() as folder:
        # The specs the core runs with come as a bundle carries them: the server's preprocessing.
        manifest = Path(folder) / "manifest.json"
        manifest.write_text(json.dumps({"bundle": {"preprocessing": edge_export.preprocessing_spec(teacher.APNEA_CONTRACT)}}))
        run = subprocess.run(["java", "-cp", classpath, "org.edgekit.core.BeatsMain", str(manifest), "--warmup",
                              *map(str, paths)], check=True, capture_output=True, text=True)
    return [json.loads(line) for line in run.stdout.splitlines()]


def python_beats(path: Path) -> dict:
    """`teacher.read_ecg`, then `teacher.ecg_beats` on its signal, timed alone."""
    night = teacher.read_ecg(path)
    started = time.perf_counter()
    beats, _, rejected = teacher.ecg_beats(night.signal, night.fs)
    seconds = time.perf_counter() - started
    return {"fs": night.fs, "n_samples": int(night.signal.size), "seconds": seconds, "rejected": rejected,
            "signal_sha256": hashlib.sha256(night.signal.astype("<f4").tobytes()).hexdigest(), "beats": beats}


def compare(python: np.ndarray, kotlin: np.ndarray) -> dict:
    equal = np.intersect1d(python, kotlin).size
    union = np.union1d(python, kotlin).size
    only_python, only_kotlin = np.setdiff1d(python, kotlin), np.setdiff1d(kotlin, python)
    return {"python_beats": int(python.size), "kotlin_beats": int(kotlin.size), "equal": int(equal),
            "equal_share": equal / union if union else 1.0,
            "only_python": only_python[:LISTED].tolist(), "only_kotlin": only_kotlin[:LISTED].tolist(),
            "n_only_python": int(only_python.size), "n_only_kotlin": int(only_kotlin.size)}


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="data directory (default: $EDGEKIT_DATA)")
    parser.add_argument("--json", default="benchmarks/results/phone_beats.json")
    args = parser.parse_args()
    folder = teacher.resolve_data_dir(args.data_dir) / "ecg-signals"
    paths = [folder / sub / record for sub, record in RECORDS]
    kotlin = {Path(row["record"]).name: row for row in kotlin_beats(paths)}
    results, totals = {}, {"equal": 0, "union": 0, "hours": 0.0, "python_s": 0.0, "kotlin_s": 0.0}
    print(f"{'record':<8}{'Hz':>5}{'beats':>7}{'equal %':>10}{'py only':>9}{'kt only':>9}"
          f"{'read alike':>12}{'py s/h':>9}{'kt s/h':>9}")
    for path in paths:
        py, kt = python_beats(path), kotlin[path.name]
        hours = py["n_samples"] / py["fs"] / 3600
        row = compare(py["beats"], np.asarray(kt["beats"], dtype=np.int64))
        row.update({
            "fs": py["fs"], "hours": hours, "signal_read_alike": py["signal_sha256"] == kt["signal_sha256"],
            "rejected": {"python": py["rejected"], "kotlin": kt["rejected"]},
            "seconds_per_hour": {"python": py["seconds"] / hours, "kotlin": kt["seconds"] / hours},
        })
        results[path.name] = row
        totals["equal"] += row["equal"]
        totals["union"] += row["equal"] + row["n_only_python"] + row["n_only_kotlin"]
        totals["hours"] += hours
        totals["python_s"] += py["seconds"]
        totals["kotlin_s"] += kt["seconds"]
        print(f"{path.name:<8}{py['fs']:>5g}{row['python_beats']:>7}{100 * row['equal_share']:>10.3f}"
              f"{row['n_only_python']:>9}{row['n_only_kotlin']:>9}{str(row['signal_read_alike']):>12}"
              f"{row['seconds_per_hour']['python']:>9.3f}{row['seconds_per_hour']['kotlin']:>9.3f}")
    pooled = {"equal_share": totals["equal"] / totals["union"], "hours_of_signal": totals["hours"],
              "seconds_per_hour": {"python": totals["python_s"] / totals["hours"],
                                   "kotlin": totals["kotlin_s"] / totals["hours"]}}
    print(f"pooled: {100 * pooled['equal_share']:.4f} % equal; s/hour python "
          f"{pooled['seconds_per_hour']['python']:.3f}, kotlin {pooled['seconds_per_hour']['kotlin']:.3f}")
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    write_json(args.json, {
        "benchmark": "phone_beats", "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(sys.argv), "machine": machine(),
        "threads": {"cpu_count": os.cpu_count(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "versions": {**{p: importlib.metadata.version(p) for p in ("edgekit", "numpy", "scipy", "wfdb")}, "java": java},
        "data": {"folder": str(folder), "records": [f"{sub}/{record}" for sub, record in RECORDS], "channel": 0},
        "detector_spec": teacher.BEAT_DETECTOR.to_dict(), "signal_quality": teacher.SIGNAL_QUALITY.to_dict(),
        "timing": "seconds of ecg_beats alone (reading excluded); Kotlin after one untimed warm-up pass",
        "pooled": pooled, "records": results,
    })
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
