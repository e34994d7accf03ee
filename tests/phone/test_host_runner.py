"""The host runner (android_demo/host: ExecuTorch's C++ runtime behind JNI, under the phone core's
`ModelRunner`) against the Python runtime on the same `.pte` files: fp32 and int8 (XNNPACK) bundles of
an apnea student give the same logits, and a damaged or mismatched file is refused with a message,
never a JVM crash. Builds nothing: `make test` (or `make -C android_demo host`) builds the runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch

import edge_export
import teacher

BUILD = Path(__file__).resolve().parents[2] / "android_demo" / "build"
HOST_JAR, CORE_JAR, NATIVE = BUILD / "host.jar", BUILD / "core.jar", BUILD / "libedgekit_executorch.so"
JSON_JAR = Path(os.environ.get("JSON_JAR", "/usr/share/java/com.android.json.jar"))  # the Makefile's default
MAIN_CLASS = "org.edgekit.host.RunPteKt"
# Both runners are the same C++ runtime and kernels: anything beyond float printing noise is a bug.
MAX_LOGIT_DIFFERENCE = 1e-5
WINDOWS = 32
TIMED_PASSES = 5  # RunPte's


@pytest.fixture(scope="module")
def classpath() -> str:
    if not HOST_JAR.is_file() or not CORE_JAR.is_file():
        pytest.skip(f"{HOST_JAR} not built: run make test (or make -C android_demo host)")
    if not NATIVE.is_file():
        pytest.skip(f"{NATIVE} not built: make -C android_demo host (needs g++ and the executorch wheel; "
                    "it prints why it skipped)")
    if shutil.which("java") is None:
        pytest.skip("no java on PATH")
    if not JSON_JAR.is_file():
        pytest.skip(f"org.json jar {JSON_JAR} missing (Debian: libandroid-json-java, or set JSON_JAR)")
    return os.pathsep.join(str(jar) for jar in (HOST_JAR, CORE_JAR, JSON_JAR))


def rr_windows(count: int, seed: int) -> torch.Tensor:
    """Random RR series in seconds (0.6-1.2 s, a plausible range) of the apnea contract's shape."""
    generator = torch.Generator().manual_seed(seed)
    return 0.6 + 0.6 * torch.rand(count, *teacher.APNEA_CONTRACT.shape, generator=generator)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict:
    """An untrained apnea student (the arch the apnea bundles use) exported both ways on random
    windows, and the windows to score, as tensors and as RunPte's JSON."""
    folder = tmp_path_factory.mktemp("host-runner")
    torch.manual_seed(0)
    model = teacher.create_model("apnea_cnn_small").eval()
    inputs = rr_windows(96, seed=1)
    targets = torch.randint(0, 2, (96,), generator=torch.Generator().manual_seed(1))
    ptes = {}
    for quantize in ("none", "int8"):
        exported = edge_export.export(model, teacher.APNEA_CONTRACT, inputs, targets, quantize,
                                      calibration_samples=48)
        ptes[quantize] = folder / f"{quantize}.pte"
        ptes[quantize].write_bytes(exported.pte)
    windows = rr_windows(WINDOWS, seed=2)
    windows_json = folder / "windows.json"
    windows_json.write_text(json.dumps([window.flatten().tolist() for window in windows]))
    return {"folder": folder, "pte": ptes, "windows": windows, "windows_json": windows_json}


def run_pte(classpath: str, folder: Path, pte: Path, windows_json: Path, *extra: str) -> subprocess.CompletedProcess:
    # A JVM crash would leave hs_err_pid*.log in the working directory: keep it in the test's folder.
    return subprocess.run(["java", f"-Dedgekit.jni={NATIVE}", "-cp", classpath, MAIN_CLASS, str(pte),
                           str(windows_json), *extra],
                          capture_output=True, text=True, timeout=300, cwd=folder)


def python_logits(pte: Path, windows: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The Python runtime's logits, one window at a time, and its ms per window timed as RunPte does
    (after a warm-up pass, the best of TIMED_PASSES)."""
    _program, method = edge_export.load_program(pte.read_bytes(), teacher.APNEA_CONTRACT, pte)
    inputs = [window[None].contiguous() for window in windows]
    for sample in inputs:
        method.execute([sample])
    best = float("inf")
    for _ in range(TIMED_PASSES):
        start = time.perf_counter()
        logits = torch.cat([method.execute([sample])[0] for sample in inputs])
        best = min(best, time.perf_counter() - start)
    return logits, best * 1e3 / len(windows)


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_jvm_runner_gives_the_python_runtimes_logits(classpath, bundles, quantize):
    pte = bundles["pte"][quantize]
    expected, python_ms = python_logits(pte, bundles["windows"])
    result = run_pte(classpath, bundles["folder"], pte, bundles["windows_json"])
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    got = torch.tensor(answer["logits"], dtype=torch.float32)
    assert got.shape == expected.shape == (WINDOWS, len(teacher.APNEA_CONTRACT.labels))
    difference = float((got - expected).abs().max())
    print(f"{quantize}: max |logit difference| {difference:.3g}; ms per window: JVM {answer['ms_per_window']:.4f}, "
          f"Python runtime {python_ms:.4f}")
    assert difference <= MAX_LOGIT_DIFFERENCE
    # Not a constant answer: the windows differ, so must their logits (guards against a stale input).
    assert float(got.std(0).min()) > 0


def test_truncated_pte_is_refused_with_a_message(classpath, bundles):
    data = bundles["pte"]["none"].read_bytes()
    truncated = bundles["folder"] / "truncated.pte"
    truncated.write_bytes(data[: len(data) // 2])
    result = run_pte(classpath, bundles["folder"], truncated, bundles["windows_json"])
    assert result.returncode == 2, f"exit {result.returncode}, not RunPte's error exit: {result.stderr[-2000:]}"
    assert f"bundle refused: {truncated}: the ExecuTorch runtime cannot load it" in result.stderr
    assert not list(bundles["folder"].glob("hs_err_pid*.log"))
    assert result.stdout == ""


def test_pte_of_another_input_shape_is_refused(classpath, bundles):
    result = run_pte(classpath, bundles["folder"], bundles["pte"]["int8"], bundles["windows_json"], "1,1,600")
    assert result.returncode == 2, result.stderr
    assert "the model takes input (1, 1, 1200), the contract says (1, 1, 600)" in result.stderr
