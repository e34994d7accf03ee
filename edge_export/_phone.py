"""The phone core's replay, run from the server's side: `android_demo/host/replay` (the Kotlin core and a
bundle's real .pte in ExecuTorch's C++ runtime) for one night, and the check that it answered exactly as
the server's `replay_night` did. Used by `make demo` and benchmarks/phone_replay.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np

ANDROID_DEMO = Path(__file__).resolve().parents[1] / "android_demo"
HOST_REPLAY = ANDROID_DEMO / "host" / "replay"
HOST_BUILD = ("build/host.jar", "build/core.jar", "build/libedgekit_executorch.so")
# What both replays must give alike; runtime_seconds is the machine's and beat_source names paths.
SAME_FIELDS = ("record", "bundle", "minutes", "flags", "signal", "no_signal_minutes", "estimated_ahi", "apneic",
               "severity", "rr_cleaning", "rejected_beats", "reference", "reference_ahi", "reference_apneic",
               "minute_accuracy")
# Probabilities travel rounded to 5 decimals: one rounding step apart is the same answer.
MAX_PROBABILITY_DIFFERENCE = 1e-5


class PhoneCoreUnavailable(RuntimeError):
    """The host runner is not built here; the message says what to build or install."""


def phone_core_missing() -> str | None:
    """Why the phone core's host replay cannot run here, or None when it can."""
    if shutil.which("java") is None:
        return "no java: install a JDK 17 (Debian: openjdk-17-jdk-headless), then make test"
    missing = [name for name in HOST_BUILD if not (ANDROID_DEMO / name).is_file()]
    if missing:
        return (f"android_demo/{missing[0]} is not built: run `bash android_demo/tools/check.sh build` (it says "
                "what to install: a JDK, npm for the Kotlin compiler, g++, Debian's junit5 and libandroid-json-java)")
    return None


def host_replays(bundle_dir: str | Path, public_key: str | Path, records: list[str], data_dir: str | Path | None = None,
                 probabilities: str | Path | None = None) -> list[dict]:
    """Nights of a data directory through the phone core in one process, each as `edgekit replay --json`
    prints it; `probabilities` a folder for each night's unrounded probabilities (<record>.txt)."""
    if (reason := phone_core_missing()) is not None:
        raise PhoneCoreUnavailable(reason)
    command = [str(HOST_REPLAY), str(bundle_dir), "--public-key", str(public_key), "--record", ",".join(records), "--json"]
    command += ["--data-dir", str(data_dir)] if data_dir is not None else []
    command += ["--probabilities", str(probabilities)] if probabilities is not None else []
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        lines = [line for line in done.stderr.splitlines() if line.startswith("replay")] or done.stderr.splitlines()[-3:]
        raise RuntimeError(f"the phone core's replay failed (exit {done.returncode}): {' '.join(lines)}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def compare_replays(server: dict, phone: dict) -> dict:
    """Whether the phone answered as the server: the fields that differ, the largest probability difference."""
    different = [key for key in SAME_FIELDS if server.get(key) != phone.get(key)]
    difference = float(np.max(np.abs(np.asarray(server["probability"], float) - np.asarray(phone["probability"], float))))
    return {"agree": not different and difference <= MAX_PROBABILITY_DIFFERENCE + 1e-9, "fields_that_differ": different,
            "max_probability_difference": difference,
            "minutes_flagged_alike": float(np.mean(np.asarray(server["flags"]) == np.asarray(phone["flags"])))}
