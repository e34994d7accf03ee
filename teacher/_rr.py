"""Beat times -> cleaned RR-interval series -> fixed-grid windows, one per labelled minute.

Pure numpy: no files, no wfdb. The same functions turn beats into model inputs on the server
(training, evaluation) and in the replay that mimics the phone, so the preprocessing is defined once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

# Physiological limits of one RR interval: 0.3 s is 200 bpm, 2.0 s is 30 bpm. Intervals outside
# are missed or doubled detections, not heart beats.
RR_MIN_S = 0.3
RR_MAX_S = 2.0
# An interval that differs from the median of its neighbours by more than this fraction is an
# ectopic beat or a detection error. 20 % is the usual (Malik) criterion; apnea's cyclic heart-rate
# variation changes RR by ~10-20 % over tens of seconds, so a local median over ~10 beats keeps it.
ECTOPIC_TOLERANCE = 0.2
ECTOPIC_NEIGHBOURS = 5  # on each side


@dataclass(frozen=True)
class RRSeries:
    """Cleaned RR intervals of one night.

    Attributes:
        times: (K,) time in seconds of the beat that ends each kept interval.
        rr: (K,) kept RR intervals in seconds.
        n_intervals: intervals before cleaning.
        n_out_of_range: rejected for leaving [RR_MIN_S, RR_MAX_S].
        n_ectopic: rejected as ectopic / outliers against the local median.
    """

    times: np.ndarray
    rr: np.ndarray
    n_intervals: int
    n_out_of_range: int
    n_ectopic: int

    @property
    def n_kept(self) -> int:
        return int(self.rr.size)

    def counts(self) -> dict[str, int]:
        return {
            "intervals": self.n_intervals,
            "out_of_range": self.n_out_of_range,
            "ectopic": self.n_ectopic,
            "kept": self.n_kept,
        }


@dataclass(frozen=True)
class BeatNoise:
    """A noisier beat detector than the reference annotations, to measure robustness.

    Attributes:
        jitter_s: standard deviation of the timing error of each detected beat.
        missed: fraction of true beats the detector misses.
        extra: false detections, as a fraction of true beats, at uniformly random times.
        seed: seeds the random generator (each night adds its own offset).
    """

    jitter_s: float = 0.01
    missed: float = 0.02
    extra: float = 0.02
    seed: int = 0

    def apply(self, beat_times: np.ndarray, offset: int = 0) -> np.ndarray:
        rng = np.random.default_rng(self.seed + offset)
        kept = beat_times[rng.random(beat_times.size) >= self.missed]
        kept = kept + rng.normal(0.0, self.jitter_s, kept.size)
        false_beats = rng.uniform(beat_times.min(), beat_times.max(), int(self.extra * beat_times.size))
        noisy = np.sort(np.concatenate([kept, false_beats]))
        return noisy[np.concatenate([[True], np.diff(noisy) > 0])]  # keep strictly increasing


def _local_median(values: np.ndarray, half_width: int) -> np.ndarray:
    """Median of each value's neighbours (itself excluded), edges using what exists."""
    n = values.size
    padded = np.pad(values.astype(np.float64), half_width, mode="constant", constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half_width + 1).copy()
    windows[:, half_width] = np.nan  # leave the interval under test out of its own reference
    with warnings.catch_warnings():
        # An interval with no neighbours (a one-interval series) has no reference: NaN, on purpose.
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(windows, axis=1)[:n]


