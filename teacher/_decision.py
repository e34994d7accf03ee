"""The decision rule: a night's per-minute apnea probabilities -> flagged minutes -> the night's call.

The only code in the kit that turns probabilities into flags and an apneic / not apneic call.
Evaluation, replay, explanations, the student's config and the bundle manifest all carry one
`DecisionRule` (`to_dict` / `from_dict`), and the phone core reads the same dict from the bundle.
numpy only, so the replay and the tests share it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from teacher._spec import NamedSpec

# A night is called apneic when its apnea-hypopnea index exceeds 5 events an hour, the usual
# clinical cut-off; here the index is estimated as flagged minutes per hour of recording.
AHI_THRESHOLD = 5.0


@dataclass(frozen=True)
class SeverityClasses(NamedSpec):
    """A night's severity from its AHI, the usual clinical classes (AASM): normal below `mild_ahi`,
    mild, moderate from `moderate_ahi`, severe from `severe_ahi` events an hour."""

    mild_ahi: float = 5.0
    moderate_ahi: float = 15.0
    severe_ahi: float = 30.0

    NAME: ClassVar[str] = "apnea-severity/1"
    KIND: ClassVar[str] = "severity classes"

    def of(self, ahi: float) -> str | None:
        """The class of an estimated AHI; None for a night without one (NaN)."""
        if np.isnan(ahi):
            return None
        for bound, name in ((self.severe_ahi, "severe"), (self.moderate_ahi, "moderate"), (self.mild_ahi, "mild")):
            if ahi >= bound:
                return name
        return "normal"


SEVERITY = SeverityClasses()


def estimated_ahi(flags: np.ndarray, scored: np.ndarray | None = None) -> float:
    """Apnea minutes per hour of the night's minutes with signal (all of them without `scored`)."""
    flags = np.asarray(flags, dtype=bool)
    hours = (flags.size if scored is None else int(np.sum(scored))) / 60.0
    return float(np.sum(flags) / hours) if hours else float("nan")


def smooth_night(probabilities: np.ndarray, half_width: int, scored: np.ndarray | None = None) -> np.ndarray:
    """Moving average of one night's per-minute probabilities over +-`half_width` minutes.

    Apneas come in runs of minutes, so a lone flagged minute among normal ones is more likely an
    error than an event; edges are padded with the first/last value so every minute keeps a score.
    Minutes without signal (`scored` False) are left out of their neighbours' averages; a minute
    with no scored neighbour at all gets 0.
    """
    if half_width <= 0 or probabilities.size == 0:
        return probabilities
    kernel = np.full(2 * half_width + 1, 1.0 / (2 * half_width + 1))
    if scored is None or np.all(scored):
        padded = np.pad(probabilities, half_width, mode="edge")
        return np.convolve(padded, kernel, mode="valid").astype(probabilities.dtype)
    weights = np.asarray(scored, dtype=np.float64)
    total = np.convolve(np.pad(probabilities * weights, half_width, mode="edge"), kernel, mode="valid")
    count = np.convolve(np.pad(weights, half_width, mode="edge"), kernel, mode="valid")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, 0.0).astype(probabilities.dtype)


def smooth_by_night(records: np.ndarray, minutes: np.ndarray, probabilities: np.ndarray, half_width: int,
                    scored: np.ndarray | None = None) -> np.ndarray:
    """`smooth_night` applied to each night's minutes in time order, rows kept where they were."""
    smoothed = probabilities.copy()
    for name in np.unique(records):
        rows = np.flatnonzero(records == name)
        rows = rows[np.argsort(minutes[rows], kind="stable")]
        smoothed[rows] = smooth_night(probabilities[rows], half_width, None if scored is None else scored[rows])
    return smoothed


@dataclass(frozen=True)
class DecisionRule(NamedSpec):
    """Smooth each minute's apnea probability over `smoothing_minutes` each side, flag the minutes
    whose average reaches `threshold`, call the night apneic when its flagged minutes per hour (the
    estimated AHI) exceed `ahi_threshold`.

    The defaults are the apnea teacher's, chosen by cross-validation on the learning nights
    (benchmarks/notes/apnea-teacher.md); a student may carry its own threshold.
    """

    smoothing_minutes: int = 3
    threshold: float = 0.45
    ahi_threshold: float = AHI_THRESHOLD
    positive_label: str = "apnea"

    NAME: ClassVar[str] = "smoothed-threshold/1"
    KIND: ClassVar[str] = "decision rule"

    def smooth(self, probabilities: np.ndarray, scored: np.ndarray | None = None) -> np.ndarray:
        """One night's probabilities, in minute order, smoothed over its minutes with signal."""
        return smooth_night(np.asarray(probabilities), self.smoothing_minutes, scored)

    def flags(self, smoothed: np.ndarray, scored: np.ndarray | None = None) -> np.ndarray:
        """Flagged minutes of already smoothed probabilities; a minute without signal is never flagged."""
        flags = np.asarray(smoothed) >= self.threshold
        return flags if scored is None else flags & np.asarray(scored, dtype=bool)

    def is_apneic(self, ahi: float) -> bool:
        return bool(ahi > self.ahi_threshold)

    def apply(self, probabilities: np.ndarray, scored: np.ndarray | None = None) -> dict:
        """One night: its smoothed probabilities, flags, estimated AHI and call. `scored` marks the
        minutes with signal (default: all); the others are neither flagged nor counted in the AHI."""
        smoothed = self.smooth(probabilities, scored)
        flags = self.flags(smoothed, scored)
        ahi = estimated_ahi(flags, scored)
        return {"smoothed": smoothed, "flags": flags, "estimated_ahi": ahi, "apneic": self.is_apneic(ahi)}

    def apply_by_night(self, records: np.ndarray, minutes: np.ndarray, probabilities: np.ndarray,
                       scored: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(smoothed, flags) for rows of several nights, each night smoothed in minute order."""
        smoothed = smooth_by_night(records, minutes, np.asarray(probabilities), self.smoothing_minutes, scored)
        return smoothed, self.flags(smoothed, scored)

    def with_threshold(self, threshold: float) -> "DecisionRule":
        return replace(self, threshold=float(threshold))

