"""`edgekit beats`: the kit's detector alone on an ECG file, with its signal-quality marks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import teacher
from cli_runner import run_cli

EXCERPT = Path(__file__).resolve().parents[1] / "data" / "beats" / "a01.npz"


def _ecg_csv(tmp_path: Path, flat_from: int | None = None) -> tuple[Path, np.ndarray, float]:
    data = np.load(EXCERPT)
    ecg = data["adu"] / float(data["gain"])
    if flat_from is not None:
        ecg[flat_from:] = 0.1  # a lead off to the end
    path = tmp_path / "a01.csv"
    path.write_text("".join(f"{value:.3f}\n" for value in ecg))
    return path, ecg, float(data["fs"])


def test_beats_writes_one_row_per_detected_beat_and_the_no_signal_stretches(tmp_path):
    path, ecg, fs = _ecg_csv(tmp_path, flat_from=10_000)
    out_csv = tmp_path / "beats.csv"
    code, out, err = run_cli("beats", path, "--fs", fs, "--csv", out_csv)
    assert code == 0, err
    rows = out_csv.read_text().splitlines()
    samples = np.array([int(row.split(",")[0]) for row in rows[1:]])
    expected, _, _ = teacher.ecg_beats(np.round(ecg, 3), fs)
    assert rows[0] == "sample,time_s" and np.array_equal(samples, expected) and samples.max() < 10_000
    marks = teacher.quality_csv_path(out_csv).read_text().splitlines()
    assert marks[0] == "start_s,end_s,reason" and marks[1] == "100.000,102.000,flat" and len(marks) == 11
    assert f"{samples.size} beats" in out and "flat 20 s" in out


def test_beats_refuses_a_csv_without_its_rate_and_a_missing_file(tmp_path):
    path, _, _ = _ecg_csv(tmp_path)
    code, _, err = run_cli("beats", path)
    assert code != 0 and "--fs" in err
    code, _, err = run_cli("beats", tmp_path / "none.csv", "--fs", 100)
    assert code != 0 and "none.csv" in err
