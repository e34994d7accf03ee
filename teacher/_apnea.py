"""Apnea-ECG nights -> per-minute model inputs, and the record splits the kit uses."""

from __future__ import annotations

import dataclasses
import os
import random
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from teacher._apnea_io import (
    LEARNING_RECORDS,
    MIN_VALID_COVERAGE,
    TEST_RECORDS,
    ApneaDataError,
    Night,
    read_answers,
    read_night,
)
from teacher._signal import SIGNAL_QUALITY, minute_signal
from teacher._rr import BeatNoise, WindowSpec, clean_rr, minute_windows, valid_coverage

LABEL_NAMES = ("normal", "apnea")
NIGHT_MEDIAN_RR_S = 0.95


@dataclass
class ApneaWindows:
    """Per-minute windows of several nights, aligned row by row.

    Attributes:
        inputs: (N, 1, L) float32 RR intervals in seconds on the grid.
        labels: (N,) int64, 1 = apnea, -1 = unlabelled.
        records: (N,) record name of each window.
        minutes: (N,) minute index within its night.
        scored: (N,) bool, False for a minute without signal (`teacher.minute_signal`): it is
            neither flagged nor counted in its night's AHI. All True when not given.
    """

    inputs: np.ndarray
    labels: np.ndarray
    records: np.ndarray
    minutes: np.ndarray
    scored: np.ndarray | None = None

    def __post_init__(self):
        if self.scored is None:
            self.scored = np.ones(self.labels.size, dtype=bool)

    def __len__(self) -> int:
        return int(self.labels.size)

    def select(self, mask: np.ndarray) -> "ApneaWindows":
        return ApneaWindows(self.inputs[mask], self.labels[mask], self.records[mask], self.minutes[mask],
                            self.scored[mask])

    def concatenate(self, other: "ApneaWindows") -> "ApneaWindows":
        return ApneaWindows(
            np.concatenate([self.inputs, other.inputs]),
            np.concatenate([self.labels, other.labels]),
            np.concatenate([self.records, other.records]),
            np.concatenate([self.minutes, other.minutes]),
            np.concatenate([self.scored, other.scored]),
        )


def night_windows(night: Night, spec: WindowSpec) -> tuple[np.ndarray, np.ndarray, dict]:
    """Windows for every minute of one night, which minutes have signal (`scored`), and the report:
    RR-cleaning counts, coverage, minutes without signal (and the beats the ECG's quality rejected).

    Raises:
        ApneaDataError: too few valid beats, or too little signal, to score the night.
    """
    try:
        series = clean_rr(night.beat_times)
    except ValueError as error:
        raise ApneaDataError(f"{night.name}: beats in {night.beat_source} unusable ({error})") from error
    coverage = valid_coverage(series, night.n_minutes)
    report = {**series.counts(), "coverage": round(float(coverage.mean()), 4)}
    if series.n_kept < 2 or coverage.mean() < MIN_VALID_COVERAGE:
        raise ApneaDataError(
            f"{night.name}: too few valid beats in {night.beat_source} ({series.n_kept} kept of {series.n_intervals} intervals, "
            f"covering {coverage.mean():.0%} of {night.n_minutes} minutes; need "
            f"{MIN_VALID_COVERAGE:.0%})"
        )
    scored = scored_minutes(night, report)
    windows = minute_windows(series, night.n_minutes, spec)
    if spec.night_relative:
        windows *= NIGHT_MEDIAN_RR_S / np.median(series.rr)
    return windows, scored, report


def scored_minutes(night: Night, report: dict) -> np.ndarray:
    """The minutes with signal (`SIGNAL_QUALITY.min_minute_signal` of their time or more); adds
    their count to `report`. Refuses a night with too little signal."""
    share = minute_signal(night.beat_times, night.n_minutes, quality=night.quality,
                          duration_s=night.n_samples / night.fs)
    scored = share >= SIGNAL_QUALITY.min_minute_signal
    report["no_signal_minutes"] = int((~scored).sum())
    if night.quality is not None:
        report["no_signal_seconds"] = night.quality.counts()
    if not scored.any() or scored.mean() < SIGNAL_QUALITY.min_night_signal:
        where = night.beat_source + (f", ECG {night.signal_source}" if night.signal_source else "")
        raise ApneaDataError(
            f"{night.name}: too little signal ({where}): {int(scored.sum())} of {night.n_minutes} minutes have "
            f"signal, a night needs {SIGNAL_QUALITY.min_night_signal:.0%}"
            + (f"; seconds lost: {night.quality.counts()}" if night.quality is not None else "")
        )
    return scored


