"""`edgekit synth generate` and `edgekit student distill` end to end on a tiny ImageFolder the test writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import torchvision

from edgekit._store import ArtifactStore
from cli_runner import run_cli

TEACHER_RE = re.compile(r"^teacher-[0-9a-f]{12}$")
SYNTH_RE = re.compile(r"^synth-[0-9a-f]{12}$")
STUDENT_RE = re.compile(r"^student-[0-9a-f]{12}$")
TRAIN_PER_CLASS, TEST_PER_CLASS = 160, 10
# 8 epochs (under a second): after 2 the teacher is right on every test image but never more than
# ~0.7 sure of anything in [0, 1]^3x16x16, so no sample can pass the stop rule (softmax > T >= 0.9);
# after 4 it is sure of `dark` only.
TEACHER_EPOCHS = 8
SIZE, GENERATORS = 64, 8


@pytest.fixture(scope="module", autouse=True)
def environment(tmp_path_factory):
    """No $EDGEKIT_RUNS / $EDGEKIT_DATA defaults; decoded tensors in a temporary cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("EDGEKIT_RUNS", raising=False)
        patch.delenv("EDGEKIT_DATA", raising=False)
        patch.setenv("EDGEKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def light_and_dark(tmp_path_factory) -> Path:
    """16x16 RGB PNGs, class `dark` (pixels near 45) and class `light` (near 210), with seeded noise."""
    root = tmp_path_factory.mktemp("light-and-dark")
    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        for name, level in (("dark", 45), ("light", 210)):
            folder = root / split / name
            folder.mkdir(parents=True)
            for k in range(count):
                noise = torch.randint(-30, 31, (3, 16, 16), generator=generator)
                torchvision.io.write_png((level + noise).clamp(0, 255).to(torch.uint8), str(folder / f"{k:03d}.png"))
    return root


@pytest.fixture(scope="module")
def chain(tmp_path_factory, light_and_dark) -> dict:
    """teacher train -> synth generate -> student distill, each step's (code, stdout, stderr)."""
    runs = tmp_path_factory.mktemp("runs")
    common = ("--data-dir", light_and_dark, "--runs", runs, "--quiet")
    trained = run_cli("teacher", "train", "--dataset", "imagefolder", "--arch", "cnn_tiny", "--epochs", TEACHER_EPOCHS,
                      "--no-validation", "--device", "cpu", *common)
    assert trained[0] == 0, trained[2]
    teacher_id = trained[1].strip()
    synthesised = run_cli("synth", "generate", teacher_id, "--size", SIZE, "--generators", GENERATORS, *common)
    assert synthesised[0] == 0, synthesised[2]
    synth_id = synthesised[1].strip()
    distilled = run_cli("student", "distill", synth_id, "--arch", "cnn_tiny", "--epochs", "1", "--device", "cpu",
                        *common)
    return {"runs": runs, "teacher": trained, "synth": synthesised, "student": distilled}


def test_synth_generate_prints_a_synth_id_child_of_the_teacher(chain):
    teacher_id = chain["teacher"][1].strip()
    assert TEACHER_RE.match(teacher_id)
    code, out, err = chain["synth"]
    synth_id = out.strip()
    assert code == 0 and SYNTH_RE.match(synth_id), out
    manifest = json.loads((chain["runs"] / synth_id / "manifest.json").read_text())
    assert manifest["kind"] == "synth" and manifest["parents"] == [teacher_id]
    assert manifest["config"]["size"] == SIZE and manifest["config"]["generators"] == GENERATORS
    assert manifest["config"]["labels"] == "soft"
    assert manifest["contract"]["shape"] == [3, 16, 16] and manifest["contract"]["labels"] == ["dark", "light"]
    metrics = manifest["metrics"]
    assert metrics["samples"] == SIZE
    assert set(metrics["per_class"]) == {"dark", "light"}
    assert sum(metrics["per_class"].values()) == SIZE and min(metrics["per_class"].values()) > 0
    assert 0.90 <= metrics["threshold_min"] <= metrics["threshold_mean"] <= metrics["threshold_max"] <= 0.99
    assert 0 < metrics["harvest_rate"] <= 1
    assert json.loads(err.strip().splitlines()[-1]) == metrics
    shards = sorted(name for name in manifest["files"] if name.startswith("shard-"))
    assert shards == ["shard-00000.pt"]


def test_synth_samples_are_what_the_teacher_calls_their_class(chain):
    import synth
    import teacher

    store = ArtifactStore(chain["runs"])
    synthetic = store.get(chain["synth"][1].strip())
    data = synth.load_synthetic(synthetic.path)
    assert data["inputs"].shape == (SIZE, 3, 16, 16)
    assert data["inputs"].min() >= 0 and data["inputs"].max() <= 1
    model, _ = teacher.load_teacher(store.get(chain["teacher"][1].strip()).path)
    with torch.no_grad():
        assert torch.equal(model(data["inputs"]).argmax(1), data["targets"])


def test_student_distill_prints_a_student_id_child_of_the_synth(chain):
    code, out, err = chain["student"]
    assert code == 0, err
    student_id, synth_id = out.strip(), chain["synth"][1].strip()
    assert STUDENT_RE.match(student_id), out
    manifest = json.loads((chain["runs"] / student_id / "manifest.json").read_text())
    assert manifest["kind"] == "student" and manifest["parents"] == [synth_id]
    config = manifest["config"]
    assert config["arch"] == "cnn_tiny" and config["epochs"] == 1 and config["labels"] == "soft"
    assert config["arch_options"]["in_channels"] == 3 and config["arch_options"]["image_size"] == 16
    assert config["arch_options"]["num_classes"] == 2
    assert [epoch["epoch"] for epoch in manifest["history"]] == [1]
    metrics = manifest["metrics"]
    assert metrics["test"]["examples"] == 2 * TEST_PER_CLASS
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    assert set(metrics["test"]["per_class_accuracy"]) == {"dark", "light"}
    # The teacher's figures on the same real test split, for comparison (it learned: all right).
    assert metrics["teacher_test"]["examples"] == 2 * TEST_PER_CLASS
    assert metrics["teacher_test"]["accuracy"] == 1.0
    assert json.loads(err.strip().splitlines()[-1]) == metrics


def test_runs_lists_teacher_synth_and_student(chain):
    ids = {kind: chain[kind][1].strip() for kind in ("teacher", "synth", "student")}
    code, listing, _ = run_cli("runs", "--runs", chain["runs"])
    assert code == 0
    for kind, artifact_id in ids.items():
        rows = [line for line in listing.splitlines() if line.startswith(artifact_id)]
        assert len(rows) == 1 and kind in rows[0], listing
    synth_row = next(line for line in listing.splitlines() if line.startswith(ids["synth"]))
    assert ids["teacher"] in synth_row
    code, listing, _ = run_cli("runs", "--runs", chain["runs"], "--kind", "synth")
    starts = [line.split()[0] for line in listing.splitlines()[1:]]
    assert code == 0 and starts == [ids["synth"]], listing


def test_synth_generate_on_a_non_teacher_exits_2(chain, light_and_dark):
    runs, synth_id = chain["runs"], chain["synth"][1].strip()
    before = [artifact.id for artifact in ArtifactStore(runs).list()]
    code, out, err = run_cli("synth", "generate", synth_id, "--size", "8", "--generators", "2",
                             "--data-dir", light_and_dark, "--runs", runs, "--quiet")
    assert code == 2 and out == ""
    assert synth_id in err and "not a teacher" in err
    assert [artifact.id for artifact in ArtifactStore(runs).list()] == before


def test_synth_generate_on_an_unknown_id_exits_2(chain):
    code, out, err = run_cli("synth", "generate", "teacher-000000000000", "--size", "8", "--runs", chain["runs"],
                             "--quiet")
    assert code == 2 and out == ""
    assert "teacher-000000000000" in err


def test_student_distill_on_a_teacher_exits_2(chain, light_and_dark):
    teacher_id = chain["teacher"][1].strip()
    code, out, err = run_cli("student", "distill", teacher_id, "--arch", "cnn_tiny", "--epochs", "1",
                             "--data-dir", light_and_dark, "--runs", chain["runs"], "--quiet")
    assert code == 2 and out == ""
    assert teacher_id in err and "not a synthetic set" in err


def test_student_of_another_modality_exits_2(chain, light_and_dark):
    code, out, err = run_cli("student", "distill", chain["synth"][1].strip(), "--arch", "apnea_cnn", "--epochs", "1",
                             "--data-dir", light_and_dark, "--runs", chain["runs"], "--quiet")
    assert code == 2 and out == ""
    assert "apnea_cnn" in err and "image" in err


def test_distill_with_hard_labels_trains_at_temperature_one(chain, light_and_dark):
    synth_id, soft_id = chain["synth"][1].strip(), chain["student"][1].strip()
    code, out, err = run_cli("student", "distill", synth_id, "--arch", "cnn_tiny", "--epochs", "1", "--labels", "hard",
                             "--temperature", "3", "--device", "cpu", "--data-dir", light_and_dark,
                             "--runs", chain["runs"], "--quiet")
    assert code == 0, err
    student_id = out.strip()
    assert STUDENT_RE.match(student_id) and student_id != soft_id
    manifest = ArtifactStore(chain["runs"]).get(student_id).manifest
    assert manifest["parents"] == [synth_id]
    assert manifest["config"]["labels"] == "hard" and manifest["config"]["temperature"] == 1.0


def test_synth_generate_again_gives_the_same_artifact(chain, light_and_dark):
    """Same teacher, same configuration, same seed: the same samples, hence the same content-hashed id."""
    teacher_id, synth_id = chain["teacher"][1].strip(), chain["synth"][1].strip()
    code, out, err = run_cli("synth", "generate", teacher_id, "--size", SIZE, "--generators", GENERATORS,
                             "--data-dir", light_and_dark, "--runs", chain["runs"], "--quiet")
    assert code == 0, err
    assert out.strip() == synth_id


def test_privacy_term_reads_real_features_and_changes_the_samples(chain, light_and_dark):
    """--privacy-weight wires the teacher's real training features into Loss_2: another set, same rule."""
    teacher_id, synth_id = chain["teacher"][1].strip(), chain["synth"][1].strip()
    code, out, err = run_cli("synth", "generate", teacher_id, "--size", SIZE, "--generators", GENERATORS,
                             "--privacy-weight", "0.5", "--data-dir", light_and_dark, "--runs", chain["runs"], "--quiet")
    assert code == 0, err
    private = ArtifactStore(chain["runs"]).get(out.strip())
    assert private.id != synth_id and private.manifest["config"]["privacy_weight"] == 0.5
    assert sum(private.manifest["metrics"]["per_class"].values()) == int(SIZE)


def test_synth_audit_reports_neighbours_and_interpretation_and_records_them(chain, light_and_dark):
    synth_id = chain["synth"][1].strip()
    code, out, err = run_cli("synth", "audit", synth_id, "--json", "--epochs", TEACHER_EPOCHS, "--samples", "32",
                             "--data-dir", light_and_dark, "--runs", chain["runs"], "--quiet")
    assert code == 0, err
    report = json.loads(out)
    assert report["synth"] == synth_id and report["teacher"] == chain["teacher"][1].strip()
    neighbour = report["nearest_neighbour"]
    assert neighbour["synthetic_samples"] == 32 and neighbour["heldout_samples"] == 2 * TEST_PER_CLASS
    assert neighbour["train_samples"] == 2 * TRAIN_PER_CLASS
    assert neighbour["synthetic_to_train_median"] > 0 and neighbour["ratio"] > 0
    interpretation = report["interpretation"]
    assert interpretation["h"] == "cnn_tiny" and interpretation["S"] == ["cnn_large", "mlp"]
    assert interpretation["synthetic"]["examples"] == 32 and interpretation["synthetic"]["set_size"] == 2
    # On real light-or-dark images every classifier is right, so nothing fools S; the synthetic
    # samples are the teacher's own corners of the input space.
    assert all(accuracy == 1.0 for accuracy in interpretation["real_heldout_accuracy"].values())
    assert interpretation["real_heldout"]["fooling_rate"] == 0.0
    assert 0.0 <= interpretation["synthetic"]["hidden_message_rate"] <= interpretation["synthetic"]["fooling_rate"] <= 1
    assert "no patients" in report["identification"]["skipped"]
    recorded = ArtifactStore(chain["runs"]).get(synth_id).manifest["evaluations"]["audit"]
    assert recorded["nearest_neighbour"] == pytest.approx(neighbour)


def test_synth_audit_of_a_teacher_exits_2(chain, light_and_dark):
    teacher_id = chain["teacher"][1].strip()
    code, out, err = run_cli("synth", "audit", teacher_id, "--data-dir", light_and_dark, "--runs", chain["runs"], "--quiet")
    assert code == 2 and out == ""
    assert teacher_id in err and "not a synthetic set" in err
