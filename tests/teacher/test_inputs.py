"""The three ways a night arrives (`teacher.read_night`, `read_ecg`, `read_rr`) and their bad
inputs: each refused with a reason that names the file, nothing written."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb

import teacher
from teacher import ApneaDataError


def test_rr_in_ms_and_beat_times_in_s_give_the_same_beats(tmp_path):
    times = 0.8 + np.cumsum(np.full(600, 0.9))
    (tmp_path / "times.txt").write_text("\n".join(f"{t:.3f}" for t in times))
    (tmp_path / "rr.txt").write_text("\n".join(f"{1000 * rr:.1f}" for rr in np.diff(times)))
    from_times, from_rr = teacher.read_rr(tmp_path / "times.txt"), teacher.read_rr(tmp_path / "rr.txt")
    np.testing.assert_allclose(from_times.beat_times, times, atol=1e-9)
    np.testing.assert_allclose(from_rr.beat_times, times[1:] - times[0], atol=1e-6)  # a strap's clock
    assert from_times.labels is None and from_times.n_minutes == 10
    assert "beat times" in from_times.beat_source and "RR intervals" in from_rr.beat_source


def test_a_header_line_settles_what_the_numbers_are(tmp_path):
    # Ten RR intervals that happen to increase: without the header they would read as beat times.
    (tmp_path / "rr.csv").write_text("rr_ms\n" + "\n".join(str(800 + step) for step in range(10)))
    night = teacher.read_rr(tmp_path / "rr.csv")
    assert night.beat_times[0] == pytest.approx(0.8) and night.beat_times.size == 10


@pytest.mark.parametrize("text, reason", [
    ("800\n810\nabc\n790\n", "line 3 is not a number"),
    ("800\nnan\n790\n", "NaN"),
    ("5\n4\n6\n5\n", "neither RR intervals in ms nor increasing beat times"),
    ("rr_ms\n800\n-20\n", "positive"),
    ("time_s\n1.0\n0.5\n", "must increase"),
    ("", "no RR intervals"),
])
def test_bad_rr_files_are_refused_naming_the_file(tmp_path, text, reason):
    path = tmp_path / "strap.txt"
    path.write_text(text)
    with pytest.raises(ApneaDataError, match=reason) as error:
        teacher.read_rr(path)
    assert "strap.txt" in str(error.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ApneaDataError, match="no such RR file"):
        teacher.read_rr(tmp_path / "absent.txt")
    with pytest.raises(ApneaDataError, match="no such ECG file"):
        teacher.read_ecg(tmp_path / "absent.csv", fs=100)


def test_an_ecg_csv_needs_its_rate_and_a_wfdb_record_must_agree_with_it(tmp_path):
    (tmp_path / "patch.csv").write_text("mv\n" + "\n".join("0.1" for _ in range(100)))
    with pytest.raises(ApneaDataError, match="carries no sampling rate"):
        teacher.read_ecg(tmp_path / "patch.csv")
    wfdb.wrsamp("e01", fs=100, units=["mV"], sig_name=["ECG"], p_signal=np.zeros((6000, 1)), fmt=["16"],
                write_dir=str(tmp_path))
    with pytest.raises(ApneaDataError, match="header says 100 Hz, --fs says 250 Hz"):
        teacher.read_ecg(tmp_path / "e01", fs=250)


def test_an_ecg_that_is_not_in_millivolts_is_refused(tmp_path):
    wfdb.wrsamp("e02", fs=100, units=["uV"], sig_name=["ECG"], p_signal=np.zeros((600, 1)), fmt=["16"],
                write_dir=str(tmp_path))
    with pytest.raises(ApneaDataError, match="'uV'; the kit reads ECG in mV"):
        teacher.read_ecg(tmp_path / "e02.hea")


def test_an_unknown_beat_source_is_refused(embedded_apnea_dir):
    with pytest.raises(ApneaDataError, match="choose one of annotations, detector"):
        teacher.read_night("x01", embedded_apnea_dir, beats="sqrs")
    with pytest.raises(ApneaDataError, match="x01.dat is missing"):
        teacher.read_night("x01", embedded_apnea_dir, beats="detector")
