"""teacher._rr: beat times -> cleaned RR intervals -> fixed-grid minute windows.

Every expected value below is worked out by hand from the constructed beat series: RR limits are
[0.3, 2.0] s, and an in-range interval is ectopic when it differs by more than 20 % from the median
of its 5 + 5 in-range neighbours (itself excluded).
"""

from __future__ import annotations

import numpy as np
import pytest

from teacher import RRSeries, WindowSpec, clean_rr, minute_windows, resample_rr


def regular_beats(n_intervals: int, rr: float = 1.0) -> np.ndarray:
    return np.arange(n_intervals + 1, dtype=np.float64) * rr


def assert_counts_add_up(series: RRSeries) -> None:
    counts = series.counts()
    assert counts["kept"] + counts["out_of_range"] + counts["ectopic"] == counts["intervals"]
    assert series.times.shape == series.rr.shape


# --------------------------------------------------------------------------- clean_rr


def test_regular_beats_keep_every_interval():
    beats = regular_beats(300)
    series = clean_rr(beats)
    assert series.counts() == {"intervals": 300, "out_of_range": 0, "ectopic": 0, "kept": 300}
    np.testing.assert_array_equal(series.rr, np.ones(300))
    np.testing.assert_array_equal(series.times, beats[1:])  # each interval is timed at its closing beat


def test_extra_beat_in_range_gives_two_ectopic_intervals():
    # 0, 1, ..., 100 s plus a spurious beat at 50.5 s: the 1.0 s interval 50-51 splits into 0.5 + 0.5.
    # 0.5 s is inside [0.3, 2.0] but 50 % below the neighbours' median of 1.0 s: both are ectopic.
    beats = np.sort(np.append(regular_beats(100), 50.5))
    series = clean_rr(beats)
    assert series.counts() == {"intervals": 101, "out_of_range": 0, "ectopic": 2, "kept": 99}
    assert 50.5 not in series.times and 51.0 not in series.times
    np.testing.assert_array_equal(series.rr, np.ones(99))
    assert_counts_add_up(series)


def test_extra_beat_close_to_a_real_one_gives_one_out_of_range_and_one_ectopic():
    # A spurious beat at 50.25 s: 0.25 s (< 0.3 s, out of range) then 0.75 s (in range, but 25 % off
    # the neighbours' 1.0 s median, over the 20 % tolerance: ectopic).
    beats = np.sort(np.append(regular_beats(100), 50.25))
    series = clean_rr(beats)
    assert series.counts() == {"intervals": 101, "out_of_range": 1, "ectopic": 1, "kept": 99}
    assert 50.25 not in series.times and 51.0 not in series.times
    assert_counts_add_up(series)


def test_two_missed_beats_give_one_out_of_range_gap():
    # Beats at 50 and 51 s missed: one 3.0 s interval (> 2.0 s).
    beats = np.delete(regular_beats(100), [50, 51])
    series = clean_rr(beats)
    assert series.counts() == {"intervals": 98, "out_of_range": 1, "ectopic": 0, "kept": 97}
    assert 52.0 not in series.times
    assert_counts_add_up(series)


def test_one_missed_beat_at_0_95_s_gives_an_in_range_ectopic_gap():
    # 0.95 s beats, one missed: a 1.9 s interval, inside [0.3, 2.0] but twice the local median.
    beats = np.delete(regular_beats(100, rr=0.95), 50)
    series = clean_rr(beats)
    assert series.counts() == {"intervals": 99, "out_of_range": 0, "ectopic": 1, "kept": 98}
    np.testing.assert_allclose(series.rr, 0.95)
    assert_counts_add_up(series)


def test_pvc_short_long_pattern_rejects_both_intervals():
    # A premature beat at 49.6 s instead of 50 s: 0.6 s coupling interval, then a 1.4 s compensatory
    # pause (0.6 + 1.4 = two normal intervals). Both are 40 % off the 1.0 s median: ectopic.
    beats = regular_beats(100)
    beats[50] = 49.6
    series = clean_rr(beats)
    assert series.counts() == {"intervals": 100, "out_of_range": 0, "ectopic": 2, "kept": 98}
    assert 49.6 not in series.times and 51.0 not in series.times
    np.testing.assert_allclose(series.rr, 1.0)


def test_range_limits_are_inclusive_at_2_s():
    # Exact binary values: a slow 1.875 s rhythm with one 2.0 s interval (on the limit, 6.7 % off the
    # median: kept) and one 2.125 s interval (over the limit: out of range).
    intervals = np.array([1.875] * 20 + [2.0] + [1.875] * 20 + [2.125] + [1.875] * 20)
    beats = np.concatenate([[0.0], np.cumsum(intervals)])
    series = clean_rr(beats)
    assert series.counts() == {"intervals": 62, "out_of_range": 1, "ectopic": 0, "kept": 61}
    assert 2.0 in series.rr and 2.125 not in series.rr


