"""Golden files the phone core must reproduce, exported from the server's own code (run from the repo root):

    .venv/bin/python android_demo/tools/make_golden.py

Writes `android_demo/core/src/test/resources/golden/`:
- `rr_windows.json`: nights of beat times (a real stretch of the embedded x01 and edge cases made from
  it: a gap, ectopic and missed beats, a late first beat, a night too short or with too few beats) and
  what `teacher.night_windows` makes of them under the shipped preprocessing: the windows (as the
  night's values they are cut from, window m from sample 240 m on; float32, little-endian, base64), the minutes with signal, the RR-cleaning report, or the error it raises.
- `decision.json`: per-minute probabilities (with and without minutes lacking signal) and what
  `teacher.DecisionRule` and `teacher.SEVERITY` make of them.
- `rr_files/`: a strap's files (RR in ms, beat times in s, with and without a header) and the beats
  `teacher.read_rr` reads from them.
The detector's golden files come from `golden_ecg.py` beside this script.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

import edge_export
import teacher

GOLDEN = Path(__file__).resolve().parents[1] / "core" / "src" / "test" / "resources" / "golden"


def night(name: str, beat_times: np.ndarray, minutes: int) -> teacher.Night:
    return teacher.Night(name=name, fs=100.0, n_samples=minutes * 6000, beat_times=np.asarray(beat_times, float),
                         labels=None, beat_source=f"golden case {name}")


def rr_cases(x01: teacher.Night) -> list[teacher.Night]:
    """Eight minutes of x01 from its second hour, shifted to start at 0, and edge cases made from them."""
    start = 3600.0
    beats = x01.beat_times[(x01.beat_times >= start) & (x01.beat_times < start + 480)] - start
    rng = np.random.default_rng(0)
    gap = beats[(beats < 200) | (beats > 230)]  # 30 s without beats: a stretch with no signal
    ectopic = np.sort(np.concatenate([beats, beats[10:-10:37] + 0.35]))  # premature beats
    missed = np.delete(beats, np.arange(5, beats.size - 5, 23))  # doubled intervals
    jittered = np.sort(beats + rng.uniform(-0.01, 0.01, beats.size))
    return [
        night("x01-h1", beats, 8),
        night("gap", gap, 8),
        night("ectopic", ectopic, 8),
        night("missed", missed, 8),
        night("jittered", jittered, 8),
        night("late-start", beats[beats > 95.0], 8),  # no beat in the first minute and a half
        night("long-recording", beats, 12),  # the recording runs on four minutes after the last beat
        night("too-few-beats", beats[:3], 8),
        night("not-increasing", np.concatenate([beats[:50], beats[49:60]]), 8),
    ]


def rr_case(case: teacher.Night, spec: teacher.WindowSpec) -> dict:
    out = {"name": case.name, "fs": case.fs, "samples": case.n_samples, "beat_times": case.beat_times.tolist()}
    try:
        windows, scored, report = teacher.night_windows(case, spec)
    except teacher.ApneaDataError as error:
        return {**out, "error": str(error)}
    # Windows overlap: store the night they are cut from (window m starts at minute m), 3x smaller.
    per_minute = spec.samples_per_minute
    night_values = np.concatenate([windows[0, 0]] + [w[0, -per_minute:] for w in windows[1:]])
    return {**out, "minutes": int(windows.shape[0]),
            "night_f32": base64.b64encode(night_values.astype("<f4").tobytes()).decode(),
            "scored": scored.astype(int).tolist(), "report": report}


def decision_cases(rule: teacher.DecisionRule) -> list[dict]:
    rng = np.random.default_rng(1)
    cases = []
    for name, minutes, no_signal in (("all-signal", 90, 0.0), ("some-no-signal", 90, 0.2), ("short", 3, 0.0),
                                     ("mostly-no-signal", 30, 0.9)):
        # Runs of apnea-like minutes, as nights have them, with noise around the threshold.
        probabilities = np.clip(0.5 + 0.45 * np.sin(np.arange(minutes) / 6.0) + rng.normal(0, 0.15, minutes), 0, 1)
        probabilities = probabilities.astype(np.float32)
        scored = rng.random(minutes) >= no_signal
        decided = rule.apply(probabilities, scored)
        cases.append({
            "name": name, "probabilities": probabilities.tolist(), "scored": scored.astype(int).tolist(),
            "smoothed": decided["smoothed"].tolist(), "flags": decided["flags"].astype(int).tolist(),
            "estimated_ahi": None if np.isnan(decided["estimated_ahi"]) else decided["estimated_ahi"],
            "apneic": decided["apneic"], "severity": teacher.SEVERITY.of(decided["estimated_ahi"]),
        })
    return cases


def rr_files(beats: np.ndarray, folder: Path) -> list[dict]:
    """A strap's files in the forms `teacher.read_rr` reads, and the beat times it reads from each."""
    folder.mkdir(parents=True, exist_ok=True)
    rr_ms = np.round(np.diff(beats) * 1000.0, 1)
    contents = {
        "rr-ms-header.txt": "rr_ms\n" + "".join(f"{value:g}\n" for value in rr_ms),
        "rr-ms-bare.txt": "".join(f"{value:g}\n" for value in rr_ms),
        "times-header.csv": "time_s,quality\n" + "".join(f"{value:.3f},1\n" for value in beats),
        "times-bare.txt": "".join(f"{value:.3f}\n" for value in beats),
        "not-a-number.txt": "rr_ms\n812\n80x\n790\n",
        "neither.txt": "5\n4\n3\n",
    }
    cases = []
    for name, text in contents.items():
        path = folder / name
        teacher.write_text_atomic(path, text)
        try:
            read = teacher.read_rr(path)
            cases.append({"file": name, "beat_times": read.beat_times.tolist(), "samples": read.n_samples})
        except teacher.ApneaDataError as error:
            cases.append({"file": name, "error": str(error)})
    return cases


def main() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    contract = teacher.APNEA_CONTRACT
    spec = contract.window_spec()
    x01 = teacher.read_night("x01", teacher.EMBEDDED_APNEA_DIR)
    cases = rr_cases(x01)
    teacher.write_text_atomic(GOLDEN / "rr_windows.json", json.dumps({
        "preprocessing": edge_export.preprocessing_spec(contract),
        "cases": [rr_case(case, spec) for case in cases]}))
    rule = teacher.DecisionRule()
    teacher.write_text_atomic(GOLDEN / "decision.json", json.dumps({
        "decision": rule.to_dict(), "severity": teacher.SEVERITY.to_dict(), "cases": decision_cases(rule)}))
    files = rr_files(cases[0].beat_times[:200] + 1.0, GOLDEN / "rr_files")
    teacher.write_text_atomic(GOLDEN / "rr_files.json", json.dumps({"cases": files}))
    print(f"golden files in {GOLDEN}")


if __name__ == "__main__":
    main()
