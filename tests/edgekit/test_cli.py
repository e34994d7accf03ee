"""The `edgekit` command line, run in-process on the embedded Apnea-ECG nights."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re
from pathlib import Path

import pytest
import torch

import teacher
from edgekit._ledger import Ledger
from edgekit._store import ArtifactStore
from edgekit.cli import main
from cli_runner import run_cli

ID_RE = re.compile(r"^teacher-[0-9a-f]{12}$")


def x01_label_count(folder) -> int:
    """x01's minutes counted straight from the answers file: its block's A/N characters."""
    lines = (folder / "event-2-answers").read_text().splitlines()
    count = 0
    for line in lines[lines.index("x01") + 1 :]:
        words = line.split()
        if len(words) != 2:
            break
        count += len(words[1])
    return count


@pytest.fixture(autouse=True)
def no_environment_defaults(monkeypatch):
    monkeypatch.delenv("EDGEKIT_RUNS", raising=False)
    monkeypatch.delenv("EDGEKIT_DATA", raising=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, embedded_apnea_dir):
    """One `teacher train` run shared by the tests that read its artifact."""
    runs = tmp_path_factory.mktemp("runs")
    code, out, err = run_cli(
        "teacher", "train", "--dataset", "apnea-ecg", "--data-dir", embedded_apnea_dir,
        "--train-records", "a03,c03", "--val-records", "b02", "--epochs", "1",
        "--device", "cpu", "--runs", runs, "--quiet",
    )
    return code, out, err, runs


def test_train_prints_the_artifact_id(trained, embedded_apnea_dir):
    code, out, err, runs = trained
    assert code == 0, err
    artifact_id = out.strip()
    assert ID_RE.match(artifact_id), out
    manifest = json.loads((runs / artifact_id / "manifest.json").read_text())
    assert manifest["kind"] == "teacher"
    assert manifest["config"]["train_records"] == ["a03", "c03"]
    assert manifest["config"]["val_records"] == ["b02"]
    assert manifest["config"]["epochs"] == 1 and manifest["config"]["dataset"] == "apnea-ecg"
    assert [night["record"] for night in manifest["data"]] == ["a03", "c03", "b02"]
    assert len(manifest["history"]) == 1
    # The metrics also go to stderr, as one JSON line.
    assert json.loads(err.strip().splitlines()[-1]) == manifest["metrics"]


def test_runs_lists_the_trained_teacher(trained):
    _, out, _, runs = trained
    artifact_id = out.strip()
    code, listing, _ = run_cli("runs", "--runs", runs)
    assert code == 0
    rows = [line for line in listing.splitlines() if line.startswith(artifact_id)]
    assert len(rows) == 1 and "teacher" in rows[0] and "val_accuracy=" in rows[0]
    code, listing, _ = run_cli("runs", "--runs", runs, "--kind", "student")
    assert code == 0 and artifact_id not in listing


def test_eval_json_on_x01(trained, embedded_apnea_dir):
    _, out, _, runs = trained
    artifact_id = out.strip()
    code, text, err = run_cli(
        "teacher", "eval", artifact_id, "--records", "x01", "--json",
        "--data-dir", embedded_apnea_dir, "--runs", runs, "--quiet",
    )
    assert code == 0, err
    figures = json.loads(text)  # strict JSON: NaN must have become null
    assert figures["artifact"] == artifact_id and figures["records"] == ["x01"]
    assert {"minute", "night", "data"} <= set(figures)
    # x01 has no beat for its first 631 s: 11 minutes neither flagged nor scored, and counted.
    assert figures["no_signal_minutes"] == 11
    minutes = x01_label_count(embedded_apnea_dir) - figures["no_signal_minutes"]
    assert figures["minute"]["minutes"] == minutes
    assert sum(figures["minute"]["confusion"].values()) == minutes
    assert figures["night"]["nights"] == 1
    assert figures["night"]["ahi_correlation"] is None  # undefined for one night
    # The figures are recorded in the artifact's manifest.
    manifest = ArtifactStore(runs).get(artifact_id).manifest
    assert manifest["evaluations"]["x01"]["minute"]["minutes"] == minutes


def test_eval_text_by_id_prefix(trained, embedded_apnea_dir, tmp_path):
    _, out, _, runs = trained
    prefix = out.strip()[: len("teacher-") + 6]
    plot = tmp_path / "ahi.png"
    code, text, err = run_cli(
        "teacher", "eval", prefix, "--records", "x01", "--data-dir", embedded_apnea_dir, "--runs", runs, "--quiet",
        "--plot", plot,
    )
    assert code == 0, err
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"{x01_label_count(embedded_apnea_dir) - 11} minutes scored, 11 without signal" in text
    assert "x01: AHI est" in text


def test_eval_by_path_resolves_in_the_artifacts_own_runs_folder(trained, embedded_apnea_dir, tmp_path, monkeypatch):
    """`edgekit teacher eval runs-b/teacher-x` works wherever the default runs folder is."""
    _, out, _, runs = trained
    artifact_id = out.strip()
    monkeypatch.chdir(tmp_path)  # ./runs, the default, is not where the teacher is
    code, text, err = run_cli("teacher", "eval", runs / artifact_id, "--records", "x01", "--json",
                              "--data-dir", embedded_apnea_dir, "--quiet")
    assert code == 0, err
    assert json.loads(text)["artifact"] == artifact_id
    assert "x01" in ArtifactStore(runs).get(artifact_id).manifest["evaluations"]
    assert not (tmp_path / "runs").exists()  # nothing made in the default folder


def test_unknown_dataset_exits_2_naming_it(tmp_path, embedded_apnea_dir):
    code, out, err = run_cli(
        "teacher", "train", "--dataset", "sleep-edf", "--data-dir", embedded_apnea_dir,
        "--train-records", "a03", "--epochs", "1", "--runs", tmp_path / "runs", "--quiet",
    )
    assert code == 2 and out == ""
    assert "sleep-edf" in err and "apnea-ecg" in err  # names the bad one and the known ones
    assert ArtifactStore(tmp_path / "runs").list() == []


def test_unknown_artifact_exits_2(tmp_path, embedded_apnea_dir):
    code, out, err = run_cli(
        "teacher", "eval", "teacher-000000000000", "--records", "x01",
        "--data-dir", embedded_apnea_dir, "--runs", tmp_path / "runs",
    )
    assert code == 2 and out == ""
    assert "teacher-000000000000" in err


def test_unknown_arch_exits_2_listing_the_registry(tmp_path, embedded_apnea_dir):
    code, _, err = run_cli(
        "teacher", "train", "--dataset", "apnea-ecg", "--arch", "resnet9000", "--data-dir", embedded_apnea_dir,
        "--train-records", "a03", "--epochs", "1", "--runs", tmp_path / "runs", "--quiet",
    )
    assert code == 2
    assert "resnet9000" in err and "apnea_cnn" in err


def test_missing_data_dir_exits_2_with_the_download_hint(tmp_path):
    missing = tmp_path / "no-data-here"
    code, out, err = run_cli(
        "teacher", "train", "--dataset", "apnea-ecg", "--data-dir", missing,
        "--train-records", "a03", "--epochs", "1", "--runs", tmp_path / "runs", "--quiet",
    )
    assert code == 2 and out == ""
    assert "--download" in err and str(missing) in err
    assert ArtifactStore(tmp_path / "runs").list() == []
    assert not missing.exists()


def test_missing_required_option_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stderr(io.StringIO()):
        main(["teacher", "train", "--runs", str(tmp_path)])
    assert exit_info.value.code == 2


def test_resume_an_interrupted_run_through_the_cli(tmp_path, embedded_apnea_dir):
    """Leave an epoch-1 checkpoint where the CLI's run of the same config would, then `--resume`."""
    runs = tmp_path / "runs"
    # The configuration `teacher train ... --train-records c07 --epochs 2` builds.
    config = teacher.TrainConfig(
        dataset="apnea-ecg", arch="apnea_cnn", epochs=2, seed=0,
        train_records=["c07"], val_records=[], test_records=list(teacher.TEST_RECORDS),
    )
    staging = ArtifactStore(runs).staging_dir("teacher", config.to_dict(), resume=True)
    windows, _ = teacher.load_windows(["c07"], embedded_apnea_dir, teacher.APNEA_WINDOW, progress=False)
    epochs_seen = []

    def crash_in_epoch_2(model):
        epochs_seen.append(1)
        if len(epochs_seen) == 2:
            raise KeyboardInterrupt
        return {}

    with pytest.raises(KeyboardInterrupt):
        teacher.fit(config, windows.inputs, windows.labels, staging, evaluate=crash_in_epoch_2,
                    device="cpu", progress=False)
    saved = torch.load(staging / "checkpoint.pt", weights_only=False)
    assert saved["epoch"] == 1

    code, out, err = run_cli(
        "teacher", "train", "--dataset", "apnea-ecg", "--data-dir", embedded_apnea_dir,
        "--train-records", "c07", "--epochs", "2", "--resume", "--device", "cpu", "--runs", runs, "--quiet",
    )
    assert code == 0, err
    manifest = ArtifactStore(runs).get(out.strip()).manifest
    assert [epoch["epoch"] for epoch in manifest["history"]] == [1, 2]
    assert manifest["history"][0] == saved["history"][0]  # epoch 1 came from the checkpoint
    assert not staging.exists()  # sealed into the artifact


