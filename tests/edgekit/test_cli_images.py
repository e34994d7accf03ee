"""The `edgekit` command line on an image dataset: a tiny ImageFolder the test writes, end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import torchvision

from edgekit._store import ArtifactStore
from cli_runner import run_cli

ID_RE = re.compile(r"^teacher-[0-9a-f]{12}$")
# 160 training images per class: 3 batches of the recipe's 128 per epoch, 6 steps in 2 epochs. With
# 40 per class (1 step per epoch) cnn_tiny still called part of one class wrong (accuracy 0.7-0.8).
TRAIN_PER_CLASS, TEST_PER_CLASS = 160, 10


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
    """16x16 RGB PNGs, class `dark` (pixels near 45) and class `light` (near 210), with seeded noise.

    An untrained cnn_tiny (seed 0) calls every one of these images `dark` (0.5 accuracy), so a
    perfect score shows that training happened.
    """
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
def trained(tmp_path_factory, light_and_dark):
    runs = tmp_path_factory.mktemp("runs")
    code, out, err = run_cli(
        "teacher", "train", "--dataset", "imagefolder", "--arch", "cnn_tiny", "--epochs", "2", "--no-validation",
        "--device", "cpu", "--data-dir", light_and_dark, "--runs", runs, "--quiet",
    )
    return code, out, err, runs


def test_train_prints_the_artifact_id(trained):
    code, out, err, runs = trained
    assert code == 0, err
    artifact_id = out.strip()
    assert ID_RE.match(artifact_id), out
    manifest = json.loads((runs / artifact_id / "manifest.json").read_text())
    assert manifest["kind"] == "teacher"
    config = manifest["config"]
    assert config["dataset"] == "imagefolder" and config["arch"] == "cnn_tiny" and config["epochs"] == 2
    assert config["validation_size"] == 0
    assert config["arch_options"]["in_channels"] == 3 and config["arch_options"]["image_size"] == 16
    assert config["arch_options"]["num_classes"] == 2
    assert manifest["contract"]["modality"] == "image"
    assert manifest["contract"]["shape"] == [3, 16, 16] and manifest["contract"]["labels"] == ["dark", "light"]
    assert manifest["metrics"]["train_examples"] == 2 * TRAIN_PER_CLASS
    assert "val_accuracy" not in manifest["metrics"]
    assert [epoch["epoch"] for epoch in manifest["history"]] == [1, 2]
    assert manifest["data"][0]["per_class"] == {"dark": TRAIN_PER_CLASS, "light": TRAIN_PER_CLASS}
    assert json.loads(err.strip().splitlines()[-1]) == manifest["metrics"]


def test_eval_json_gives_per_class_accuracy(trained, light_and_dark):
    _, out, _, runs = trained
    artifact_id = out.strip()
    code, text, err = run_cli(
        "teacher", "eval", artifact_id, "--json", "--data-dir", light_and_dark, "--runs", runs, "--quiet",
    )
    assert code == 0, err
    figures = json.loads(text)
    assert figures["artifact"] == artifact_id and figures["dataset"] == "imagefolder"
    assert figures["examples"] == 2 * TEST_PER_CLASS
    assert set(figures["per_class_accuracy"]) == {"dark", "light"}
    assert sum(map(sum, figures["confusion"])) == 2 * TEST_PER_CLASS
    # Learned, not guessed: both classes right (an untrained cnn_tiny calls everything `dark`).
    assert figures["accuracy"] == 1.0, figures
    assert figures["per_class_accuracy"] == {"dark": 1.0, "light": 1.0}
    # The figures are recorded in the manifest, without the bulky parts.
    test = ArtifactStore(runs).get(artifact_id).manifest["evaluations"]["test"]
    assert test["accuracy"] == figures["accuracy"] and "confusion" not in test


def test_eval_text_lists_every_class(trained, light_and_dark):
    _, out, _, runs = trained
    code, text, err = run_cli("teacher", "eval", out.strip(), "--data-dir", light_and_dark, "--runs", runs, "--quiet")
    assert code == 0, err
    assert f"{2 * TEST_PER_CLASS} images" in text and "test split" in text
    assert re.search(r"dark: \d+\.\d+%", text) and re.search(r"light: \d+\.\d+%", text)


def test_runs_lists_the_image_teacher(trained):
    _, out, _, runs = trained
    artifact_id = out.strip()
    code, listing, _ = run_cli("runs", "--runs", runs)
    assert code == 0
    rows = [line for line in listing.splitlines() if line.startswith(artifact_id)]
    assert len(rows) == 1 and "teacher" in rows[0]
    code, listing, _ = run_cli("runs", "--runs", runs, "--kind", "student")
    assert code == 0 and artifact_id not in listing


def test_unknown_dataset_exits_2_naming_it(tmp_path, light_and_dark):
    code, out, err = run_cli(
        "teacher", "train", "--dataset", "svhn", "--epochs", "1", "--data-dir", light_and_dark,
        "--runs", tmp_path / "runs", "--quiet",
    )
    assert code == 2 and out == ""
    assert "svhn" in err and "imagefolder" in err and "mnist" in err
    assert ArtifactStore(tmp_path / "runs").list() == []


def test_non_image_arch_on_images_exits_2(tmp_path, light_and_dark):
    code, out, err = run_cli(
        "teacher", "train", "--dataset", "imagefolder", "--arch", "apnea_cnn", "--epochs", "1",
        "--data-dir", light_and_dark, "--runs", tmp_path / "runs", "--quiet",
    )
    assert code == 2 and out == ""
    assert "apnea_cnn" in err and "cnn_tiny" in err


def test_missing_image_folder_exits_2_naming_it(tmp_path):
    missing = tmp_path / "no-images"
    code, out, err = run_cli(
        "teacher", "train", "--dataset", "imagefolder", "--arch", "cnn_tiny", "--epochs", "1",
        "--data-dir", missing, "--runs", tmp_path / "runs", "--quiet",
    )
    assert code == 2 and out == ""
    assert str(missing / "train") in err
    assert ArtifactStore(tmp_path / "runs").list() == []


def test_missing_mnist_exits_2_with_the_download_hint(tmp_path):
    code, out, err = run_cli(
        "teacher", "train", "--dataset", "mnist", "--epochs", "1", "--data-dir", tmp_path, "--runs",
        tmp_path / "runs", "--quiet",
    )
    assert code == 2 and out == ""
    assert "--download" in err and str(tmp_path / "mnist") in err


def test_default_validation_draw_is_a_tenth_of_the_folder(tmp_path, light_and_dark):
    code, out, _ = run_cli(
        "teacher", "train", "--dataset", "imagefolder", "--arch", "cnn_tiny", "--epochs", "1",
        "--device", "cpu", "--data-dir", light_and_dark, "--runs", tmp_path / "runs", "--quiet",
    )
    assert code == 0
    manifest = ArtifactStore(tmp_path / "runs").get(out.strip()).manifest
    assert manifest["config"]["validation_size"] == 2 * TRAIN_PER_CLASS // 10
    assert 0.0 <= manifest["metrics"]["val_accuracy"] <= 1.0


def test_validation_draw_larger_than_the_folder_exits_2(tmp_path, light_and_dark):
    code, out, err = run_cli(
        "teacher", "train", "--dataset", "imagefolder", "--arch", "cnn_tiny", "--epochs", "1",
        "--validation-size", "5000", "--device", "cpu", "--data-dir", light_and_dark,
        "--runs", tmp_path / "runs", "--quiet",
    )
    assert code == 2 and out == ""
    assert "5000" in err and str(2 * TRAIN_PER_CLASS) in err
    assert ArtifactStore(tmp_path / "runs").list() == []