def test_fast_rhythm_above_0_3_s_is_kept_and_below_is_rejected():
    fast = clean_rr(regular_beats(50, rr=0.3125))  # 192 bpm, exact in binary
    assert fast.counts() == {"intervals": 50, "out_of_range": 0, "ectopic": 0, "kept": 50}
    too_fast = clean_rr(regular_beats(50, rr=0.25))  # 240 bpm: not a heart rhythm
    assert too_fast.counts() == {"intervals": 50, "out_of_range": 50, "ectopic": 0, "kept": 0}


def test_slow_cyclic_heart_rate_variation_is_not_rejected():
    # Apnea-like cyclic variation: RR = 1.0 +- 0.15 s over 40 beats. Within 5 beats of any interval
    # RR changes by at most 0.15 * (1 - cos(2 pi 5 / 40)) = 0.044 s, far below 20 % of ~1 s.
    rr = 1.0 + 0.15 * np.sin(2 * np.pi * np.arange(400) / 40)
    beats = np.concatenate([[0.0], np.cumsum(rr)])
    series = clean_rr(beats)
    assert series.counts() == {"intervals": 400, "out_of_range": 0, "ectopic": 0, "kept": 400}
    np.testing.assert_allclose(series.rr, rr)


def test_short_series_judge_each_interval_by_its_neighbours_only():
    # One interval has no neighbours: nothing to compare with, kept.
    assert clean_rr(np.array([0.0, 1.0])).counts()["kept"] == 1
    # Two intervals judge each other, never themselves: 0.7 vs 1.0 is 30 % off (and 1.0 vs 0.7 43 %),
    # so both go; a median that included the interval itself (0.85) would have kept both.
    assert clean_rr(np.array([0.0, 0.7, 1.7])).counts() == {
        "intervals": 2, "out_of_range": 0, "ectopic": 2, "kept": 0,
    }
    # 1.0 vs 1.1: 10 % (and 9 %) apart, both kept.
    assert clean_rr(np.array([0.0, 1.0, 2.1])).counts()["kept"] == 2


def test_counts_add_up_and_kept_intervals_are_real_intervals_on_noisy_beats():
    rng = np.random.default_rng(7)
    rr = rng.normal(0.9, 0.05, size=2000)
    artefacts = rng.choice(rr.size, size=150, replace=False)
    rr[artefacts] = rng.uniform(0.05, 3.5, size=artefacts.size)  # doubled, missed and ectopic beats
    beats = np.concatenate([[10.0], 10.0 + np.cumsum(rr)])
    series = clean_rr(beats)
    assert_counts_add_up(series)
    assert series.n_intervals == 2000
    # Rejections happened for both reasons, and every kept pair is a true (beat time, interval).
    assert series.n_out_of_range > 0 and series.n_ectopic > 0
    index = np.searchsorted(beats, series.times)
    np.testing.assert_array_equal(beats[index], series.times)
    np.testing.assert_allclose(series.rr, beats[index] - beats[index - 1])
    assert np.all((series.rr >= 0.3) & (series.rr <= 2.0))


@pytest.mark.parametrize(
    "beats",
    [
        pytest.param([0.0, 1.0, 1.0, 2.0], id="repeated"),
        pytest.param([0.0, 1.0, 0.5, 2.0], id="decreasing"),
        pytest.param([0.0, 1.0, np.nan, 3.0], id="nan"),
        pytest.param([0.0, 1.0, np.inf], id="inf"),
        pytest.param([[0.0, 1.0], [2.0, 3.0]], id="2-D"),
    ],
)
def test_bad_beat_times_raise_value_error(beats):
    with pytest.raises(ValueError):
        clean_rr(np.array(beats))


# --------------------------------------------------------------------------- resample_rr


def linear_rr_beats(a: float, b: float, duration_s: float) -> np.ndarray:
    """Beats whose interval ending at t equals a + b * t exactly: t_i = (t_{i-1} + a) / (1 - b)."""
    beats = [0.0]
    while beats[-1] < duration_s:
        beats.append((beats[-1] + a) / (1 - b))
    return np.array(beats)


def test_resample_reproduces_a_linear_rr_ramp_and_holds_the_edges():
    a, b = 0.8, 0.001  # RR grows from 0.8 s to ~1.1 s over 300 s: never 20 % off its neighbours
    beats = linear_rr_beats(a, b, 300.0)
    series = clean_rr(beats)
    assert series.n_kept == series.n_intervals  # nothing rejected, so the ramp is intact
    first, last = series.times[0], series.times[-1]

    grid_hz = 4.0
    values = resample_rr(series, grid_hz, -30.0, last + 30.0)
    grid = -30.0 + np.arange(int(round((last + 60.0) * grid_hz))) / grid_hz
    assert values.shape == grid.shape and values.dtype == np.float32

    inside = (grid >= first) & (grid <= last)
    np.testing.assert_allclose(values[inside], a + b * grid[inside], atol=1e-6)
    # Before the first and after the last kept beat the nearest value is held.
    np.testing.assert_allclose(values[grid < first], a + b * first, atol=1e-6)
    np.testing.assert_allclose(values[grid > last], a + b * last, atol=1e-6)
    assert (grid < first).sum() >= 120 and (grid > last).sum() >= 110  # both pads really exercised


