"""The beat detector (`teacher.detect_beats`, ecg-to-beats/1) on short real excerpts with known
beats (tests/data/beats/, cut by its cut.py), streamed and whole, and its refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

import teacher

EXCERPTS = Path(__file__).resolve().parents[1] / "data" / "beats"
QRS_OFFSET = 4  # Apnea-ECG's .qrs sits ~40 ms (4 samples) before the R peak


def _excerpt(name: str) -> tuple[np.ndarray, float, np.ndarray]:
    data = np.load(EXCERPTS / f"{name}.npz")
    return data["adu"] / float(data["gain"]), float(data["fs"]), data["beats"]


def _matched(reference: np.ndarray, detected: np.ndarray, tolerance: int) -> tuple[int, int]:
    """(reference beats with a detection within `tolerance` samples, detections matching none)."""
    distance = np.abs(reference[:, None] - detected[None, :])
    found = int((distance.min(axis=1) <= tolerance).sum()) if detected.size else 0
    extra = int((distance.min(axis=0) > tolerance).sum()) if reference.size else detected.size
    return found, extra


@pytest.mark.parametrize("name, found_at_least, extra_at_most", [
    ("mitdb108", 54, 1),  # 55 beats, tall T waves
    ("mitdb114", 58, 0),  # 58 beats, ventricular ones among them
    ("a01", 124, 0),  # 124 .qrs beats
])
def test_finds_the_annotated_beats_of_real_ecg(name, found_at_least, extra_at_most):
    ecg, fs, reference = _excerpt(name)
    beats = teacher.detect_beats(ecg, fs)
    if name == "a01":
        reference = reference + QRS_OFFSET
    found, extra = _matched(reference, beats, tolerance=int(0.15 * fs))
    assert found >= found_at_least and extra <= extra_at_most, (found, extra, reference.size)
    assert beats.dtype == np.int64 and np.all(np.diff(beats) > 0)


def test_beats_sit_on_the_r_peak_not_on_the_upslope():
    ecg, fs, qrs = _excerpt("a01")
    beats = teacher.detect_beats(ecg, fs)
    nearest = beats[np.abs(beats[None, :] - qrs[:, None]).argmin(axis=1)]
    assert np.median(nearest - qrs) == QRS_OFFSET


def test_the_same_heart_at_100_hz_gives_the_same_beats_as_at_360_hz():
    ecg, fs, _ = _excerpt("mitdb114")
    at_360 = teacher.detect_beats(ecg, fs) / fs
    at_100 = teacher.detect_beats(resample_poly(ecg, 5, 18), 100.0) / 100.0
    assert at_100.size == at_360.size
    # Within the QRS: on a biphasic V5 complex the largest deflection may be R at one rate, S at the other.
    assert np.median(np.abs(at_100 - at_360)) <= 0.005 and np.abs(at_100 - at_360).max() <= 0.04


@pytest.mark.parametrize("name", ["mitdb108", "a01"])
def test_streaming_in_chunks_of_any_size_gives_exactly_the_whole_signal_beats(name):
    ecg, fs, _ = _excerpt(name)
    whole = teacher.detect_beats(ecg, fs)
    for sizes in (np.full(ecg.size, int(10 * fs)), np.random.default_rng(0).integers(1, 700, ecg.size)):
        detector, start, pieces = teacher.StreamingBeatDetector(fs), 0, []
        for size in sizes:
            if start >= ecg.size:
                break
            pieces.append(detector.feed(ecg[start:start + size]))
            start += size
        pieces.append(detector.finish())
        np.testing.assert_array_equal(np.concatenate(pieces), whole)


def test_a_streamed_beat_comes_out_within_about_a_beat_of_its_time():
    ecg, fs, _ = _excerpt("a01")
    detector, late = teacher.StreamingBeatDetector(fs), []
    for start in range(0, ecg.size, int(fs)):  # a second at a time, as a phone reads
        late.extend(start + fs - detector.feed(ecg[start:start + int(fs)]))
    assert late and max(late) <= 3 * fs


def test_refuses_nan_and_rates_outside_its_range_with_the_reason():
    ecg, fs, _ = _excerpt("a01")
    broken = ecg.copy()
    broken[500] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        teacher.detect_beats(broken, fs)
    for rate in (50.0, 2000.0):
        with pytest.raises(ValueError, match="100-1000 Hz"):
            teacher.detect_beats(ecg, rate)


def test_the_spec_travels_by_name_and_refuses_another():
    spec = teacher.BEAT_DETECTOR.to_dict()
    assert spec["name"] == teacher.ECG_TO_BEATS == "ecg-to-beats/1"
    assert teacher.BeatDetectorSpec.from_dict(spec) == teacher.BEAT_DETECTOR
    with pytest.raises(ValueError, match="ecg-to-beats/1"):
        teacher.BeatDetectorSpec.from_dict({**spec, "name": "ecg-to-beats/2"})
    with pytest.raises(ValueError, match="missing.*rr_beats"):
        teacher.BeatDetectorSpec.from_dict({key: value for key, value in spec.items() if key != "rr_beats"})


def test_a_flat_or_saturated_stretch_is_marked_and_loses_its_beats_not_the_rest():
    ecg, fs, qrs = _excerpt("a01")
    ecg = ecg.copy()
    ecg[2000:4000] = 0.2  # 20 s of a lead off
    ecg[8000:9000] = np.where(np.arange(1000) % 50 < 25, 10.24, -10.24)  # 10 s at the rails
    beats, quality, rejected = teacher.ecg_beats(ecg, fs)
    counts = quality.counts()
    assert counts["flat"] == 20.0 and counts["saturated"] == 10.0
    bad = ((beats >= 2000) & (beats < 4000)) | ((beats >= 8000) & (beats < 9000))
    assert not bad.any()
    kept = qrs[((qrs < 1900) | (qrs >= 4100)) & ((qrs < 7900) | (qrs >= 9100))] + QRS_OFFSET
    found, _ = _matched(kept, beats, tolerance=15)
    assert found >= kept.size - 2  # the detector relearns within a beat or two of each stretch