def load_windows(
    records: list[str],
    data_dir: str | os.PathLike | None,
    spec: WindowSpec,
    *,
    beat_noise: BeatNoise | None = None,
    beats: str = "annotations",
    progress: bool = True,
) -> tuple[ApneaWindows, list[dict]]:
    """Read nights and cut one window per minute.

    Args:
        beat_noise: degrade the beat annotations first (robustness benchmarks only).
        beats: "annotations" (the .qrs) or "detector" (the kit's detector on the ECG; `read_night`).

    Returns:
        The windows and, per night, its provenance: name, file hashes, minutes, RR-cleaning counts.
    """
    answers = read_answers(data_dir)
    inputs, labels, names, minutes, signal, provenance = [], [], [], [], [], []
    for index, name in enumerate(tqdm(records, desc="reading nights", unit="night", disable=not progress)):
        night = read_night(name, data_dir, answers=answers, beats=beats)
        if beat_noise is not None:
            night = dataclasses.replace(night, beat_times=beat_noise.apply(night.beat_times, offset=index))
        windows, scored, report = night_windows(night, spec)
        n = night.n_minutes
        inputs.append(windows)
        signal.append(scored)
        labels.append(night.labels.astype(np.int64) if night.labels is not None else np.full(n, -1))
        names.append(np.full(n, name))
        minutes.append(np.arange(n))
        provenance.append({"record": name, "files": night.files, "minutes": n, "rr": report})
    data = ApneaWindows(
        inputs=np.concatenate(inputs),
        labels=np.concatenate(labels),
        records=np.concatenate(names),
        minutes=np.concatenate(minutes),
        scored=np.concatenate(signal),
    )
    return data, provenance


def validation_records(seed: int = 0, per_group: dict[str, int] | None = None) -> list[str]:
    """Validation nights carved from the learning set only (never from x01-x35).

    Stratified by group (a: apnea, b: borderline, c: control) so validation sees every kind of night.
    """
    per_group = per_group or {"a": 4, "b": 1, "c": 2}
    rng = random.Random(seed)
    chosen = []
    for group, count in per_group.items():
        members = [name for name in LEARNING_RECORDS if name.startswith(group)]
        chosen += sorted(rng.sample(members, count))
    return chosen


def official_split(validation_seed: int | None = 0) -> dict[str, list[str]]:
    """a/b/c nights train, x01-x35 test; with a seed, validation nights are held out of train."""
    val = validation_records(validation_seed) if validation_seed is not None else []
    return {
        "train": [name for name in LEARNING_RECORDS if name not in val],
        "val": val,
        "test": list(TEST_RECORDS),
    }


def leave_nights_out_folds(k: int = 5, seed: int = 0, records: list[str] | None = None) -> list[list[str]]:
    """k folds of whole nights, dealt out group by group (a, b, c) so every fold sees each kind.

    Cross-validation over these never mixes minutes of one night between training and validation.
    """
    records = list(records or LEARNING_RECORDS)
    rng = random.Random(seed)
    folds: list[list[str]] = [[] for _ in range(k)]
    position = 0
    for group in sorted({name[0] for name in records}):
        members = [name for name in records if name[0] == group]
        rng.shuffle(members)
        for name in members:
            folds[position % k].append(name)
            position += 1
    return folds


def leave_patients_out(records: list[str], patients: list[str]) -> tuple[list[str], list[str]]:
    """Split `records` into (kept, removed) by record name, for unlearning and its retrained reference.

    Raises:
        ApneaDataError: a patient that is not among the records.
    """
    unknown = sorted(set(patients) - set(records))
    if unknown:
        raise ApneaDataError(f"unknown patient(s) {unknown}: not among the records {records}")
    return [r for r in records if r not in patients], [r for r in records if r in patients]
