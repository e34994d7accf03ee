"""The kit's R-peak detector (ecg-to-beats) against the field's detectors on real ECG, in one run.

Why: the kit turns a phone's ECG into beats with its own detector; it is only worth shipping if it
holds its own against the detectors people already use. On the 8 whole MIT-BIH records of
`<data>/ecg-signals/mitdb/` (channel 0, reference = every annotated beat), at 360 Hz and resampled to
100 Hz (the Apnea-ECG rate), each detector's beats are matched to the reference with
`wfdb.processing.compare_annotations` (150 ms window): sensitivity, PPV and F1 per record and pooled,
and seconds of detector time per hour of signal. Detectors: the kit's (whole signal, and streamed in
10 s chunks, which must give the same beats), wfdb gqrs and xqrs, neurokit2 (`ecg_peaks` with its
defaults on the signal as read, and after `ecg_clean` as its pipeline does) and sleepecg. Results: a JSON file and a PNG of per-record F1 at 100 Hz.

    OMP_NUM_THREADS=1 EDGEKIT_DATA=../shared/data uv run python benchmarks/beat_detection.py
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import scipy.signal as sps  # noqa: E402
import wfdb  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402
from wfdb.processing import compare_annotations, gqrs_detect, xqrs_detect  # noqa: E402

import teacher  # noqa: E402
from _results import write_json  # noqa: E402
from teacher import BEAT_DETECTOR, ECG_TO_BEATS, StreamingBeatDetector, detect_beats  # noqa: E402

RECORDS = ("100", "102", "104", "106", "108", "114", "116", "121")
BEAT_SYMBOLS = set("NLRBAaJSVrFejnE/fQ?")  # beat annotations; rhythm and noise marks are not beats
SOURCE_FS, RATES = 360, (360, 100)
WINDOW_S, CHUNK_S = 0.15, 10.0
KIT, STREAMED = ECG_TO_BEATS, f"{ECG_TO_BEATS} streamed"


def kit_streamed(signal: np.ndarray, fs: float) -> np.ndarray:
    """The kit's detector fed 10 s at a time, as a phone feeds it."""
    detector, step = StreamingBeatDetector(fs, BEAT_DETECTOR), round(CHUNK_S * fs)
    parts = [detector.feed(signal[start:start + step]) for start in range(0, signal.size, step)]
    return np.concatenate(parts + [detector.finish()])


def detectors() -> dict:
    """Name -> (signal, fs) -> R-peak samples; an anchor whose package is missing is said and left out."""
    found = {KIT: lambda x, fs: detect_beats(x, fs, BEAT_DETECTOR), STREAMED: kit_streamed,
             "wfdb gqrs": lambda x, fs: gqrs_detect(sig=x, fs=fs),
             "wfdb xqrs": lambda x, fs: xqrs_detect(x, fs, verbose=False)}
    try:
        import neurokit2 as nk
        # ecg_peaks' defaults on the signal as read: the data README's "neurokit2 default" figures.
        found["neurokit2 ecg_peaks"] = lambda x, fs: nk.ecg_peaks(x, sampling_rate=fs)[1]["ECG_R_Peaks"]
        # The documented pipeline's steps (ecg_clean, then ecg_peaks; method "neurokit" both).
        found["neurokit2 clean+peaks"] = lambda x, fs: nk.ecg_peaks(
            nk.ecg_clean(x, sampling_rate=fs), sampling_rate=fs)[1]["ECG_R_Peaks"]
    except ImportError as error:
        print(f"neurokit2 left out ({error}): `uv sync --group dev` installs it", file=sys.stderr)
    try:
        import sleepecg
        found["sleepecg"] = lambda x, fs: sleepecg.detect_heartbeats(x, fs)
    except ImportError as error:
        print(f"sleepecg left out ({error}): `uv sync --group dev` installs it", file=sys.stderr)
    return found


