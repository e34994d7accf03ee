"""Bundles end to end on the embedded nights: teacher -> synthetic set -> student -> `edgekit export`
(fp32 and int8) -> the .pte in `executorch.runtime` against the eager student on real windows of
x01, `edgekit replay`, and every way a bundle or its input can be wrong."""

from __future__ import annotations

import dataclasses

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import edge_export
import student
import teacher
from edgekit import _pipeline
from edgekit._store import ArtifactStore
from cli_runner import run_cli

BUNDLE_PREFIX = "bundle-"


@pytest.fixture(scope="module")
def exported(tmp_path_factory, embedded_apnea_dir) -> dict:
    """A student of the embedded nights exported both ways; ids and the runs directory."""
    runs = tmp_path_factory.mktemp("runs")
    common = ("--data-dir", embedded_apnea_dir, "--runs", runs, "--quiet")
    code, out, err = run_cli("teacher", "train", "--dataset", "apnea-ecg", "--train-records", "a03,c03,b02",
                             "--no-validation", "--epochs", "4", "--device", "cpu", *common)
    assert code == 0, err
    teacher_id = out.strip()
    code, out, err = run_cli("synth", "generate", teacher_id, "--size", "512", *common)
    assert code == 0, err
    synth_id = out.strip()
    # Through the pipeline: the CLI would score the student on x01-x35, which the embedded data lacks.
    student_id = _pipeline.distill(ArtifactStore(runs), synth_id, "apnea_cnn_small", embedded_apnea_dir, epochs=8,
                                   device="cpu", progress=False, score_on_test=False).id
    bundles = {}
    for mode in ("none", "int8"):
        code, out, err = run_cli("export", student_id, "--quantize", mode, *common)
        assert code == 0, err
        bundles[mode] = out.strip()
    return {"runs": runs, "teacher": teacher_id, "synth": synth_id, "student": student_id, **bundles,
            "data_dir": embedded_apnea_dir}


@pytest.fixture(scope="module")
def x01_windows(embedded_apnea_dir) -> torch.Tensor:
    """Every minute of the held-out night x01, preprocessed as in training."""
    night = teacher.read_night("x01", embedded_apnea_dir)
    windows, _, _ = teacher.night_windows(night, teacher.APNEA_WINDOW)
    return torch.as_tensor(windows)


def _path(exported: dict, mode: str) -> Path:
    return ArtifactStore(exported["runs"]).get(exported[mode]).path


def _student(exported: dict):
    model, _ = teacher.load_teacher(ArtifactStore(exported["runs"]).get(exported["student"]).path)
    return model


def test_export_seals_a_bundle_whose_manifest_says_how_to_feed_it(exported):
    store = ArtifactStore(exported["runs"])
    for mode in ("none", "int8"):
        artifact = store.get(exported[mode])
        assert artifact.id.startswith(BUNDLE_PREFIX) and artifact.kind == "bundle"
        assert artifact.manifest["parents"] == [exported["student"]]
        spec = artifact.manifest["bundle"]
        pte = (artifact.path / "model.pte").read_bytes()
        assert spec["pte_sha256"] == edge_export.sha256_bytes(pte) and spec["pte_bytes"] == len(pte)
        assert spec["quantize"] == mode
        assert spec["contract"]["shape"] == [1, teacher.APNEA_WINDOW.length] and spec["labels"] == ["normal", "apnea"]
        assert spec["preprocessing"]["name"] == "beats-to-rr-windows/1"
        assert spec["preprocessing"]["grid_hz"] == 4.0 and spec["preprocessing"]["night_median_rr_s"] == 0.95
        student_config = store.get(exported["student"]).manifest["config"]
        # The student's own rule, as the rule serialises itself: what the phone reads.
        assert spec["decision"] == student_config["decision"]
        assert teacher.DecisionRule.from_dict(spec["decision"]).threshold == student.STUDENT_RECIPES["apnea-ecg"]["decision_threshold"]
        assert spec["lineage"][:3] == [exported["student"], exported["synth"], exported["teacher"]]
        assert set(spec["exporter"]) == {"torch", "executorch", "torchao"}
    int8 = store.get(exported["int8"]).manifest
    # All 512 synthetic windows but the 256 that export set aside to verify the .pte on.
    assert int8["bundle"]["calibration"] == {"source": exported["synth"], "samples": 256}
    assert int8["metrics"]["verification"]["decision_agreement"] >= 0.95


def test_int8_bundle_is_smaller_than_fp32(exported):
    sizes = {mode: (_path(exported, mode) / "model.pte").stat().st_size for mode in ("none", "int8")}
    assert sizes["int8"] < 0.8 * sizes["none"]
    assert sizes["int8"] <= 64 * 1024


