"""Golden files for the phone core's ECG path, written from the server's Python so the Kotlin tests
(core/src/test/kotlin/org/edgekit/core/{BeatDetector,SignalQuality,Wfdb}Test.kt) check the port
against the real thing without numpy. Run from the repository root:

    .venv/bin/python android_demo/tools/golden_ecg.py [--data ../shared/data/ecg-signals]

Writes into android_demo/core/src/test/resources/golden/:
- ecg_specs.json: `teacher.BEAT_DETECTOR.to_dict()` and `teacher.SIGNAL_QUALITY.to_dict()`.
- butterworth_sos.json: `scipy.signal.butter(..., btype="bandpass", output="sos")` (the detector's
  band-pass) at several rates, orders and bands.
- beats_{a01,mitdb108,mitdb114}.json: the committed real excerpts (tests/data/beats/, cut by its
  cut.py) as their int16 samples and gain, with `teacher.detect_beats` and `teacher.ecg_beats` on the
  float32 mV signal the kit reads (adu / gain, then float32, as wfdb and `teacher.read_ecg` give it),
  and `teacher.detect_beats` on its first 1.5 s (shorter than the detector's learning period).
- signal_quality.json: an excerpt spoilt by a flat, a saturated and a missing (NaN) stretch (a
  recipe, applied again in Kotlin), with `teacher.ecg_beats`' marks, beats and drops, the seconds
  lost per reason, `teacher.minute_signal`, and `teacher.reject_beats` on the beats the detector finds
  when the stretches are not zeroed first.
- wfdb/: the first seconds of real records (MIT-BIH 100, format 212, two signals; Apnea-ECG a01,
  format 16) and two real annotation files (100.atr, a01.apn), with what `wfdb.rdrecord` and
  `wfdb.rdann` read from them (wfdb.json). Needs --data (the ecg-signals folder); skipped without it.

The JSON is deterministic: rerunning on the same code gives the same files. The beats depend on the
floating-point order of numpy's dot product (OpenBLAS), which the Kotlin detector follows for x86-64
with AVX-512; generate these files on such a machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import scipy.signal as sps
import wfdb

import teacher

ROOT = Path(__file__).resolve().parents[2]
EXCERPTS = ROOT / "tests" / "data" / "beats"
GOLDEN = ROOT / "android_demo" / "core" / "src" / "test" / "resources" / "golden"
NAMES = ("a01", "mitdb108", "mitdb114")
PREFIX_S = 1.5

SOS_CASES = (  # (order, band Hz, rates): the detector's band-pass, then orders and bands with real poles
    [(2, (5.0, 20.0), fs) for fs in (100, 128, 200, 250, 256, 360, 500, 512, 1000)]
    + [(1, (5.0, 20.0), 250), (3, (5.0, 20.0), 360), (4, (5.0, 20.0), 100),
       (1, (5.0, 40.0), 360), (3, (1.0, 40.0), 250), (2, (0.5, 45.0), 100)]
)

# The spoilt excerpt: a01's first 119.5 s (so the last block is short), with three stretches of no signal.
QUALITY_CASE = {
    "excerpt": "a01",
    "samples": 11_950,
    "edits": [  # samples [from, to) take `pattern` over and over; null is NaN
        {"what": "flat (a lead off for 16 s)", "from": 2_000, "to": 3_600, "pattern": [0.02, 0.03]},
        {"what": "saturated", "from": 5_000, "to": 5_600, "pattern": [7.0, -7.0]},
        {"what": "missing", "from": 8_000, "to": 8_350, "pattern": [None]},
    ],
    "n_minutes": 3,
    "duration_s": 119.5,
}

WFDB_CUTS = {  # name: (folder, record, frames kept)
    "100s": ("mitdb", "100", 1_000),
    "a01s": ("apnea-ecg-a01-prefix", "a01", 1_000),
}
WFDB_ANNOTATIONS = (("mitdb", "100", "atr"), ("apnea-ecg-a01-prefix", "a01", "apn"))


def excerpt_signal(name: str) -> tuple[np.ndarray, float, np.ndarray, float]:
    """(int16 samples, gain, the float32 mV signal the kit reads, rate)."""
    data = np.load(EXCERPTS / f"{name}.npz")
    adu, gain = data["adu"], float(data["gain"])
    return adu, gain, (adu / gain).astype(np.float32), float(data["fs"])


def spoilt_signal(case: dict) -> np.ndarray:
    _, _, signal, _ = excerpt_signal(case["excerpt"])
    signal = signal[: case["samples"]].copy()
    for edit in case["edits"]:
        pattern = np.array([np.nan if v is None else v for v in edit["pattern"]], dtype=np.float32)
        signal[edit["from"]:edit["to"]] = np.resize(pattern, edit["to"] - edit["from"])
    return signal


def beats_golden(name: str) -> dict:
    adu, gain, signal, fs = excerpt_signal(name)
    beats, quality, rejected = teacher.ecg_beats(signal, fs)
    prefix = signal[: int(PREFIX_S * fs)]  # shorter than the detector's learning period
    return {"name": name, "fs": fs, "gain": gain, "adu": adu.tolist(),
            "detect_beats": teacher.detect_beats(signal, fs).tolist(),
            "prefix": {"samples": prefix.size, "detect_beats": teacher.detect_beats(prefix, fs).tolist()},
            "ecg_beats": {"beats": beats.tolist(), "reasons": quality.reasons.tolist(), "rejected": rejected}}


def quality_golden() -> dict:
    case = QUALITY_CASE
    fs = excerpt_signal(case["excerpt"])[3]
    signal = spoilt_signal(case)
    beats, quality, rejected = teacher.ecg_beats(signal, fs)
    times = beats / fs
    # Beats found on the spoilt signal as it is (not zeroed): some lie in the unusable blocks.
    unzeroed = teacher.detect_beats(np.nan_to_num(signal.astype(np.float64)), fs)
    kept, dropped = teacher.reject_beats(unzeroed, quality)
    return {**case, "fs": fs, "block_samples": quality.block_samples,
            "reasons": quality.reasons.tolist(), "beats": beats.tolist(), "rejected": rejected,
            "reject_beats": {"beats": unzeroed.tolist(), "kept": kept.tolist(), "dropped": dropped},
            "seconds_lost": quality.counts(),
            "minute_signal": teacher.minute_signal(times, case["n_minutes"], quality=quality,
                                                   duration_s=case["duration_s"]).tolist(),
            "minute_signal_beats_only": teacher.minute_signal(times, case["n_minutes"]).tolist()}


def sos_golden() -> dict:
    return {"cases": [{"order": order, "band_hz": list(band), "fs": float(fs),
             "sos": sps.butter(order, band, btype="bandpass", fs=fs, output="sos").tolist()}
                       for order, band, fs in SOS_CASES]}


def wfdb_golden(data: Path, out: Path) -> dict:
    """Cut real records to their first frames (bytes as they are) and copy two annotation files."""
    out.mkdir(parents=True, exist_ok=True)
    records = {}
    for name, (folder, record, frames) in WFDB_CUTS.items():
        source = data / folder / record
        header = wfdb.rdheader(str(source))
        fmt = header.fmt[0]
        bytes_per_frame = {"16": 2 * header.n_sig, "212": 3 * header.n_sig // 2}[fmt]
        (out / f"{name}.dat").write_bytes(Path(f"{source}.dat").read_bytes()[: frames * bytes_per_frame])
        lines = Path(f"{source}.hea").read_text().splitlines()
        text = []
        for line in lines:
            fields = line.split()
            if not fields or line.startswith("#"):
                text.append(line)
            elif fields[0] == record:  # the record line: this name, this many frames
                text.append(" ".join([name, fields[1], fields[2], str(frames)]))
            else:
                text.append(" ".join([f"{name}.dat"] + fields[1:]))
        (out / f"{name}.hea").write_text("\n".join(text) + "\n")
        read = wfdb.rdrecord(str(out / name), channels=[0])
        records[name] = {"fs": float(read.fs), "units": read.units[0],
                         "samples": read.p_signal[:, 0].astype(np.float32).astype(float).tolist()}
    annotations = {}
    for folder, record, extension in WFDB_ANNOTATIONS:
        shutil.copyfile(data / folder / f"{record}.{extension}", out / f"{record}.{extension}")
        read = wfdb.rdann(str(out / record), extension)
        annotations[f"{record}.{extension}"] = {"samples": read.sample.tolist(), "symbols": list(read.symbol),
                                                "aux_notes": list(read.aux_note)}
    return {"records": records, "annotations": annotations}


def write(path: Path, content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, separators=(",", ":")) + "\n")
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1000:.0f} kB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="the ecg-signals folder (for the WFDB files)")
    args = parser.parse_args()
    write(GOLDEN / "ecg_specs.json", {"ecg_to_beats": teacher.BEAT_DETECTOR.to_dict(),
                                      "signal_quality": teacher.SIGNAL_QUALITY.to_dict()})
    write(GOLDEN / "butterworth_sos.json", sos_golden())
    for name in NAMES:
        write(GOLDEN / f"beats_{name}.json", beats_golden(name))
    write(GOLDEN / "signal_quality.json", quality_golden())
    if args.data is None:
        print("golden/wfdb left as it is: give --data (the ecg-signals folder) to cut it again")
    else:
        write(GOLDEN / "wfdb" / "wfdb.json", wfdb_golden(args.data, GOLDEN / "wfdb"))


if __name__ == "__main__":
    main()
