"""The decision rule: a night's per-minute apnea probabilities -> flagged minutes -> the night's call.

The only code in the kit that turns probabilities into flags and an apneic / not apneic call.
Evaluation, replay, explanations, the student's config and the bundle manifest all carry one
`DecisionRule` (`to_dict` / `from_dict`), and the phone core reads the same dict from the bundle.
numpy only, so the replay and the tests share it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import ClassVar

import numpy as np

# A night is called apneic when its apnea-hypopnea index exceeds 5 events an hour, the usual
# clinical cut-off; here the index is estimated as flagged minutes per hour of recording.
AHI_THRESHOLD = 5.0


def estimated_ahi(flags: np.ndarray) -> float:
    """Apnea minutes per hour of the night."""
    return float(np.mean(flags) * 60.0) if len(flags) else float("nan")


def smooth_night(probabilities: np.ndarray, half_width: int) -> np.ndarray:
    """Moving average of one night's per-minute probabilities over +-`half_width` minutes.

    Apneas come in runs of minutes, so a lone flagged minute among normal ones is more likely an
    error than an event; edges are padded with the first/last value so every minute keeps a score.
    """
    if half_width <= 0 or probabilities.size == 0:
        return probabilities
    padded = np.pad(probabilities, half_width, mode="edge")
    kernel = np.full(2 * half_width + 1, 1.0 / (2 * half_width + 1))
    return np.convolve(padded, kernel, mode="valid").astype(probabilities.dtype)


def smooth_by_night(records: np.ndarray, minutes: np.ndarray, probabilities: np.ndarray, half_width: int) -> np.ndarray:
    """`smooth_night` applied to each night's minutes in time order, rows kept where they were."""
    smoothed = probabilities.copy()
    for name in np.unique(records):
        rows = np.flatnonzero(records == name)
        rows = rows[np.argsort(minutes[rows], kind="stable")]
        smoothed[rows] = smooth_night(probabilities[rows], half_width)
    return smoothed


@dataclass(frozen=True)
class DecisionRule:
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

    def smooth(self, probabilities: np.ndarray) -> np.ndarray:
        """One night's probabilities, in minute order, smoothed."""
        return smooth_night(np.asarray(probabilities), self.smoothing_minutes)

    def flags(self, smoothed: np.ndarray) -> np.ndarray:
        """Flagged minutes of already smoothed probabilities."""
        return np.asarray(smoothed) >= self.threshold

    def is_apneic(self, ahi: float) -> bool:
        return bool(ahi > self.ahi_threshold)

    def apply(self, probabilities: np.ndarray) -> dict:
        """One night: its smoothed probabilities, flags, estimated AHI and call."""
        smoothed = self.smooth(probabilities)
        flags = self.flags(smoothed)
        ahi = estimated_ahi(flags)
        return {"smoothed": smoothed, "flags": flags, "estimated_ahi": ahi, "apneic": self.is_apneic(ahi)}

    def apply_by_night(self, records: np.ndarray, minutes: np.ndarray,
                       probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(smoothed, flags) for rows of several nights, each night smoothed in minute order."""
        smoothed = smooth_by_night(records, minutes, np.asarray(probabilities), self.smoothing_minutes)
        return smoothed, self.flags(smoothed)

    def with_threshold(self, threshold: float) -> "DecisionRule":
        return replace(self, threshold=float(threshold))

    def to_dict(self) -> dict:
        return {"name": self.NAME, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "DecisionRule":
        """The rule a config or manifest carries; refused (ValueError) when it is another rule or
        incomplete: a missing field must not fall back to a default silently."""
        data = dict(data)
        name = data.pop("name", cls.NAME)
        if name != cls.NAME:
            raise ValueError(f"decision rule {name!r} is not implemented here (this kit implements {cls.NAME})")
        names = {field.name for field in fields(cls)}
        missing, unknown = sorted(names - set(data)), sorted(set(data) - names)
        if missing or unknown:
            raise ValueError(f"decision rule {data}: missing {missing}, unknown {unknown}")
        return cls(smoothing_minutes=int(data["smoothing_minutes"]), threshold=float(data["threshold"]),
                   ahi_threshold=float(data["ahi_threshold"]), positive_label=str(data["positive_label"]))
