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

from teacher._files import sha256_file, write_text_atomic
from teacher._beats import ECG_TO_BEATS as BEAT_DETECTOR_NAME
from teacher._signal import SignalQuality, assess_ecg, ecg_beats

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
        quality: the ECG's signal-quality marks when the signal was read, else None.
        signal_source: the file the ECG was read from ("" without one).
        rejected_beats: beats dropped for lying in unusable ECG, per reason (detected beats only).
    """

    name: str
    fs: float
    n_samples: int
    beat_times: np.ndarray
    labels: np.ndarray | None
    files: dict[str, str] = field(default_factory=dict)
    signal: np.ndarray | None = None
    beat_source: str = ""
    quality: SignalQuality | None = None
    signal_source: str = ""
    rejected_beats: dict[str, int] = field(default_factory=dict)

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
    if record.units and record.units[0] and record.units[0].lower() not in ("mv", "millivolts"):
        raise ApneaDataError(f"{name}: {path} is in {record.units[0]!r}; the kit reads ECG in mV")
    # NaN (a WFDB gap), flat and saturated stretches are not errors of the file: they are marked
    # by the signal quality and their minutes left unscored.
    signal = record.p_signal[:, 0].astype(np.float32)
    if signal.size < header.sig_len:
        raise ApneaDataError(f"{name}: {path} has {signal.size} samples, header says {header.sig_len}")
    return signal


BEAT_SOURCES = ("annotations", "detector")


def read_night(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    require_signal: bool = False,
    answers: dict[str, np.ndarray] | None = None,
    beats: str = "annotations",
) -> Night:
    """Read one night: header, beats (.qrs, else detected on the .dat), labels and signal.

    Labels come from `<name>.apn` where present, else from the test-set answers file
    (`event-2-answers`), else the night is unlabelled.

    Args:
        name: record name (a01 ... x35, or any record in the folder).
        data_dir: data directory (see `resolve_data_dir`), or the folder holding the record.
        require_signal: raise when the .dat is absent instead of reading beats alone.
        answers: parsed answers file, to avoid re-reading it per night.
        beats: "annotations" (the .qrs, else the detector on the .dat) or "detector" (the kit's
            detector on the .dat even where a .qrs exists, as a phone with an ECG patch runs it).

    Raises:
        ApneaDataError: missing or corrupt files, rate mismatches, no beats, an unknown `beats`.
    """
    if beats not in BEAT_SOURCES:
        raise ApneaDataError(f"beats {beats!r}: choose one of {', '.join(BEAT_SOURCES)}")
    folder = _record_folder(name, data_dir)
    header = _read_header(folder, name)
    fs = float(header.fs)
    files = {f"{name}.hea": sha256_file(folder / f"{name}.hea")}

    signal = quality = None
    rejected: dict[str, int] = {}
    dat_path = folder / f"{name}.dat"
    if dat_path.exists():
        signal = _read_signal(folder, name, header)
        files[dat_path.name] = sha256_file(dat_path)
    elif require_signal or beats == "detector":
        raise ApneaDataError(f"{name}: signal file {dat_path} is missing (only annotations are here)")

    qrs_path = folder / f"{name}.qrs"
    if qrs_path.exists() and beats == "annotations":
        qrs = _read_annotation(folder, name, "qrs", fs)
        # sqrs marks noise as '|' (isolated QRS-like artifact): those are not heart beats.
        is_beat = np.array([symbol != "|" for symbol in qrs.symbol], dtype=bool)
        beat_samples = np.asarray(qrs.sample)[is_beat]
        files[qrs_path.name] = sha256_file(qrs_path)
        beat_source = str(qrs_path)
        if signal is not None:
            quality = assess_ecg(signal, fs)
    elif signal is not None:
        beat_samples, quality, rejected = _detected_beats(name, dat_path, signal, fs)
        beat_source = f"{dat_path} (beats detected, {BEAT_DETECTOR_NAME})"
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
        quality=quality,
        signal_source=str(dat_path) if signal is not None else "",
        rejected_beats=rejected,
    )


def _record_folder(name: str, data_dir: str | os.PathLike | None) -> Path:
    """The Apnea-ECG folder of the data directory, or `data_dir` itself when it holds the record."""
    if data_dir is not None and (Path(data_dir) / f"{name}.hea").exists():
        return Path(data_dir)
    return find_apnea_dir(data_dir)


def _detected_beats(name: str, path: Path, signal: np.ndarray, fs: float) -> tuple[np.ndarray, SignalQuality, dict]:
    try:
        return ecg_beats(signal, fs)
    except ValueError as error:  # a rate the detector does not take, a lead of the wrong shape
        raise ApneaDataError(f"{name}: {path}: {error}") from error


def read_ecg(path: str | os.PathLike, fs: float | None = None) -> Night:
    """One night from an ECG file: a WFDB record (`path` or `path.hea`; its .apn labels where
    present) or a CSV / text file of samples in mV, one per line, at `fs` Hz. Beats come from the
    kit's detector, as on a phone with an ECG patch.

    Raises:
        ApneaDataError: a missing or unreadable file, a CSV without `fs`, a rate that disagrees.
    """
    path = Path(path)
    if path.suffix == ".hea" or path.with_suffix(".hea").exists() or Path(f"{path}.hea").exists():
        record = path.with_suffix("") if path.suffix in (".hea", ".dat") else path
        night = read_night(record.name, record.parent, beats="detector")
        if fs is not None and not np.isclose(fs, night.fs):
            raise ApneaDataError(f"{record}: the header says {night.fs:g} Hz, --fs says {fs:g} Hz")
        return night
    if not path.exists():
        raise ApneaDataError(f"{path}: no such ECG file (a WFDB record needs its .hea; a CSV its samples)")
    if fs is None:
        raise ApneaDataError(f"{path}: a CSV of samples carries no sampling rate; give it (--fs)")
    signal = _read_column(path, "ECG samples (mV)").astype(np.float32)
    beat_samples, quality, rejected = _detected_beats(path.stem, path, signal, float(fs))
    return Night(name=path.stem, fs=float(fs), n_samples=int(signal.size),
                 beat_times=beat_samples.astype(np.float64) / fs, labels=None,
                 files={path.name: sha256_file(path)}, signal=signal,
                 beat_source=f"{path} (beats detected, {BEAT_DETECTOR_NAME})", quality=quality,
                 signal_source=str(path), rejected_beats=rejected)


def read_rr(path: str | os.PathLike) -> Night:
    """One night from a chest strap's beats: a text file of RR intervals in ms or of beat times in
    s, one per line (a header line `rr_ms` or `time_s` says which; without one, increasing values
    under 100 000 with steps under 3 are beat times, values of 200-3000 are RR in ms).

    Raises:
        ApneaDataError: a missing file, non-numeric or NaN lines, values that are neither.
    """
    path = Path(path)
    if not path.exists():
        raise ApneaDataError(f"{path}: no such RR file")
    header = path.read_text(encoding="utf-8", errors="replace").lstrip().split("\n", 1)[0].strip().lower()
    values = _read_column(path, "RR intervals (ms) or beat times (s)")
    if header in ("rr_ms", "time_s"):
        kind = header
    elif values.size > 1 and np.all(np.diff(values) > 0) and np.median(np.diff(values)) < 3.0:
        kind = "time_s"
    elif values.size and 200 <= np.median(values) <= 3000:
        kind = "rr_ms"
    else:
        raise ApneaDataError(f"{path}: {values.size} values (median {np.median(values) if values.size else 0:g}) "
                             "are neither RR intervals in ms nor increasing beat times in s; "
                             "name the column rr_ms or time_s")
    if kind == "rr_ms":
        if np.any(values <= 0):
            raise ApneaDataError(f"{path}: RR intervals must be positive ms")
        beat_times = np.cumsum(values / 1000.0)
    else:
        beat_times = values
        if np.any(np.diff(beat_times) <= 0):
            raise ApneaDataError(f"{path}: beat times must increase")
    return Night(name=path.stem, fs=1000.0, n_samples=int(np.ceil(beat_times[-1] * 1000.0)),
                 beat_times=beat_times, labels=None, files={path.name: sha256_file(path)},
                 beat_source=f"{path} ({'RR intervals, ms' if kind == 'rr_ms' else 'beat times, s'})")


def _read_column(path: Path, what: str) -> np.ndarray:
    """One number a line (a first header line allowed), refused whole on any bad line."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    lines = [line.split(",")[0].strip() for line in lines if line]
    if lines and not _is_number(lines[0]):
        lines = lines[1:]
    bad = [number for number, line in enumerate(lines, 1) if not _is_number(line)]
    if bad:
        raise ApneaDataError(f"{path}: line {bad[0]} is not a number ({what}); {len(bad)} bad lines")
    values = np.array([float(line) for line in lines], dtype=np.float64)
    if not values.size:
        raise ApneaDataError(f"{path}: no {what}")
    if not np.all(np.isfinite(values)) and what.startswith("RR"):
        raise ApneaDataError(f"{path}: NaN or infinite {what}")
    return values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_answers(data_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray] | None:
    """The parsed test-set answers file, or None when it is not in the data directory."""
    path = find_apnea_dir(data_dir) / TEST_ANSWERS_FILE
    return parse_answers(path.read_text()) if path.exists() else None


def write_beats_csv(night: Night, path: str | os.PathLike) -> None:
    """One row per beat (`sample`, `time_s`) at `path`, and the night's no-signal stretches
    (`start_s`, `end_s`, `reason`) beside it (`quality_csv_path`); each written whole or not at all."""
    samples = np.rint(night.beat_times * night.fs).astype(np.int64)
    write_text_atomic(path, "sample,time_s\n" + "".join(f"{s},{s / night.fs:.4f}\n" for s in samples))
    rows = ["start_s,end_s,reason\n"]
    if night.quality is not None:
        block_s = night.quality.block_samples / night.fs
        for index in np.flatnonzero(~night.quality.usable):
            end = min((index + 1) * block_s, night.n_samples / night.fs)
            rows.append(f"{index * block_s:.3f},{end:.3f},{night.quality.reasons[index]}\n")
    write_text_atomic(quality_csv_path(path), "".join(rows))


def quality_csv_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f"{path.stem}-no-signal.csv")