def test_explain_one_minute_draws_its_figure(trained, embedded_apnea_dir, tmp_path):
    _, out, _, runs = trained
    figure = tmp_path / "minute.png"
    code, text, err = run_cli("explain", out.strip(), "--record", "x01", "--minute", "200", "--runs", runs,
                              "--data-dir", embedded_apnea_dir, "--out", figure, "--quiet")
    assert code == 0, err
    assert re.match(r"^x01 minute 200: P\(apnea\) [01]\.\d\d, (flagged apnea|not flagged); neuromask explained", text)
    assert figure.read_bytes()[:4] == b"\x89PNG"


def test_explain_a_night_writes_one_figure_per_flagged_minute(trained, embedded_apnea_dir, tmp_path):
    _, out, _, runs = trained
    report = tmp_path / "night.html"
    code, text, err = run_cli("explain", out.strip(), "--record", "x01", "--night", "--method", "occlusion",
                              "--runs", runs, "--data-dir", embedded_apnea_dir, "--out", report, "--quiet")
    assert code == 0, err
    flagged = int(re.match(r"^x01: (\d+) flagged minutes explained \(occlusion\)", text).group(1))
    assert report.read_text().count("<img ") == flagged


def test_explain_with_relabel_trains_its_vae_once(trained, embedded_apnea_dir, tmp_path):
    _, out, _, runs = trained
    for _ in range(2):
        code, _, err = run_cli("explain", out.strip(), "--record", "x01", "--minute", "10", "--method", "relabel",
                               "--runs", runs, "--data-dir", embedded_apnea_dir, "--out", tmp_path / "r.png", "--quiet")
        assert code == 0, err
    assert len(ArtifactStore(runs).list("vae")) == 1


