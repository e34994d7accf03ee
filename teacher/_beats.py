"""ECG -> beats: the kit's R-peak detector (`ecg-to-beats/1`), whole-night or streamed.

A Pan-Tompkins detector (Pan & Tompkins 1985; Hamilton & Tompkins 1986), written as a spec the phone
core implements too: band-pass, first difference, square, moving-window integration; every local
maximum of the integrated signal is a candidate, classified against adaptive signal and noise
levels, with a refractory period, a T-wave slope test and a search-back for missed beats; each beat
is then placed on its R peak. Every constant is a field of `BeatDetectorSpec` and travels in the
bundle's manifest. The filters carry their state and the candidate loop looks ahead a fixed
number of samples only (a candidate's spacing and its R-peak search), so `StreamingBeatDetector`
fed chunks of any size returns exactly the beats of `detect_beats` on the whole signal. Pure numpy/scipy: no files. Studies: benchmarks/notes/beat-detection.md.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np
from scipy import ndimage
from scipy import signal as sps

from teacher._spec import NamedSpec

ECG_TO_BEATS = "ecg-to-beats/1"

MIN_FS, MAX_FS = 100.0, 1000.0


@dataclass(frozen=True)
class BeatDetectorSpec(NamedSpec):
    """The detector, by name and constants (times in seconds, so one spec serves every rate).

    Attributes:
        band_hz: the band-pass (Butterworth, `band_order`, second-order sections, causal) that keeps
            the QRS and drops baseline wander, T waves and mains hum.
        band_order: order of each half of the Butterworth band-pass.
        integration_s: moving-window integration of the squared difference; about a QRS wide.
        learning_s: the first seconds set the initial signal level.
        refractory_s: no second beat this soon after a beat; a taller candidate inside it moves the beat.
        t_wave_s: a candidate this soon after a beat is a T wave when its steepest slope is under
            `t_wave_slope` of the beat's.
        t_wave_slope: see `t_wave_s`.
        threshold_fraction: a candidate is a beat above noise + this x (signal - noise) level.
        signal_weight, noise_weight: weight of a new peak in the running signal / noise level.
        search_back_rr: a gap this many times the recent RR sends the detector back for the tallest
            candidate in it above `search_back_fraction` of the threshold.
        search_back_fraction: see `search_back_rr`.
        rr_beats: the recent RR is the median of this many intervals.
        relearn_s: with no beat this long, even after search-back, the signal level was set by an
            artefact: it restarts from the tallest candidate in the gap.
        candidate_s: a candidate is the largest integrated value this far either side (half the
            refractory period: a smaller hump this close to a taller one is never a second beat).
        peak_window_s: the R peak is the largest deviation of the ECG from its local median within
            this distance of the band-passed QRS's centre.
    """

    band_hz: tuple[float, float] = (5.0, 20.0)
    band_order: int = 2
    integration_s: float = 0.15
    learning_s: float = 2.0
    refractory_s: float = 0.2
    t_wave_s: float = 0.36
    t_wave_slope: float = 0.5
    threshold_fraction: float = 0.25
    signal_weight: float = 0.125
    noise_weight: float = 0.125
    search_back_rr: float = 1.66
    search_back_fraction: float = 0.5
    rr_beats: int = 8
    relearn_s: float = 3.0
    peak_window_s: float = 0.05
    candidate_s: float = 0.1

    NAME: ClassVar[str] = ECG_TO_BEATS
    KIND: ClassVar[str] = "beat detector"


BEAT_DETECTOR = BeatDetectorSpec()


def detect_beats(signal: np.ndarray, fs: float, spec: BeatDetectorSpec = BEAT_DETECTOR) -> np.ndarray:
    """R-peak sample indices (sorted, unique, int64) of a one-lead ECG sampled at `fs` Hz."""
    detector = StreamingBeatDetector(fs, spec)
    return np.concatenate([detector.feed(signal), detector.finish()])


class _Candidate(NamedTuple):
    index: int  # sample of the integrated signal's local maximum
    height: float  # integrated signal there
    slope: float  # steepest band-passed slope in the integration window before it
    peak: int  # R peak sample


class StreamingBeatDetector:
    """The detector a chunk at a time: `feed` returns the beats that are final, `finish` the rest.

    A beat is final once a later candidate lies beyond its refractory period and search-back gap, so
    the output lags the input by about one beat.
    """

    def __init__(self, fs: float, spec: BeatDetectorSpec = BEAT_DETECTOR):
        fs = float(fs)
        if not MIN_FS <= fs <= MAX_FS:
            raise ValueError(f"the beat detector runs at {MIN_FS:g}-{MAX_FS:g} Hz, not {fs:g} Hz")
        self.fs, self.spec = fs, spec
        self._sos = sps.butter(spec.band_order, spec.band_hz, btype="bandpass", fs=fs, output="sos")
        self._band_state = np.zeros((self._sos.shape[0], 2))
        self._width = max(1, round(spec.integration_s * fs))
        self._energy_tail = np.zeros(self._width - 1)  # the energies before the next chunk
        self._peak_half = max(1, round(spec.peak_window_s * fs))
        self._spacing = max(1, round(spec.candidate_s * fs))
        # Samples kept behind the newest: the integration window, the R-peak search around a
        # QRS centre that lies up to a window behind its candidate, and one for the derivative.
        self._keep = 2 * self._width + 4 * self._peak_half + self._spacing + 2
        self._lookahead = max(2 * self._peak_half, self._spacing) + 1
        self._raw = np.zeros(0)
        self._band = np.zeros(0)
        self._slope = np.zeros(0)
        self._integrated = np.zeros(0)
        self._start = 0  # sample index of the buffers' first element
        self._n = 0  # samples fed
        self._previous_band = 0.0
        self._next_candidate = 1  # first sample not yet tested as a local maximum
        self._learning: list[_Candidate] | None = []
        self._signal_level = self._noise_level = 0.0
        self._beats: list[_Candidate] = []
        self._noise_since_beat: list[_Candidate] = []
        self._rr: list[int] = []
        self._recent_rr = 0.0
        self._emitted = 0
        self._last_peak = -1

    def feed(self, chunk: np.ndarray) -> np.ndarray:
        """Take the next samples (mV); the beats now final."""
        chunk = np.asarray(chunk, dtype=np.float64).ravel()
        if not np.all(np.isfinite(chunk)):
            raise ValueError("the ECG holds NaN or infinite samples: mark them as no signal first (teacher.ecg_beats)")
        if chunk.size:
            self._filter(chunk)
            self._find_candidates(final=False)
        return self._take(final=False)

    def finish(self) -> np.ndarray:
        """The end of the signal: every remaining beat."""
        self._find_candidates(final=True)
        return self._take(final=True)

    # The filters carry their state across chunks, so chunked output equals whole-signal output.
    def _filter(self, chunk: np.ndarray) -> None:
        band, self._band_state = sps.sosfilt(self._sos, chunk, zi=self._band_state)
        slope = np.empty_like(band)
        slope[0], slope[1:] = band[0] - self._previous_band, band[1:] - band[:-1]
        slope *= self.fs
        self._previous_band = float(band[-1])
        # Each integrated value is the mean of the same `width` energies however the signal was cut,
        # summed in window order one elementwise step at a time: a dot product (np.convolve) sums in
        # an order the CPU's BLAS picks, which the phone core could not repeat bit for bit.
        energy = np.concatenate([self._energy_tail, slope * slope])
        integrated = np.zeros(energy.size - self._width + 1)
        weight = 1.0 / self._width
        for offset in range(self._width):
            integrated += energy[offset:offset + integrated.size] * weight
        self._energy_tail = energy[energy.size - (self._width - 1):]
        self._raw = np.concatenate([self._raw, chunk])
        self._band = np.concatenate([self._band, band])
        self._slope = np.concatenate([self._slope, np.abs(slope)])
        self._integrated = np.concatenate([self._integrated, integrated])
        self._n += chunk.size

    def _find_candidates(self, final: bool) -> None:
        # A candidate is the largest integrated value within `candidate_s` either side; it needs
        # that many samples after it, and the R-peak search around its QRS centre.
        last = self._n if final else self._n - self._lookahead
        first = self._next_candidate
        if last <= first:
            return
        y, lo, hi = self._integrated, first - self._start, last - self._start
        context = slice(max(0, lo - self._spacing), min(y.size, hi + self._spacing))
        largest = ndimage.maximum_filter1d(y[context], 2 * self._spacing + 1, mode="nearest")
        inside = slice(lo - context.start, hi - context.start)
        middle = y[lo:hi]
        is_candidate = (middle == largest[inside]) & (middle > y[lo - 1:hi - 1])
        at = lo + np.flatnonzero(is_candidate)
        for candidate in zip((self._start + at).tolist(), y[at].tolist(), *self._features(at)):
            self._classify(_Candidate(*candidate))
        self._next_candidate = last
        drop = self._next_candidate - self._keep - self._start
        if drop > 0:
            self._raw, self._band = self._raw[drop:], self._band[drop:]
            self._slope, self._integrated = self._slope[drop:], self._integrated[drop:]
            self._start += drop

    def _features(self, at: np.ndarray) -> tuple[list, list]:
        """Per candidate (buffer positions `at`): the steepest slope before it and its R peak."""
        if not at.size:
            return [], []
        # Indices clipped to the buffer: at the very start a window is shorter (its first sample
        # repeats), and the R-peak search pads with the edge sample.
        last = self._raw.size - 1
        window = np.clip(at[:, None] + np.arange(1 - self._width, 1), 0, last)
        slope = self._slope[window].max(axis=1)
        centre = window[np.arange(at.size), np.abs(self._band[window]).argmax(axis=1)]
        # The R peak: the largest deviation from the local median, within `half` of the centre.
        half = self._peak_half
        around = self._raw[np.clip(centre[:, None] + np.arange(-2 * half, 2 * half + 1), 0, last)]
        deviation = np.abs(around - np.median(around, axis=1, keepdims=True))[:, half:3 * half + 1]
        peak = self._start + centre - half + deviation.argmax(axis=1)
        return slope.tolist(), peak.tolist()

    # The decision, one candidate at a time in time order.
    def _threshold(self) -> float:
        return self._noise_level + self.spec.threshold_fraction * (self._signal_level - self._noise_level)

    def _classify(self, candidate: _Candidate) -> None:
        spec, fs = self.spec, self.fs
        if self._learning is not None:
            if candidate.index < spec.learning_s * fs:
                self._learning.append(candidate)
                return
            learning, self._learning = self._learning + [candidate], None
            self._signal_level = max(c.height for c in learning)
            self._noise_level = 0.0
            for each in learning:
                self._classify(each)
            return
        if self._beats:
            last = self._beats[-1]
            if candidate.index - last.index < spec.refractory_s * fs:
                if candidate.height > last.height and candidate.height > self._threshold():
                    self._beats[-1] = candidate
                return
            self._search_back(candidate.index)
        if candidate.height > self._threshold() and not self._is_t_wave(candidate):
            self._add_beat(candidate, spec.signal_weight)
        else:
            self._noise_level += spec.noise_weight * (candidate.height - self._noise_level)
            self._noise_since_beat.append(candidate)

    def _is_t_wave(self, candidate: _Candidate) -> bool:
        if not self._beats:
            return False
        last = self._beats[-1]
        return (candidate.index - last.index < self.spec.t_wave_s * self.fs
                and candidate.slope < self.spec.t_wave_slope * last.slope)

    def _search_back(self, index: int) -> None:
        """Beats missed in the gap before `index`: the tallest candidate above a lowered threshold."""
        spec, fs = self.spec, self.fs
        while self._rr and self._noise_since_beat:
            last = self._beats[-1].index
            if index - last <= spec.search_back_rr * self._recent_rr:
                return
            gap = [c for c in self._noise_since_beat
                   if c.index - last >= spec.refractory_s * fs and index - c.index >= spec.refractory_s * fs]
            if not gap:
                return
            tallest = max(gap, key=lambda c: c.height)
            if tallest.height <= spec.search_back_fraction * self._threshold():
                if index - last < spec.relearn_s * fs:
                    return
                self._signal_level = tallest.height
            self._noise_since_beat = [c for c in self._noise_since_beat if c.index > tallest.index]
            self._add_beat(tallest, 0.25, keep_noise=True)

    def _add_beat(self, candidate: _Candidate, weight: float, keep_noise: bool = False) -> None:
        self._signal_level += weight * (candidate.height - self._signal_level)
        if self._beats:
            self._rr.append(candidate.index - self._beats[-1].index)
            del self._rr[:-self.spec.rr_beats]
            self._recent_rr = statistics.median(self._rr)
        self._beats.append(candidate)
        if not keep_noise:
            self._noise_since_beat = []

    def _take(self, final: bool) -> np.ndarray:
        if final and self._learning:  # a signal shorter than the learning period
            learning, self._learning = self._learning, None
            self._signal_level = max(c.height for c in learning)
            for each in learning:
                self._classify(each)
        ready = self._beats if final else self._beats[:-1]
        out = []
        for beat in ready[self._emitted:]:
            if beat.peak > self._last_peak:  # two QRS centres can settle on one R peak
                out.append(beat.peak)
                self._last_peak = beat.peak
        self._emitted = len(ready)
        # Beats before the newest are final: keep only what the decision still reads.
        if len(self._beats) > 1:
            self._emitted -= len(self._beats) - 1
            self._beats = self._beats[-1:]
        return np.array(out, dtype=np.int64)