def test_fp32_pte_gives_the_eager_students_logits_on_real_windows(exported, x01_windows):
    bundle = edge_export.load_bundle(_path(exported, "none"))
    windows = x01_windows[::5]
    lowered = np.stack([bundle.logits(window) for window in windows])
    with torch.no_grad():
        eager = _student(exported)(windows).numpy()
    np.testing.assert_allclose(lowered, eager, atol=1e-4, rtol=1e-4)


def test_int8_pte_makes_the_fp32_decisions_on_real_windows(exported, x01_windows):
    fp32 = edge_export.load_bundle(_path(exported, "none"))
    int8 = edge_export.load_bundle(_path(exported, "int8"))
    p32 = np.array([fp32.probabilities(window)[1] for window in x01_windows])
    p8 = np.array([int8.probabilities(window)[1] for window in x01_windows])
    threshold = fp32.spec["decision"]["threshold"]
    assert np.mean((p32 >= threshold) == (p8 >= threshold)) >= 0.95
    assert np.abs(p32 - p8).mean() < 0.05


def test_replay_flags_the_minutes_the_eager_student_flags(exported, x01_windows, tmp_path):
    plot, csv = tmp_path / "night.png", tmp_path / "night.csv"
    code, out, err = run_cli("replay", exported["none"], "--record", "x01", "--data-dir", exported["data_dir"],
                             "--runs", exported["runs"], "--json", "--plot", plot, "--csv", csv, "--quiet")
    assert code == 0, err
    result = json.loads(out)
    assert result["minutes"] == len(x01_windows) == len(result["flags"]) == len(result["reference"])
    with torch.no_grad():
        eager = torch.softmax(_student(exported)(x01_windows), 1)[:, 1].numpy()
    _, scored, _ = teacher.night_windows(teacher.read_night("x01", exported["data_dir"]), teacher.APNEA_WINDOW)
    assert result["signal"] == scored.astype(int).tolist() and result["no_signal_minutes"] == (~scored).sum() > 0
    expected = edge_export.load_bundle(_path(exported, "none")).decision.apply(eager, scored)["flags"]
    assert np.mean(np.array(result["flags"], dtype=bool) == expected) >= 0.998  # ties at the threshold aside
    assert not np.array(result["flags"])[~scored].any()  # x01's stretches without beats are never flagged
    assert result["estimated_ahi"] == pytest.approx(60 * np.sum(result["flags"]) / scored.sum())
    assert result["apneic"] == (result["estimated_ahi"] > 5)
    assert result["reference_ahi"] == pytest.approx(60 * np.mean(result["reference"]))
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = csv.read_text().splitlines()
    assert lines[0] == "minute,probability,smoothed,flag,signal,reference" and len(lines) == result["minutes"] + 1


def test_a_straps_beat_times_and_rr_intervals_replay_as_the_annotated_night(exported, tmp_path):
    # The same beats three ways: the record's .qrs, beat times in s, RR intervals in ms. a02, not
    # x01: RR intervals carry no start time, and x01's first beat comes after 10 flat minutes.
    night = teacher.read_night("a02", exported["data_dir"])
    times, rr = tmp_path / "a02-times.txt", tmp_path / "a02-rr.txt"
    times.write_text("\n".join(f"{t:.4f}" for t in night.beat_times))
    rr.write_text("rr_ms\n" + "\n".join(f"{1000 * interval:.2f}" for interval in np.diff(night.beat_times)))
    results = {}
    for path in (times, rr):
        code, out, err = run_cli("replay", exported["int8"], "--rr", path, "--runs", exported["runs"], "--json", "--quiet")
        assert code == 0, err
        results[path] = json.loads(out)
    reference = edge_export.replay_night(edge_export.load_bundle(_path(exported, "int8")), night)
    # The record scores its labelled minutes, the strap every started minute of its beats: compare
    # the minutes both have, away from the end (whose context differs).
    common = min(results[times]["minutes"], reference["minutes"]) - teacher.APNEA_WINDOW.context_minutes - 1
    assert results[times]["flags"][:common] == reference["flags"][:common]
    assert results[times]["signal"][:common] == reference["signal"][:common]
    # The RR stream starts its clock at the first beat (a02's first beat is under 2 s in).
    assert night.beat_times[0] < 2.0
    agree = np.mean(np.array(results[rr]["flags"][:common]) == np.array(reference["flags"][:common]))
    assert agree >= 0.97, agree


def test_replay_prints_the_nights_call(exported):
    code, out, err = run_cli("replay", _path(exported, "int8"), "--record", "x01", "--data-dir", exported["data_dir"],
                             "--quiet")
    assert code == 0, err
    assert out.startswith("x01: ") and "estimated AHI" in out and "reference AHI" in out


