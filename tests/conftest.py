"""Shared fixtures: where the embedded and the full real data live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_APNEA_DIR = REPO_ROOT / "teacher" / "data" / "apnea-ecg-mini"
APNEA_SUBDIRS = ("apnea-ecg", "apnea-ecg-annotations")


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Run torch on one CPU thread during the tests.

    The test models are tiny: with 2 OpenMP threads on a busy 2-core machine every operator waits
    for a descheduled thread (measured: 280 ms against 3 ms for one forward pass of apnea_cnn on 16
    windows), which turns seconds of training into minutes. Results do not depend on the count.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def embedded_apnea_dir() -> Path:
    """The six Apnea-ECG nights shipped with the package (a03, a05, b02, c03, c07, x01)."""
    assert (EMBEDDED_APNEA_DIR / "a03.hea").is_file(), f"embedded data missing under {EMBEDDED_APNEA_DIR}"
    return EMBEDDED_APNEA_DIR


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The data directory from $EDGEKIT_DATA (CI: ../shared/data), or skip; tests check their dataset."""
    value = os.environ.get("EDGEKIT_DATA")
    if not value:
        pytest.skip("EDGEKIT_DATA not set: point it at the data directory (e.g. ../shared/data)")
    return Path(value).expanduser().resolve()


@pytest.fixture(scope="session")
def real_data_dir(data_root: Path) -> Path:
    """The full data directory, or skip with the reason.

    It must hold `apnea-ecg-annotations/` (or `apnea-ecg/`) with the 70 Apnea-ECG headers and beat
    annotations, the learning-set .apn labels and `event-2-answers`.
    """
    root, value = data_root, os.environ.get("EDGEKIT_DATA")
    for sub in APNEA_SUBDIRS:
        folder = root / sub
        if (folder / "a01.hea").is_file() and (folder / "event-2-answers").is_file():
            return root
    pytest.skip(
        f"EDGEKIT_DATA={value} ({root}) has no apnea-ecg-annotations/ (or apnea-ecg/) with a01.hea and "
        "event-2-answers under it: the full-data tests need the 70 Apnea-ECG nights"
    )


@pytest.fixture(scope="session")
def real_apnea_dir(real_data_dir: Path) -> Path:
    """The Apnea-ECG folder inside the real data directory."""
    for sub in APNEA_SUBDIRS:
        if (real_data_dir / sub / "a01.hea").is_file():
            return real_data_dir / sub
    raise AssertionError("unreachable: real_data_dir checked the folder")  # pragma: no cover
