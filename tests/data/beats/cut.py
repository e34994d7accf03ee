"""How the excerpts in this folder were cut (run from the repository root):

    .venv/bin/python tests/data/beats/cut.py ../shared/data/ecg-signals

Each excerpt is a stretch of a real record of `ecg-signals/` (see its README for the sources and
licence, ODC-By 1.0, PhysioNet) kept as the record's own digital samples (int16, gain 200 adu/mV,
so lossless) with the reference beats that fall inside it, shifted to the excerpt's start:
MIT-BIH 108 (tall P and T waves, noise) and 114 (ventricular beats, V5 lead) at 360 Hz, 60 s each
from 5 min on, and Apnea-ECG a01 at 100 Hz, 120 s from 1 h on, with its `.qrs` (sqrs125, ~40 ms
before the R peak).
"""

import sys
from pathlib import Path

import numpy as np
import wfdb

BEAT_SYMBOLS = set("NLRBAaJSVrFejnE/fQ?")
EXCERPTS = {  # name: (folder, record, annotation, start s, length s)
    "mitdb108": ("mitdb", "108", "atr", 300, 60),
    "mitdb114": ("mitdb", "114", "atr", 300, 60),
    "a01": ("apnea-ecg-a01-prefix", "a01", "qrs", 3600, 120),
}


def main(root: Path) -> None:
    for name, (folder, record, extension, start_s, length_s) in EXCERPTS.items():
        path = str(root / folder / record)
        header = wfdb.rdheader(path)
        start, stop = int(start_s * header.fs), int((start_s + length_s) * header.fs)
        digital = wfdb.rdrecord(path, channels=[0], sampfrom=start, sampto=stop, physical=False).d_signal[:, 0]
        annotation = wfdb.rdann(path, extension, sampfrom=start, sampto=stop - 1)
        beats = np.array([s for s, y in zip(annotation.sample, annotation.symbol) if y in BEAT_SYMBOLS]) - start
        np.savez_compressed(Path(__file__).parent / f"{name}.npz", adu=digital.astype(np.int16),
                            gain=header.adc_gain[0], fs=header.fs, beats=beats.astype(np.int64))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
