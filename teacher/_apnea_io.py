"""Reading PhysioNet Apnea-ECG nights with wfdb: headers, beats, minute labels and (if present) ECG.

Files -> arrays only; what the arrays mean for a model lives in `_apnea.py`. Every failure names the
record and the file, and raises before anything is written.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import wfdb

from teacher._files import sha256_file

PHYSIONET_DB = "apnea-ecg"
LEARNING_RECORDS = (
    [f"a{i:02d}" for i in range(1, 21)]
    + [f"b{i:02d}" for i in range(1, 6)]
    + [f"c{i:02d}" for i in range(1, 11)]
)
TEST_RECORDS = [f"x{i:02d}" for i in range(1, 36)]
TEST_ANSWERS_FILE = "event-2-answers"  # the Challenge's per-minute labels of x01-x35
# Folder names tried under the data directory, complete records first.
APNEA_SUBDIRS = ("apnea-ecg", "apnea-ecg-annotations")
SAMPLES_PER_LABEL_S = 60
# A night whose kept RR intervals cover less than this share of its labelled time is mostly noise.
# Low on purpose: frequent ectopic beats (trigeminy in c04) leave ~1/3 of the time covered, and
# interpolation across them is still right; only a night that is mostly noise is refused.
MIN_VALID_COVERAGE = 0.2


class ApneaDataError(ValueError):
    """A record is missing, corrupt or inconsistent; the message names the record and the file."""


@dataclass(frozen=True)
class Night:
    """One Apnea-ECG recording as arrays.

    Attributes:
        name: record name, e.g. "a01".
        fs: sampling rate of the header, Hz.
        n_samples: signal length in samples (from the header).
        beat_times: (N,) QRS times in seconds.
        labels: (M,) 1 = apnea minute, 0 = normal, or None when the night has no labels.
        files: file name -> sha256 of every file read.
        signal: (n_samples,) ECG in mV when the .dat was present, else None.
        beat_source: the file the beats come from (".qrs", or ".dat" when detected on the ECG).
    """

    name: str
    fs: float
    n_samples: int
    beat_times: np.ndarray
    labels: np.ndarray | None
    files: dict[str, str] = field(default_factory=dict)
    signal: np.ndarray | None = None
    beat_source: str = ""

    @property
    def n_minutes(self) -> int:
        """Minutes to score: one per label, else every started minute of the recording."""
        if self.labels is not None:
            return int(self.labels.size)
        return int(np.ceil(self.n_samples / self.fs / SAMPLES_PER_LABEL_S))


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: the argument, else $EDGEKIT_DATA, else ./data."""
    if data_dir is None:
        data_dir = os.environ.get("EDGEKIT_DATA") or "data"
    return Path(data_dir).expanduser()