def _copy(exported: dict, mode: str, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(_path(exported, mode), copy)
    for path in copy.iterdir():
        path.chmod(0o644)
    return copy


def test_a_truncated_pte_is_refused_before_anything_runs(exported, tmp_path):
    copy = _copy(exported, "int8", tmp_path)
    pte = copy / "model.pte"
    pte.write_bytes(pte.read_bytes()[: pte.stat().st_size // 2])
    with pytest.raises(edge_export.BundleError, match="truncated or changed"):
        edge_export.load_bundle(copy)
    code, out, err = run_cli("replay", copy, "--record", "x01", "--data-dir", exported["data_dir"], "--quiet")
    assert code == 2 and out == "" and "does not match the manifest" in err


def test_one_changed_byte_is_refused(exported, tmp_path):
    copy = _copy(exported, "none", tmp_path)
    data = bytearray((copy / "model.pte").read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / "model.pte").write_bytes(bytes(data))
    with pytest.raises(edge_export.BundleError, match="sha256"):
        edge_export.load_bundle(copy)


def _edit_manifest(copy: Path, edit) -> None:
    manifest = json.loads((copy / "manifest.json").read_text())
    edit(manifest["bundle"])
    (copy / "manifest.json").write_text(json.dumps(manifest))


def test_a_contract_that_does_not_match_the_model_is_refused(exported, tmp_path):
    copy = _copy(exported, "int8", tmp_path)

    wider = teacher.rr_contract(dataclasses.replace(teacher.APNEA_WINDOW,
                                                    context_minutes=teacher.APNEA_WINDOW.context_minutes + 1))

    def a_minute_more_context(spec):  # consistent in itself, as a hand-edited manifest could be
        spec["contract"] = wider.to_dict()
        spec["preprocessing"] = edge_export.preprocessing_spec(wider)

    _edit_manifest(copy, a_minute_more_context)
    with pytest.raises(edge_export.BundleError, match=rf"takes input \(1, 1, {teacher.APNEA_WINDOW.length}\)"):
        edge_export.load_bundle(copy)


def test_a_decision_rule_this_code_does_not_implement_is_refused(exported, tmp_path):
    copy = _copy(exported, "int8", tmp_path)
    _edit_manifest(copy, lambda spec: spec["decision"].update(name="hidden-markov/1"))
    with pytest.raises(edge_export.BundleError, match="hidden-markov/1.* not implemented"):
        edge_export.load_bundle(copy)

    def no_threshold(spec):  # the rule by its name, incomplete: no default may stand in for it
        spec["decision"]["name"] = "smoothed-threshold/1"
        del spec["decision"]["threshold"]

    _edit_manifest(copy, no_threshold)
    with pytest.raises(edge_export.BundleError, match="missing.*threshold"):
        edge_export.load_bundle(copy)


def test_preprocessing_this_code_does_not_implement_is_refused(exported, tmp_path):
    copy = _copy(exported, "int8", tmp_path)
    _edit_manifest(copy, lambda spec: spec["preprocessing"].update(rr_limits_s=[0.25, 2.5]))
    differs = r"preprocessing differs .* rr_limits_s: bundle \[0.25, 2.5\], edgekit \[0.3, 2.0\]"
    with pytest.raises(edge_export.BundleError, match=differs):
        edge_export.load_bundle(copy)


def test_a_manifest_that_is_not_json_is_refused(exported, tmp_path):
    copy = _copy(exported, "int8", tmp_path)
    (copy / "manifest.json").write_text('{"kind": "bundle", ')
    with pytest.raises(edge_export.BundleError, match="not valid JSON"):
        edge_export.load_bundle(copy)


def test_a_directory_without_a_pte_is_not_a_bundle(exported, tmp_path):
    copy = _copy(exported, "int8", tmp_path)
    (copy / "model.pte").unlink()
    with pytest.raises(edge_export.BundleError, match="missing model.pte"):
        edge_export.load_bundle(copy)


def test_windows_of_the_wrong_length_or_with_nan_are_refused(exported, x01_windows):
    bundle = edge_export.load_bundle(_path(exported, "int8"))
    with pytest.raises(edge_export.BundleError, match=r"shape \(1, 1000\)"):
        bundle.probabilities(x01_windows[0, :, :1000])
    broken = x01_windows[0].clone()
    broken[0, 7] = float("nan")
    with pytest.raises(edge_export.BundleError, match="1 NaN"):
        bundle.probabilities(broken)
    assert bundle.probabilities(x01_windows[0]).sum() == pytest.approx(1.0, abs=1e-5)


def test_export_takes_students_only(exported):
    code, out, err = run_cli("export", exported["teacher"], "--runs", exported["runs"], "--quiet")
    assert code == 2 and out == "" and "not a student" in err


def test_replay_of_an_unknown_night_says_so(exported):
    code, out, err = run_cli("replay", exported["int8"], "--record", "x99", "--data-dir", exported["data_dir"],
                             "--runs", exported["runs"], "--quiet")
    assert code == 2 and out == "" and "x99" in err


@pytest.mark.parametrize("arch", ["apnea_cnn", "apnea_cnn_small"])
def test_apnea_models_lower_to_a_single_xnnpack_subgraph(arch):
    """Ops the XNNPACK partitioner refuses run in portable kernels between delegate calls: a
    max_pool1d left there made the apnea .pte 2.5x slower than eager PyTorch."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.devtools.backend_debug import get_delegation_info
    from executorch.exir import to_edge_transform_and_lower

    model = teacher.create_model(arch).eval()
    program = torch.export.export(model, (torch.full((1, *teacher.get_entry(arch).contract.shape), 0.9),))
    lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    info = get_delegation_info(lowered.exported_program().graph_module)
    assert info.num_delegated_subgraphs == 1, info.get_summary()
    table = info.get_operator_delegation_dataframe()
    left_out = table[(table["occurrences_in_non_delegated_graphs"] > 0) & (table["op_type"] != "getitem")
                     & (table["op_type"] != "Total")]
    assert left_out.empty, left_out.to_string()


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory) -> tuple[Path, Path]:
    return edge_export.new_signing_key(tmp_path_factory.mktemp("keys"))


def _signed_copy(exported: dict, signing_key, tmp_path: Path) -> Path:
    copy = _copy(exported, "int8", tmp_path)
    edge_export.sign_bundle(copy, signing_key[0])
    return copy


def test_a_bundle_signed_at_export_replays_under_its_public_key(exported, signing_key, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(exported["runs"], runs)
    code, out, err = run_cli("export", exported["student"], "--sign", signing_key[0], "--runs", runs, "--quiet")
    assert code == 0 and out.strip() == exported["int8"], err
    bundle = ArtifactStore(runs).get(exported["int8"]).path
    assert (bundle / edge_export.SIGNATURE_NAME).exists()
    code, out, err = run_cli("replay", bundle, "--record", "x01", "--data-dir", exported["data_dir"], "--quiet",
                             "--public-key", signing_key[1])
    assert code == 0 and out.startswith("x01: "), err


def test_an_unsigned_bundle_is_refused_when_a_key_is_pinned(exported, signing_key, tmp_path):
    copy = _copy(exported, "int8", tmp_path)
    with pytest.raises(edge_export.BundleError, match="unsigned"):
        edge_export.load_bundle(copy, public_key=signing_key[1])
    code, out, err = run_cli("replay", copy, "--record", "x01", "--data-dir", exported["data_dir"], "--quiet",
                             "--public-key", signing_key[1])
    assert code == 2 and out == "" and "unsigned" in err


def test_a_bundle_signed_by_another_key_is_refused(exported, signing_key, tmp_path):
    copy = _signed_copy(exported, signing_key, tmp_path)
    _, other_public = edge_export.new_signing_key(tmp_path / "other")
    edge_export.load_bundle(copy, public_key=signing_key[1])
    with pytest.raises(edge_export.BundleError, match="signature does not match"):
        edge_export.load_bundle(copy, public_key=other_public)


def test_a_manifest_changed_after_signing_is_refused_even_with_a_consistent_pte(exported, signing_key, tmp_path):
    copy = _signed_copy(exported, signing_key, tmp_path)
    # A rewritten bundle: another .pte and its own sha256 in the manifest, which the hash check alone accepts.
    pte = bytearray((copy / "model.pte").read_bytes())
    pte[len(pte) // 2] ^= 0x01
    (copy / "model.pte").write_bytes(bytes(pte))
    _edit_manifest(copy, lambda spec: spec.update(pte_sha256=edge_export.sha256_bytes(bytes(pte))))
    with pytest.raises(edge_export.BundleError, match="signature does not match"):
        edge_export.load_bundle(copy, public_key=signing_key[1])


def test_a_pte_changed_after_signing_is_refused(exported, signing_key, tmp_path):
    copy = _signed_copy(exported, signing_key, tmp_path)
    pte = copy / "model.pte"
    pte.write_bytes(pte.read_bytes()[:-16])
    with pytest.raises(edge_export.BundleError, match="truncated or changed"):
        edge_export.load_bundle(copy, public_key=signing_key[1])


def test_a_signing_key_is_never_overwritten_and_stays_private(signing_key):
    private, public = signing_key
    assert private.stat().st_mode & 0o077 == 0
    with pytest.raises(FileExistsError):
        edge_export.new_signing_key(private.parent)
    code, out, err = run_cli("keys", "new", private.parent)
    assert code == 2 and "already holds a signing key" in err
