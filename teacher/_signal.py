"""Where a night has signal: ECG quality marks, beat gaps, and the minutes that can be scored.

A minute without signal (flat line, saturation, samples missing, or no beat for a long stretch) is
neither flagged nor counted in the night's AHI; a night with too little signal is refused. The
rules are plain thresholds on blocks of samples, so the phone core (streaming, a block at a time)
implements them from the constants in the bundle's manifest (`SIGNAL_QUALITY.to_dict()`).
Pure numpy: no files.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from teacher._beats import detect_beats
from teacher._spec import NamedSpec

# Why a block of ECG is unusable, in the order they are tested (the first that holds is reported).
REASONS = ("missing", "saturated", "flat")


@dataclass(frozen=True)
class SignalQualitySpec(NamedSpec):
    """The signal-quality rules, by name and constants.

    Attributes:
        block_s: the ECG is judged in consecutive blocks of this length; 2 s hold a beat even at
            30 bpm, so a block with no QRS-sized swing is not a slow heart but no signal.
        flat_ptp_mv: a block whose peak-to-peak amplitude is below this is flat: electrodes off or
            a disconnected lead (a QRS swings 0.5-3 mV; noise on a loose lead stays under ~0.1 mV).
        saturated_ptp_mv: a block swinging more than this is saturated or moving electrodes (the
            tallest QRS swings ~7 mV; a rail-to-rail amplifier swings 20 mV).
        max_beat_gap_s: a stretch this long without any beat is signal loss, not a pause of the
            heart (RR intervals above 2 s are already rejected as missed beats).
        min_minute_signal: a minute with less than this share of its time usable is "no signal".
        min_night_signal: a night with less than this share of its minutes with signal is refused
            (the RR-coverage floor of `teacher.night_windows` is the same 20 %).
    """

    block_s: float = 2.0
    flat_ptp_mv: float = 0.15
    saturated_ptp_mv: float = 12.0
    max_beat_gap_s: float = 10.0
    min_minute_signal: float = 0.5
    min_night_signal: float = 0.2

    NAME: ClassVar[str] = "signal-quality/1"
    KIND: ClassVar[str] = "signal-quality rules"


SIGNAL_QUALITY = SignalQualitySpec()


@dataclass(frozen=True)
class SignalQuality:
    """ECG quality of one recording, a mark per block.

    Attributes:
        fs: sampling rate, Hz.
        n_samples: samples in the recording.
        block_samples: samples per block (the last block may be shorter).
        reasons: (B,) per block "" when usable, else the reason (one of `REASONS`).
    """

    fs: float
    n_samples: int
    block_samples: int
    reasons: np.ndarray

    @property
    def usable(self) -> np.ndarray:
        return self.reasons == ""

    def usable_samples(self) -> np.ndarray:
        """(n_samples,) True where the sample lies in a usable block."""
        return np.repeat(self.usable, self.block_samples)[: self.n_samples]

    def counts(self) -> dict[str, float]:
        """Seconds of signal lost per reason."""
        lengths = np.full(self.reasons.size, self.block_samples, dtype=np.int64)
        if lengths.size:
            lengths[-1] = self.n_samples - self.block_samples * (lengths.size - 1)
        return {reason: round(float(lengths[self.reasons == reason].sum()) / self.fs, 2) for reason in REASONS}


def assess_ecg(signal: np.ndarray, fs: float, spec: SignalQualitySpec = SIGNAL_QUALITY) -> SignalQuality:
    """Mark each block of an ECG in mV as usable or not, and why.

    Each block is judged alone (no look at its neighbours), so a phone reading a few seconds at a
    time marks the same blocks as a night read whole.
    """
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 1:
        raise ValueError(f"an ECG must be one lead (1-D samples), got shape {signal.shape}")
    if not fs or fs <= 0:
        raise ValueError(f"sampling rate {fs!r} Hz: an ECG needs a positive rate")
    block = max(1, int(round(spec.block_s * fs)))
    n_blocks = -(-signal.size // block)
    padded = np.full(n_blocks * block, np.nan)
    padded[: signal.size] = signal
    blocks = padded.reshape(n_blocks, block)
    filled = ~np.isnan(blocks)
    filled[-1, signal.size - block * (n_blocks - 1):] = True  # the short last block's padding is not a loss
    missing = ~filled.all(axis=1)
    with warnings.catch_warnings():  # an all-NaN block has no range: it is "missing" below
        warnings.simplefilter("ignore", RuntimeWarning)
        ptp = np.nanmax(blocks, axis=1) - np.nanmin(blocks, axis=1) if n_blocks else np.zeros(0)
    reasons = np.full(n_blocks, "", dtype=object)
    reasons[ptp < spec.flat_ptp_mv] = "flat"
    reasons[ptp > spec.saturated_ptp_mv] = "saturated"
    reasons[missing] = "missing"
    return SignalQuality(fs=float(fs), n_samples=int(signal.size), block_samples=block, reasons=reasons.astype(str))


def minute_signal(beat_times: np.ndarray, n_minutes: int, *, quality: SignalQuality | None = None,
                  duration_s: float | None = None, spec: SignalQualitySpec = SIGNAL_QUALITY) -> np.ndarray:
    """Share of each minute with signal: inside the recording, in usable ECG blocks (when the ECG
    is known) and not inside a stretch of more than `max_beat_gap_s` without a beat."""
    grid = np.arange(n_minutes * 60 * 10) / 10.0 + 0.05  # every 0.1 s of the night, at its middle
    has_signal = np.ones(grid.size, dtype=bool)
    if duration_s is not None:
        has_signal &= grid < duration_s
    if quality is not None:
        block = np.minimum((grid * quality.fs // quality.block_samples).astype(np.int64), quality.reasons.size - 1)
        has_signal &= quality.usable[block] & (grid * quality.fs < quality.n_samples)
    # Each instant lies between two beats (the recording's start and end count as bounds).
    beat_times = np.asarray(beat_times, dtype=np.float64)
    end_s = duration_s if duration_s is not None else max(n_minutes * 60.0, beat_times[-1] if beat_times.size else 0.0)
    bounds = np.concatenate([[0.0], beat_times, [end_s]])
    gaps = np.diff(bounds)
    between = np.clip(np.searchsorted(bounds, grid, side="right") - 1, 0, gaps.size - 1)
    has_signal &= gaps[between] <= spec.max_beat_gap_s
    return has_signal.reshape(n_minutes, 600).mean(axis=1) if n_minutes else np.zeros(0)


def reject_beats(beat_samples: np.ndarray, quality: SignalQuality) -> tuple[np.ndarray, dict[str, int]]:
    """The beats that lie in usable ECG, and how many were dropped per reason."""
    beat_samples = np.asarray(beat_samples, dtype=np.int64)
    block = np.minimum(beat_samples // quality.block_samples, quality.reasons.size - 1)
    reasons = quality.reasons[block] if beat_samples.size else np.zeros(0, dtype=str)
    return beat_samples[reasons == ""], {reason: int((reasons == reason).sum()) for reason in REASONS}


def ecg_beats(signal: np.ndarray, fs: float, spec: SignalQualitySpec = SIGNAL_QUALITY
              ) -> tuple[np.ndarray, SignalQuality, dict[str, int]]:
    """R peaks of a one-lead ECG in mV (`teacher.detect_beats`, ecg-to-beats/1) where it has signal.

    Unusable blocks are zeroed before detection, so a saturated stretch cannot raise the detector's
    adaptive thresholds over the next minutes, and any beat found inside one is dropped (counted).
    Returns the beat samples, the quality marks and the dropped beats per reason.
    """
    quality = assess_ecg(signal, fs, spec)
    cleaned = np.where(quality.usable_samples(), np.nan_to_num(np.asarray(signal, dtype=np.float64)), 0.0)
    beats, rejected = reject_beats(detect_beats(cleaned, fs), quality)
    return beats, quality, rejected