def clean_rr(beat_times: np.ndarray) -> RRSeries:
    """RR intervals from beat times, with out-of-range and ectopic intervals removed.

    Args:
        beat_times: (N,) increasing beat times in seconds.

    Returns:
        The kept intervals and how many were rejected for each reason.
    """
    beat_times = np.asarray(beat_times, dtype=np.float64)
    if beat_times.ndim != 1:
        raise ValueError(f"beat times must be 1-D, got shape {beat_times.shape}")
    if not np.all(np.isfinite(beat_times)):
        raise ValueError("beat times contain NaN or infinite values")
    rr = np.diff(beat_times)
    times = beat_times[1:]
    if np.any(rr <= 0):
        raise ValueError("beat times are not strictly increasing")

    in_range = (rr >= RR_MIN_S) & (rr <= RR_MAX_S)
    candidate_rr = rr[in_range]
    if candidate_rr.size:
        reference = _local_median(candidate_rr, ECTOPIC_NEIGHBOURS)
        reference = np.where(np.isnan(reference), candidate_rr, reference)
        regular = np.abs(candidate_rr - reference) <= ECTOPIC_TOLERANCE * reference
    else:
        regular = np.zeros(0, dtype=bool)
    return RRSeries(
        times=times[in_range][regular],
        rr=candidate_rr[regular],
        n_intervals=int(rr.size),
        n_out_of_range=int((~in_range).sum()),
        n_ectopic=int((~regular).sum()),
    )


def resample_rr(series: RRSeries, grid_hz: float, start_s: float, stop_s: float) -> np.ndarray:
    """RR series on a regular grid over [start_s, stop_s), linear between kept beats.

    Rejected intervals are bridged by interpolation; before the first and after the last kept beat
    the nearest value is held, which is how windows at the night's edges are padded.
    """
    if series.n_kept == 0:
        raise ValueError("no valid RR intervals to resample")
    grid = start_s + np.arange(int(round((stop_s - start_s) * grid_hz))) / grid_hz
    return np.interp(grid, series.times, series.rr).astype(np.float32)


@dataclass(frozen=True)
class WindowSpec:
    """How a minute becomes a model input: RR on a `grid_hz` grid, `context_minutes` each side.

    The registry's input contract of each model holds these (`InputContract.window_spec`): the one
    place a window's rate and context are set.
    """

    grid_hz: float
    context_minutes: int
    # Rescale each night so its median RR is NIGHT_MEDIAN_RR_S: removes each patient's resting
    # heart rate, leaving the variations (cyclic heart-rate changes) that apneas cause.
    night_relative: bool = True

    @property
    def samples_per_minute(self) -> int:
        samples = int(round(60 * self.grid_hz))
        if samples != 60 * self.grid_hz:
            raise ValueError(f"grid rate {self.grid_hz} Hz does not give a whole number of samples a minute")
        return samples

    @property
    def length(self) -> int:
        """Samples in one window: the scored minute and its context."""
        return (2 * self.context_minutes + 1) * self.samples_per_minute


def minute_windows(series: RRSeries, n_minutes: int, spec: WindowSpec) -> np.ndarray:
    """One window per minute of the night: the minute itself plus `spec.context_minutes` each side.

    Minute m covers [60 m, 60 (m + 1)) seconds, as the Apnea-ECG labels do. Every minute gets a
    window, the first and last included: context beyond the recording is edge-padded.

    Returns:
        (n_minutes, 1, spec.length) float32 RR values in seconds.
    """
    samples_per_minute = spec.samples_per_minute
    # Resample the whole padded night once, then cut overlapping views out of it.
    night = resample_rr(
        series, spec.grid_hz, -60.0 * spec.context_minutes, 60.0 * (n_minutes + spec.context_minutes)
    )
    width = spec.length
    starts = np.arange(n_minutes) * samples_per_minute
    windows = np.stack([night[s : s + width] for s in starts])
    return windows[:, None, :]


def valid_coverage(series: RRSeries, n_minutes: int) -> np.ndarray:
    """Fraction of each minute covered by kept intervals: low values mean noise or signal loss."""
    covered = np.zeros(n_minutes, dtype=np.float64)
    minute = np.floor((series.times - series.rr / 2) / 60.0).astype(int)
    inside = (minute >= 0) & (minute < n_minutes)
    np.add.at(covered, minute[inside], series.rr[inside])
    return np.clip(covered / 60.0, 0.0, 1.0)
