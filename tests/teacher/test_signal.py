"""Signal quality (`teacher.assess_ecg`, `teacher.minute_signal`) and the decision rule's minutes
without signal: what a phone must mark and never flag."""

from __future__ import annotations

import numpy as np
import pytest

import teacher

FS = 100.0


def _ecg(seconds: float, seed: int = 0) -> np.ndarray:
    """A plausible ECG amplitude: 1.2 mV R waves at 72 bpm over noise."""
    t = np.arange(int(seconds * FS)) / FS
    beats = np.arange(0.4, seconds, 60 / 72)
    ecg = 1.2 * np.exp(-0.5 * ((t[:, None] - beats[None, :]) / 0.015) ** 2).sum(axis=1)
    return ecg + np.random.default_rng(seed).normal(0, 0.02, t.size)


def test_each_bad_stretch_is_marked_with_its_reason_and_good_ecg_is_not():
    ecg = _ecg(60)
    ecg[1000:1200] = np.nan  # 2 s lost
    ecg[2000:2400] = 0.3  # 4 s flat line (electrode off)
    ecg[3000:3200] = np.where(np.arange(200) % 2, 10.24, -10.24)  # 2 s rail to rail
    quality = teacher.assess_ecg(ecg, FS)
    assert quality.counts() == {"missing": 2.0, "saturated": 2.0, "flat": 4.0}
    assert quality.usable.sum() == 30 - 4
    assert teacher.assess_ecg(_ecg(60, seed=1), FS).usable.all()


def test_blocks_are_judged_alone_so_a_stream_marks_what_the_whole_night_marks():
    ecg = _ecg(120)
    ecg[5000:5600] = 0.0
    whole = teacher.assess_ecg(ecg, FS).reasons
    block = int(teacher.SIGNAL_QUALITY.block_s * FS)
    pieces = np.concatenate([teacher.assess_ecg(ecg[start:start + 10 * block], FS).reasons
                             for start in range(0, ecg.size, 10 * block)])
    np.testing.assert_array_equal(pieces, whole)


def test_minutes_inside_a_beat_gap_or_past_the_recording_have_no_signal():
    beats = np.concatenate([np.arange(0.5, 120, 0.8), np.arange(185, 300, 0.8)])  # 65 s without beats
    share = teacher.minute_signal(beats, 6, duration_s=270.0)
    np.testing.assert_allclose(share[:2], 1.0, atol=0.01)  # the gap opens at the last beat, 119.7 s
    assert share[2] < 0.05 and 0.5 < share[3] < 1.0  # minute 3 regains its beats at 185 s
    assert share[5] == 0.0 and share[4] == pytest.approx(0.5)  # the recording stops at 270 s


def test_no_signal_minutes_are_never_flagged_nor_counted_in_the_ahi():
    rule = teacher.DecisionRule(smoothing_minutes=1, threshold=0.5)
    p = np.array([0.9] * 6 + [0.0] * 6, dtype=np.float32)
    scored = np.ones(12, dtype=bool)
    scored[[2, 9]] = False
    night = rule.apply(p, scored)
    assert not night["flags"][2] and night["flags"][[0, 1, 3, 4]].all()
    # 4 flagged of 10 minutes with signal: 24 an hour (not 5 of 12).
    assert night["estimated_ahi"] == pytest.approx(60 * night["flags"].sum() / 10)
    # With every minute scored the rule is exactly the one without the mask.
    np.testing.assert_array_equal(rule.apply(p, np.ones(12, bool))["smoothed"], rule.apply(p)["smoothed"])
    # An unscored minute does not pull its neighbours' averages: minute 8 sees only 7 (0.0) and itself.
    high = p.copy()
    high[9] = 1.0
    assert rule.apply(high, scored)["smoothed"][8] == pytest.approx(0.0)


def test_signal_quality_rules_round_trip_and_refuse_other_rules():
    rules = teacher.SIGNAL_QUALITY.to_dict()
    assert teacher.SignalQualitySpec.from_dict(rules) == teacher.SIGNAL_QUALITY
    with pytest.raises(ValueError, match="signal-quality/1"):
        teacher.SignalQualitySpec.from_dict({**rules, "name": "signal-quality/2"})
    with pytest.raises(ValueError, match="signal-quality/1"):
        teacher.SignalQualitySpec.from_dict({key: value for key, value in rules.items() if key != "block_s"})
