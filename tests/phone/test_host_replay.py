"""The phone core's replay (android_demo/host/replay: the Kotlin core and the bundle's real .pte in
ExecuTorch's C++ runtime) against the server's (`edgekit replay`), on the bundle the app ships
(android_demo/app/src/main/assets) and the embedded night x01 and a strap's file of its beats; and the
core's refusals of a bundle it was not given the key of. Builds nothing: `make test` builds the host runner."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import edge_export
import teacher
from cli_runner import run_cli

ROOT = Path(__file__).resolve().parents[2]
HOST_REPLAY = ROOT / "android_demo" / "host" / "replay"
ASSETS = ROOT / "android_demo" / "app" / "src" / "main" / "assets"
BUNDLE, PUBLIC_KEY = ASSETS / "bundle", ASSETS / "hospital-signing.pub"


@pytest.fixture(scope="module")
def host_replay() -> Path:
    if (reason := edge_export.phone_core_missing()) is not None:
        pytest.skip(reason)
    return HOST_REPLAY


def kotlin(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(HOST_REPLAY), *map(str, args)], capture_output=True, text=True, timeout=300)


def python(*args) -> dict:
    code, out, err = run_cli("replay", *args, "--json", "--quiet")
    assert code == 0, err
    return json.loads(out)


def assert_same_replay(server: dict, phone: dict) -> None:
    agreement = edge_export.compare_replays(server, phone)
    assert agreement["agree"], agreement
    assert agreement["minutes_flagged_alike"] == 1.0


def test_the_shipped_bundle_replays_x01_on_the_phone_core_as_on_the_server(host_replay):
    server = python(BUNDLE, "--record", "x01", "--data-dir", teacher.EMBEDDED_APNEA_DIR, "--public-key", PUBLIC_KEY)
    (phone,) = edge_export.host_replays(BUNDLE, PUBLIC_KEY, ["x01"], teacher.EMBEDDED_APNEA_DIR)
    assert_same_replay(server, phone)
    assert phone["severity"] == teacher.SEVERITY.of(server["estimated_ahi"])


def test_a_straps_file_of_the_same_beats_replays_alike(host_replay, tmp_path):
    night = teacher.read_night("x01", teacher.EMBEDDED_APNEA_DIR)
    strap = tmp_path / "x01-strap.txt"
    strap.write_text("rr_ms\n" + "".join(f"{value:.3f}\n" for value in np.diff(night.beat_times) * 1000.0))
    server = python(BUNDLE, "--rr", strap)
    done = kotlin(BUNDLE, "--public-key", PUBLIC_KEY, "--rr", strap, "--json")
    assert done.returncode == 0, done.stderr
    assert_same_replay(server, json.loads(done.stdout.splitlines()[-1]))


def test_the_phone_core_refuses_a_bundle_its_key_did_not_sign(host_replay, tmp_path):
    _, other_key = edge_export.new_signing_key(tmp_path / "keys")
    done = kotlin(BUNDLE, "--public-key", other_key, "--record", "x01", "--data-dir", teacher.EMBEDDED_APNEA_DIR, "--json")
    assert done.returncode == 2 and done.stdout == "" and "signature does not match" in done.stderr
    unsigned = tmp_path / "unsigned"
    shutil.copytree(BUNDLE, unsigned)
    (unsigned / edge_export.SIGNATURE_NAME).unlink()
    done = kotlin(unsigned, "--public-key", PUBLIC_KEY, "--record", "x01", "--data-dir", teacher.EMBEDDED_APNEA_DIR)
    assert done.returncode == 2 and "unsigned" in done.stderr
    done = kotlin(BUNDLE, "--record", "x01")
    assert done.returncode == 2 and "only bundles the hospital signed" in done.stderr


def test_the_shipped_bundle_is_one_the_server_still_implements():
    """The committed bundle must match this code's preprocessing: re-export and re-sign it when that changes."""
    bundle = edge_export.load_bundle(BUNDLE, public_key=PUBLIC_KEY)
    assert bundle.contract.shape == teacher.APNEA_CONTRACT.shape