@pytest.mark.parametrize("argv, message", [
    (["--minute", "100000"], "x01 has minutes 0-"),
    ([], "say which minute to explain"),
    (["--minute", "3", "--night"], "say which minute to explain"),
])
def test_explain_refuses_a_minute_that_is_not_there(trained, embedded_apnea_dir, argv, message):
    _, out, _, runs = trained
    code, _, err = run_cli("explain", out.strip(), "--record", "x01", *argv, "--runs", runs,
                           "--data-dir", embedded_apnea_dir, "--quiet")
    assert code == 2 and message in err


def test_demo_runs_teacher_synth_student_audit_export_and_replay(tmp_path, monkeypatch):
    """`edgekit demo` end to end with its sizes cut down: every stage leaves its artifact, chained."""
    import synth
    from edgekit import _demo

    tiny = {
        "DEMO_TRAIN_RECORDS": ["a03", "a05", "c03", "c07"],  # the fewest the audit's two teams take
        "DEMO_EPOCHS": 4,  # after 2 it is rarely sure enough (softmax > 0.9) for Gen{h1} to harvest fast
        "DEMO_SYNTH_SIZE": 64,
        "DEMO_STUDENT_EPOCHS": 1,
        "DEMO_AUDIT_EPOCHS": 2,
        "DEMO_AUDIT_SAMPLES": 64,
        "DEMO_AUDIT_TEAM_SIZE": 32,
    }
    for name, value in tiny.items():
        monkeypatch.setattr(_demo, name, value)

    # A Gen{h1} round costs the same whatever the size asked for: 64 generators x 40 steps take about
    # 20 s here. Rounds of 8 generators keep the three syntheses (the demo's, one per audit team) short.
    @dataclasses.dataclass
    class SmallRounds(synth.SynthConfig):
        generators: int = 8

    monkeypatch.setattr(synth, "SynthConfig", SmallRounds)
    runs = tmp_path / "demo"
    code, out, err = run_cli("demo", "--runs", runs, "--quiet")
    assert code == 0, err
    ids = {kind: re.search(rf"^{prefix}({kind}-[0-9a-f]{{12}})", out, re.MULTILINE).group(1)
           for kind, prefix in (("teacher", "teacher "), ("synth", "synthetic set "), ("student", "student "))}
    store = ArtifactStore(runs)
    synthetic, student = store.get(ids["synth"]), store.get(ids["student"])
    assert synthetic.kind == "synth" and synthetic.manifest["parents"] == [ids["teacher"]]
    assert synthetic.manifest["config"]["size"] == 64 and synthetic.manifest["metrics"]["samples"] == 64
    assert synthetic.manifest["data"].startswith("none")  # made from the teacher alone
    assert student.kind == "student" and student.manifest["parents"] == [ids["synth"]]
    assert student.manifest["config"]["arch"] == "apnea_cnn_small" and student.manifest["config"]["epochs"] == 1
    # The student is scored on the held-out night like its teacher.
    minutes = store.get(ids["teacher"]).manifest["evaluations"]["x01"]["minute"]["minutes"]
    assert student.manifest["evaluations"]["x01"]["minute"]["minutes"] == minutes
    audit = synthetic.manifest["evaluations"]["audit"]
    assert audit["synth"] == ids["synth"] and audit["teacher"] == ids["teacher"]
    assert audit["config"]["epochs"] == 2 and audit["config"]["team_size"] == 32
    assert audit["nearest_neighbour"]["heldout_source"] == "test nights x01"
    assert audit["identification"]["team"]["synthetic_windows"] == 2 * 32
    assert f"audit of {ids['synth']}" in out and "team identifier" in out
    # It ends with the student as an int8 bundle and the held-out night replayed through it.
    bundle = store.get(re.search(r"^bundle (bundle-[0-9a-f]{12})", out, re.MULTILINE).group(1))
    assert bundle.manifest["parents"] == [ids["student"]] and bundle.manifest["bundle"]["quantize"] == "int8"
    assert re.search(rf"^replay x01 through the .pte: estimated AHI [0-9.]+ .*{runs / 'x01-replay.png'}$", out,
                     re.MULTILINE)
    assert (runs / "x01-replay.png").stat().st_size > 0
    # The bundle is signed by the demo's key, and the night replays on the phone core alike (where built).
    assert (bundle.path / "manifest.sig").exists()
    phone = re.search(r"^phone core(.*)$", out, re.MULTILINE).group(1)
    assert "replayed exactly as on the server" in phone or phone.startswith(": not run here")
    # And it ends by explaining the flagged minute the bundle was surest of (when it flagged one).
    why = re.search(r"^why: (.*)$", out, re.MULTILINE).group(1)
    figure = re.search(r"NeuroMask in [0-9.]+ s: (\S+-neuromask\.png)$", why)
    assert figure or why == "no minute of x01 was flagged, so there is nothing to explain"
    if figure:
        assert Path(figure.group(1)).read_bytes()[:4] == b"\x89PNG"
    # Last, patient a03's request: a teacher without a03, its certificate, the ledger entry, and
    # (when the certificate holds) everything made from the old teacher marked stale.
    request = re.search(r"^request 1 \(demo: the patient withdrew consent\): forget patient a03 from "
                        rf"{ids['teacher']}$", out, re.MULTILINE)
    assert request, out
    unlearned_id = re.search(r"^teacher (teacher-[0-9a-f]{12}): (VERIFIED|NOT VERIFIED)", out, re.MULTILINE)
    unlearned = store.get(unlearned_id.group(1))
    assert unlearned.manifest["parents"] == [ids["teacher"]]
    assert "a03" not in unlearned.manifest["config"]["train_records"]
    assert (unlearned.path / "certificate.html").stat().st_size > 0
    # The guides were made for the request, from the old teacher: those of a03's folds only.
    guides = [store.get(made) for made in unlearned.manifest["unlearning"]["guides"]]
    assert {guide.manifest["parents"][0] for guide in guides} == {ids["teacher"]}
    assert guides and all("a03" in guide.manifest["config"]["fold"] for guide in guides)
    stale = {entry["artifact"] for entry in Ledger(store).stale()}
    assert stale == ({ids["synth"], ids["student"], bundle.id} | {guide.id for guide in guides}
                     if unlearned_id.group(2) == "VERIFIED" else set())