def test_resample_grid_length_and_empty_series():
    series = clean_rr(regular_beats(30))
    assert resample_rr(series, 4.0, 0.0, 10.0).shape == (40,)
    assert resample_rr(series, 2.0, 5.0, 65.0).shape == (120,)
    empty = clean_rr(regular_beats(30, rr=0.1))  # every interval out of range
    with pytest.raises(ValueError):
        resample_rr(empty, 4.0, 0.0, 10.0)


# --------------------------------------------------------------------------- minute_windows


@pytest.mark.parametrize(("grid_hz", "context", "n_minutes"), [(4.0, 2, 6), (1.0, 0, 5), (2.0, 1, 3)])
def test_minute_windows_shape(grid_hz, context, n_minutes):
    series = clean_rr(regular_beats(60 * n_minutes))
    windows = minute_windows(series, n_minutes, WindowSpec(grid_hz, context))
    assert windows.shape == (n_minutes, 1, int((2 * context + 1) * 60 * grid_hz))
    assert windows.dtype == np.float32


def test_minute_windows_refuses_a_grid_without_whole_samples_per_minute():
    series = clean_rr(regular_beats(120))
    with pytest.raises(ValueError):
        minute_windows(series, 2, WindowSpec(0.123, 1))  # 7.38 samples a minute


# One RR value per minute; each divides 60 s, so every minute holds whole intervals and the interval
# ending at 60 (m + 1) s still belongs to minute m. Neighbouring minutes differ by <= 25 %, so at a
# change the local median is the midpoint and nothing is rejected.
PER_MINUTE_RR = [1.0, 0.8, 0.75, 0.6, 0.75, 0.8, 1.0, 1.2, 1.0]


def per_minute_beats(rr_by_minute: list[float]) -> np.ndarray:
    beats = [0.0]
    for minute, rr in enumerate(rr_by_minute):
        n = int(round(60 / rr))
        beats += list(60.0 * minute + rr * np.arange(1, n + 1))
    return np.array(beats)


def test_window_centre_minute_lines_up_with_its_label_minute():
    grid_hz, context = 4.0, 2
    spm = int(60 * grid_hz)
    series = clean_rr(per_minute_beats(PER_MINUTE_RR))
    assert series.n_kept == series.n_intervals
    windows = minute_windows(series, len(PER_MINUTE_RR), WindowSpec(grid_hz, context))
    for minute, rr in enumerate(PER_MINUTE_RR):
        centre = windows[minute, 0, context * spm : (context + 1) * spm]  # times [60 m, 60 m + 60)
        # From the first beat of the minute (60 m + rr) on, the grid sits between two intervals of rr;
        # before it, it interpolates from the previous minute's value.
        settled = int(np.ceil(rr * grid_hz))
        np.testing.assert_allclose(centre[settled:], rr, atol=1e-6, err_msg=f"minute {minute}")
        if minute > 0:
            assert not np.isclose(centre[0], rr)  # the previous minute's value differs: alignment is tested


def test_windows_slide_by_one_minute_and_pad_the_night_edges():
    grid_hz, context = 4.0, 2
    spm = int(60 * grid_hz)
    n_minutes = len(PER_MINUTE_RR)
    series = clean_rr(per_minute_beats(PER_MINUTE_RR))
    windows = minute_windows(series, n_minutes, WindowSpec(grid_hz, context))[:, 0, :]
    # Consecutive windows overlap by 2 context minutes: the same night, one minute apart.
    np.testing.assert_array_equal(windows[1:, : 2 * context * spm], windows[:-1, spm:])
    # Context before the night (and the first minute up to the first beat at 1.0 s) holds the first
    # interval; context after the last beat at 60 * n_minutes holds the last one.
    first_rr, last_rr = PER_MINUTE_RR[0], PER_MINUTE_RR[-1]
    np.testing.assert_allclose(windows[0, : context * spm + int(first_rr * grid_hz)], first_rr)
    np.testing.assert_allclose(windows[-1, (context + 1) * spm :], last_rr)
    np.testing.assert_allclose(windows[1, : (context - 1) * spm], first_rr)


def test_beat_noise_misses_adds_and_jitters_beats_at_the_asked_rates():
    from teacher import BeatNoise

    beats = np.arange(1, 20001, dtype=np.float64) * 0.8
    noisy = BeatNoise(jitter_s=0.01, missed=0.05, extra=0.03, seed=1).apply(beats)
    assert np.all(np.diff(noisy) > 0)
    # 5 % missed, 3 % added: about 98 % as many beats.
    assert abs(noisy.size / beats.size - 0.98) < 0.005
    # Kept beats sit within a few jitter SDs of a true beat; most within one SD.
    distance = np.abs(noisy - np.round(noisy / 0.8) * 0.8)
    assert np.mean(distance < 0.01) > 0.6
    np.testing.assert_array_equal(noisy, BeatNoise(jitter_s=0.01, missed=0.05, extra=0.03, seed=1).apply(beats))