def load(folder, record: str, fs: int) -> tuple[np.ndarray, np.ndarray]:
    """Channel 0 (mV) and the reference beats' samples, resampled to `fs` when it is not 360 Hz."""
    path = str(folder / record)
    signal = wfdb.rdrecord(path, channels=[0]).p_signal[:, 0]
    annotation = wfdb.rdann(path, "atr")
    beats = np.array([s for s, symbol in zip(annotation.sample, annotation.symbol) if symbol in BEAT_SYMBOLS])
    if fs != SOURCE_FS:
        common = int(np.gcd(fs, SOURCE_FS))  # 100 Hz: resample_poly(x, 5, 18)
        signal = sps.resample_poly(signal, fs // common, SOURCE_FS // common)
        beats = np.clip(np.round(beats * fs / SOURCE_FS).astype(np.int64), 0, signal.size - 1)
    return signal, beats


def figures(tp: int, fn: int, fp: int) -> dict:
    return {"tp": tp, "fn": fn, "fp": fp, "sensitivity": tp / (tp + fn), "ppv": tp / (tp + fp),
            "f1": 2 * tp / (2 * tp + fn + fp)}


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine() -> str:
    """The CPU model (lscpu's, else platform's)."""
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or platform.machine()


def plot(results: dict, path: str) -> None:
    """Per-record F1 at 100 Hz, one bar per detector (the streamed kit is left out: the same beats)."""
    names = [name for name in results if name != STREAMED]
    width = 0.8 / len(names)
    figure, axes = plt.subplots(figsize=(11, 4))
    for k, name in enumerate(names):
        f1 = [results[name]["100"]["records"][record]["f1"] for record in RECORDS]
        axes.bar(np.arange(len(RECORDS)) + (k - (len(names) - 1) / 2) * width, f1, width, label=name)
    axes.set_xticks(np.arange(len(RECORDS)), RECORDS)
    axes.set(xlabel="MIT-BIH record", ylabel="F1 (150 ms window)", title="R-peak detectors at 100 Hz")
    lowest = min(results[name]["100"]["records"][record]["f1"] for name in names for record in RECORDS)
    axes.set_ylim(max(0.0, lowest - 0.02), 1.0)  # the differences sit in the top few percent
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: bars fill the axes
    figure.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="data directory (default: $EDGEKIT_DATA)")
    parser.add_argument("--json", default="benchmarks/results/beat_detection.json")
    parser.add_argument("--plot", default="benchmarks/results/beat_detection.png")
    args = parser.parse_args()
    folder = teacher.resolve_data_dir(args.data_dir) / "ecg-signals" / "mitdb"
    run = detectors()
    counts = {name: {str(fs): {} for fs in RATES} for name in run}
    seconds = {name: {str(fs): 0.0 for fs in RATES} for name in run}
    hours = {str(fs): 0.0 for fs in RATES}
    streamed_equal = {}
    for fs, record in tqdm([(fs, r) for fs in RATES for r in RECORDS], desc="records", unit="record"):
        signal, reference = load(folder, record, fs)
        hours[str(fs)] += signal.size / fs / 3600
        beats = {}
        for name, detect in run.items():
            started = time.perf_counter()
            beats[name] = np.asarray(detect(signal, fs), dtype=np.int64)
            seconds[name][str(fs)] += time.perf_counter() - started
            match = compare_annotations(reference, beats[name], round(WINDOW_S * fs))
            counts[name][str(fs)][record] = (match.tp, match.fn, match.fp)
        streamed_equal[f"{record}@{fs}"] = bool(np.array_equal(beats[KIT], beats[STREAMED]))
    results = {}
    print(f"\n{'detector':<25}{'Hz':>5}{'Se %':>8}{'PPV %':>8}{'F1 %':>8}{'worst F1 %':>16}{'s/hour':>9}")
    for name in run:
        results[name] = {}
        for fs in map(str, RATES):
            per_record = {record: figures(*counts[name][fs][record]) for record in RECORDS}
            pooled = figures(*(int(sum(c[i] for c in counts[name][fs].values())) for i in range(3)))
            worst = min(RECORDS, key=lambda record: per_record[record]["f1"])
            per_hour = seconds[name][fs] / hours[fs]
            results[name][fs] = {"pooled": pooled, "worst_record": worst, "seconds_per_hour": per_hour,
                                 "records": per_record}
            print(f"{name:<25}{fs:>5}{100 * pooled['sensitivity']:>8.2f}{100 * pooled['ppv']:>8.2f}"
                  f"{100 * pooled['f1']:>8.2f}{100 * per_record[worst]['f1']:>10.2f} ({worst}){per_hour:>9.3f}")
    equal = all(streamed_equal.values())
    print(f"\nstreamed in {CHUNK_S:g} s chunks == whole signal: {equal}")
    write_json(args.json, {
        "benchmark": "beat_detection", "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(sys.argv), "machine": machine(),
        "threads": {"cpu_count": os.cpu_count(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "versions": {p: version(p) for p in ("edgekit", "sleepecg", "neurokit2", "wfdb", "numpy", "scipy")},
        "data": {"folder": str(folder), "records": list(RECORDS), "channel": 0, "beat_symbols": "".join(sorted(BEAT_SYMBOLS)),
                 "window_s": WINDOW_S, "resample_100hz": "scipy.signal.resample_poly(x, 5, 18)",
                 "hours_of_signal": hours[str(SOURCE_FS)]},
        "detector_spec": BEAT_DETECTOR.to_dict(),
        "streaming": {"chunk_s": CHUNK_S, "equals_whole_signal": equal, "records": streamed_equal},
        "detectors": results,
    })
    print(f"wrote {args.json}")
    if args.plot:
        plot(results, args.plot)
        print(f"wrote {args.plot}")
    if not equal:
        sys.exit("the streamed detector's beats differ from the whole signal's")


if __name__ == "__main__":
    main()
