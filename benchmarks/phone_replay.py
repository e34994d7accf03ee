"""The phone core against the server's replay on the 35 test nights (issue: android_demo).

Each night x01-x35 (annotated beats) goes through a signed bundle both ways: the server's
`edge_export.replay_night` (Python, `executorch.runtime`), and `android_demo/host/replay` (the Kotlin
core and the same .pte in ExecuTorch's C++ runtime, one JVM for all nights). Reports, per night and in
all: flags and minutes with signal identical, estimated AHI, call and severity identical, the largest
|probability difference| (unrounded: Python's `BundleModel.probabilities` on `teacher.night_windows`, the
two calls `replay_night` makes; Kotlin's `--probabilities`; the other fields by `edge_export.compare_replays`), and the wall time of the 35 nights each way
in the same run (Python: in one process after its imports; Kotlin: the whole command, JVM start included).

    make test   # builds android_demo/build (core, host runner)
    EDGEKIT_DATA=../shared/data .venv/bin/python benchmarks/phone_replay.py \
        --bundle android_demo/app/src/main/assets/bundle --public-key android_demo/app/src/main/assets/hospital-signing.pub
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

import edge_export
import teacher

ROOT = Path(__file__).resolve().parents[1]


def python_replays(bundle_dir: Path, public_key: Path, records: list[str], data_dir) -> tuple[dict, dict, float]:
    """The replays, timed (bundle loaded once, each night read and replayed); then, untimed, each minute's
    unrounded probability from the same two calls `replay_night` makes."""
    started = time.perf_counter()
    bundle = edge_export.load_bundle(bundle_dir, public_key=public_key)
    nights = {}
    results = {}
    for record in tqdm(records, desc="python replay", unit="night"):
        nights[record] = teacher.read_night(record, data_dir)
        results[record] = json.loads(json.dumps(edge_export.replay_night(bundle, nights[record])))
    seconds = time.perf_counter() - started
    probabilities = {}
    for record, night in nights.items():
        windows, _, _ = teacher.night_windows(night, bundle.contract.window_spec())
        probabilities[record] = np.array([bundle.probabilities(window)[-1] for window in windows], dtype=np.float64)
    return results, probabilities, seconds


def kotlin_replays(bundle_dir: Path, public_key: Path, records: list[str], data_dir) -> tuple[dict, dict, float]:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        results = edge_export.host_replays(bundle_dir, public_key, records, data_dir, probabilities=folder)
        seconds = time.perf_counter() - started
        probabilities = {record: np.loadtxt(Path(folder) / f"{record}.txt", ndmin=1) for record in records}
    return {result["record"]: result for result in results}, probabilities, seconds


def compare(python: dict, kotlin: dict, p_python: np.ndarray, p_kotlin: np.ndarray) -> dict:
    agreement = edge_export.compare_replays(python, kotlin)
    return {
        "record": python["record"],
        "minutes": python["minutes"],
        "flags_identical": python["flags"] == kotlin["flags"],
        "minutes_flagged_alike": agreement["minutes_flagged_alike"],
        "estimated_ahi": [python["estimated_ahi"], kotlin["estimated_ahi"]],
        "ahi_identical": python["estimated_ahi"] == kotlin["estimated_ahi"],
        "call_identical": python["apneic"] == kotlin["apneic"] and python["severity"] == kotlin["severity"],
        "max_probability_difference": float(np.max(np.abs(p_python - p_kotlin))),
        "fields_that_differ": agreement["fields_that_differ"],
        "scored_minutes": int(sum(python["signal"])),
        "minute_accuracy": python["minute_accuracy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--public-key", type=Path, required=True)
    parser.add_argument("--records", nargs="+", default=teacher.TEST_RECORDS)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "phone_replay.json")
    args = parser.parse_args()

    kotlin, p_kotlin, kotlin_seconds = kotlin_replays(args.bundle, args.public_key, args.records, args.data_dir)
    python, p_python, python_seconds = python_replays(args.bundle, args.public_key, args.records, args.data_dir)
    nights = [compare(python[r], kotlin[r], p_python[r], p_kotlin[r]) for r in args.records]
    minutes = sum(night["minutes"] for night in nights)
    summary = {
        "nights": len(nights),
        "minutes": minutes,
        "minutes_flagged_alike": sum(n["minutes_flagged_alike"] * n["minutes"] for n in nights) / minutes,
        "nights_with_identical_flags": sum(n["flags_identical"] for n in nights),
        "nights_with_identical_ahi_and_call": sum(n["ahi_identical"] and n["call_identical"] for n in nights),
        "nights_with_any_other_field_different": [n["record"] for n in nights if n["fields_that_differ"]],
        "max_probability_difference": max(n["max_probability_difference"] for n in nights),
        "minute_accuracy": sum(n["minute_accuracy"] * n["scored_minutes"] for n in nights) / sum(n["scored_minutes"] for n in nights),
        "nights_called_right": sum(python[r]["apneic"] == python[r]["reference_apneic"] for r in args.records),
        "seconds": {"python_in_process": round(python_seconds, 2), "kotlin_command": round(kotlin_seconds, 2)},
        "kotlin_to_python_time": round(kotlin_seconds / python_seconds, 3),
    }
    result = {"bundle": kotlin[args.records[0]]["bundle"], "summary": summary, "nights": nights,
              "date": datetime.date.today().isoformat(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores ({platform.processor() or 'cpu'})",
              "command": "benchmarks/phone_replay.py " + " ".join(f"{k} {v}" for k, v in
                                                               (("--bundle", args.bundle), ("--public-key", args.public_key)))}
    teacher.write_text_atomic(args.out, json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