def find_apnea_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding Apnea-ECG records inside the data directory (or the directory itself).

    Raises:
        ApneaDataError: none found; the message says what is expected and how to get it.
    """
    root = resolve_data_dir(data_dir)
    for candidate in [root / sub for sub in APNEA_SUBDIRS] + [root]:
        if (candidate / "a01.hea").exists() or (candidate / "RECORDS").exists():
            return candidate
    raise ApneaDataError(
        f"no Apnea-ECG records under {root}: expected {root}/apnea-ecg/<record>.hea with .qrs and "
        f".apn (and .dat for signals). Add --download to fetch it from PhysioNet when online, "
        "or copy PhysioNet's apnea-ecg 1.0.0 there; point --data-dir or EDGEKIT_DATA at it."
    )


def download_apnea_ecg(data_dir: str | os.PathLike | None = None) -> Path:
    """Fetch the whole database from PhysioNet with wfdb into <data dir>/apnea-ecg.

    Raises:
        ApneaDataError: offline or PhysioNet unreachable, with what is missing and where it goes.
    """
    target = resolve_data_dir(data_dir) / "apnea-ecg"
    target.mkdir(parents=True, exist_ok=True)
    try:
        wfdb.dl_database(PHYSIONET_DB, dl_dir=str(target))
        wfdb.io.download.dl_files(PHYSIONET_DB, str(target), [TEST_ANSWERS_FILE])
    except Exception as error:  # wfdb raises requests/OSError/HTTPError variants
        raise ApneaDataError(
            f"could not download '{PHYSIONET_DB}' from PhysioNet into {target} ({error}). "
            f"Offline, copy the database (<record>.hea/.dat/.qrs/.apn for a01-c10 and x01-x35, "
            f"plus {TEST_ANSWERS_FILE}) into {target}."
        ) from error
    return target


def parse_answers(text: str) -> dict[str, np.ndarray]:
    """Parse the Challenge answer format: a record name line, then 'hour  AANN...' lines.

    Returns:
        record name -> (M,) int8 labels, 1 = apnea.
    """
    labels: dict[str, list[str]] = {}
    current = None
    short_hour_line = None  # an hour of fewer than 60 minutes may only end a record
    for line_number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if re.fullmatch(r"[a-z]\d\d", stripped):
            if stripped in labels:
                raise ApneaDataError(f"{TEST_ANSWERS_FILE}: line {line_number}: record {stripped} appears twice")
            current, short_hour_line = stripped, None
            labels[current] = []
            continue
        match = re.fullmatch(r"(\d+)\s+([AN]+)", stripped)
        if current is None or match is None:
            raise ApneaDataError(f"{TEST_ANSWERS_FILE}: line {line_number} is not '<hour> <A|N...>': {line!r}")
        if int(match.group(1)) != len(labels[current]):
            raise ApneaDataError(f"{TEST_ANSWERS_FILE}: record {current} hour {match.group(1)} out of order")
        if short_hour_line is not None:
            raise ApneaDataError(
                f"{TEST_ANSWERS_FILE}: line {short_hour_line}: record {current} has an hour of fewer "
                "than 60 minutes before its last hour"
            )
        if len(match.group(2)) > 60:
            raise ApneaDataError(f"{TEST_ANSWERS_FILE}: line {line_number}: more than 60 minutes in an hour")
        if len(match.group(2)) < 60:
            short_hour_line = line_number
        labels[current].append(match.group(2))
    return {
        name: np.array([symbol == "A" for symbol in "".join(hours)], dtype=np.int8)
        for name, hours in labels.items()
    }


def _read_header(folder: Path, name: str) -> wfdb.io.record.Record:
    path = folder / f"{name}.hea"
    if not path.exists():
        raise ApneaDataError(f"{name}: header {path} is missing")
    try:
        header = wfdb.rdheader(str(folder / name))
    except Exception as error:
        raise ApneaDataError(f"{name}: header {path} is corrupt ({error})") from error
    if not header.fs or header.fs <= 0 or not header.sig_len:
        raise ApneaDataError(f"{name}: header {path} has no sampling rate or signal length")
    return header


def _read_annotation(folder: Path, name: str, extension: str, fs: float) -> wfdb.Annotation:
    path = folder / f"{name}.{extension}"
    try:
        annotation = wfdb.rdann(str(folder / name), extension)
    except Exception as error:
        raise ApneaDataError(f"{name}: annotation file {path} is corrupt ({error})") from error
    if annotation.fs is not None and not np.isclose(annotation.fs, fs):
        raise ApneaDataError(
            f"{name}: {path} is annotated at {annotation.fs:g} Hz but the header says {fs:g} Hz"
        )
    return annotation


def _read_signal(folder: Path, name: str, header) -> np.ndarray:
    path = folder / f"{name}.dat"
    try:
        record = wfdb.rdrecord(str(folder / name), channels=[0])
    except Exception as error:
        raise ApneaDataError(f"{name}: signal file {path} is corrupt or truncated ({error})") from error
    if not np.isclose(record.fs, header.fs):
        raise ApneaDataError(f"{name}: {path} is sampled at {record.fs:g} Hz, header says {header.fs:g} Hz")
    signal = record.p_signal[:, 0].astype(np.float32)
    n_nan = int(np.isnan(signal).sum())
    if n_nan:
        raise ApneaDataError(f"{name}: {path} holds {n_nan} NaN samples (signal loss); refusing the night")
    if signal.size < header.sig_len:
        raise ApneaDataError(f"{name}: {path} has {signal.size} samples, header says {header.sig_len}")
    if float(np.std(signal)) < 1e-3:
        raise ApneaDataError(f"{name}: {path} is a flat line (std {np.std(signal):.2g} mV): no ECG recorded")
    return signal


def _detect_beats(signal: np.ndarray, fs: float) -> np.ndarray:
    """QRS detection for records that come with a signal but no beat annotations."""
    from wfdb import processing

    candidates = processing.xqrs_detect(sig=signal, fs=fs, verbose=False)
    # xqrs marks the peak of its integrated signal, up to ~60 ms before the R wave: move each
    # detection onto the local maximum so RR intervals carry no detector jitter.
    return processing.correct_peaks(
        signal,
        candidates,
        search_radius=int(0.1 * fs),
        smooth_window_size=int(0.15 * fs),
        peak_dir="up",
    )


def read_night(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    require_signal: bool = False,
    answers: dict[str, np.ndarray] | None = None,
) -> Night:
    """Read one night: header, beats (.qrs, else detected on the .dat), labels and signal.

    Labels come from `<name>.apn` where present, else from the test-set answers file
    (`event-2-answers`), else the night is unlabelled.

    Args:
        name: record name (a01 ... x35, or any record in the folder).
        data_dir: data directory (see `resolve_data_dir`).
        require_signal: raise when the .dat is absent instead of reading beats alone.
        answers: parsed answers file, to avoid re-reading it per night.

    Raises:
        ApneaDataError: missing or corrupt files, rate mismatches, NaN or flat signals.
    """
    folder = find_apnea_dir(data_dir)
    header = _read_header(folder, name)
    fs = float(header.fs)
    files = {f"{name}.hea": sha256_file(folder / f"{name}.hea")}

    signal = None
    dat_path = folder / f"{name}.dat"
    if dat_path.exists():
        signal = _read_signal(folder, name, header)
        files[dat_path.name] = sha256_file(dat_path)
    elif require_signal:
        raise ApneaDataError(f"{name}: signal file {dat_path} is missing (only annotations are here)")

    qrs_path = folder / f"{name}.qrs"
    if qrs_path.exists():
        qrs = _read_annotation(folder, name, "qrs", fs)
        # sqrs marks noise as '|' (isolated QRS-like artifact): those are not heart beats.
        is_beat = np.array([symbol != "|" for symbol in qrs.symbol], dtype=bool)
        beat_samples = np.asarray(qrs.sample)[is_beat]
        files[qrs_path.name] = sha256_file(qrs_path)
        beat_source = str(qrs_path)
    elif signal is not None:
        beat_samples = _detect_beats(signal, fs)
        beat_source = f"{dat_path} (beats detected)"
    else:
        raise ApneaDataError(f"{name}: no beats: neither {qrs_path} nor {dat_path} exists")
    if beat_samples.size and beat_samples.max() > header.sig_len + fs:
        raise ApneaDataError(
            f"{name}: {qrs_path} has beats after the end of the recording "
            f"({beat_samples.max()} > {header.sig_len} samples): annotation and header disagree"
        )

    labels = None
    apn_path = folder / f"{name}.apn"
    if apn_path.exists():
        apn = _read_annotation(folder, name, "apn", fs)
        unknown = set(apn.symbol) - {"A", "N"}
        if unknown:
            raise ApneaDataError(f"{name}: {apn_path} has labels {sorted(unknown)}, expected A or N")
        labels = np.array([symbol == "A" for symbol in apn.symbol], dtype=np.int8)
        files[apn_path.name] = sha256_file(apn_path)
    else:
        answers_path = folder / TEST_ANSWERS_FILE
        if answers is None and answers_path.exists():
            answers = parse_answers(answers_path.read_text())
        if answers is not None and name in answers:
            labels = answers[name]
            files[TEST_ANSWERS_FILE] = sha256_file(answers_path)

    return Night(
        name=name,
        fs=fs,
        n_samples=int(header.sig_len),
        beat_times=beat_samples.astype(np.float64) / fs,
        labels=labels,
        files=files,
        signal=signal,
        beat_source=beat_source,
    )


def read_answers(data_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray] | None:
    """The parsed test-set answers file, or None when it is not in the data directory."""
    path = find_apnea_dir(data_dir) / TEST_ANSWERS_FILE
    return parse_answers(path.read_text()) if path.exists() else None
