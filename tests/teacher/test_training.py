"""teacher._training and teacher._apnea_teacher: a tiny real training run, scoring, and resuming."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import wfdb

import teacher
from teacher import TrainConfig, evaluate_apnea_teacher, fit, load_teacher, train_apnea_teacher
from teacher._training import CHECKPOINT_NAME


def apn_minutes(folder: Path, name: str) -> int:
    return int(wfdb.rdann(str(folder / name), "apn").sample.size)


def x01_label_count(folder: Path) -> int:
    """x01's minutes counted straight from the answers file: its block's A/N characters."""
    lines = (folder / "event-2-answers").read_text().splitlines()
    start = lines.index("x01") + 1
    count = 0
    for line in lines[start:]:
        words = line.split()
        if len(words) != 2:
            break
        count += len(words[1])
    return count


def same_weights(first: dict, second: dict) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


# --------------------------------------------------------------------------- end to end on embedded nights


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory, embedded_apnea_dir):
    work = tmp_path_factory.mktemp("teacher-work")
    config = TrainConfig(epochs=1, train_records=["a03", "c03"], val_records=["b02"], seed=0)
    trained = train_apnea_teacher(config, embedded_apnea_dir, work, device="cpu", progress=False)
    return trained, work, config


def test_tiny_training_run_reports_its_figures(tiny_teacher, embedded_apnea_dir):
    trained, work, config = tiny_teacher
    train_minutes = apn_minutes(embedded_apnea_dir, "a03") + apn_minutes(embedded_apnea_dir, "c03")
    assert trained.metrics["train_minutes"] == train_minutes
    assert set(trained.metrics) == {
        "train_minutes", "train_loss", "train_seconds", "val_accuracy", "val_roc_auc", "val_nights_correct", "val_nights",
    }
    assert math.isfinite(trained.metrics["train_loss"]) and trained.metrics["train_loss"] > 0
    assert 0.0 <= trained.metrics["val_accuracy"] <= 1.0
    assert trained.metrics["val_nights"] == 1 and trained.metrics["val_nights_correct"] in (0, 1)
    history = trained.checkpoint["history"]
    assert [epoch["epoch"] for epoch in history] == [1]
    assert {"train_loss", "seconds", "val_accuracy", "val_roc_auc"} <= set(history[0])
    assert [night["record"] for night in trained.data] == ["a03", "c03", "b02"]
    assert trained.data[2]["minutes"] == apn_minutes(embedded_apnea_dir, "b02")
    assert trained.contract == teacher.get_entry("apnea_cnn").contract
    assert not trained.model.training  # handed back in eval mode
    assert (work / CHECKPOINT_NAME).is_file()


def test_scoring_on_x01(tiny_teacher, embedded_apnea_dir):
    trained, _, _ = tiny_teacher
    figures = evaluate_apnea_teacher(trained.model, trained.contract, ["x01"], embedded_apnea_dir,
                                     rule=TrainConfig(**trained.checkpoint["config"]).decision, progress=False)
    assert set(figures) == {"records", "beats", "decision", "minute", "minute_unsmoothed", "night",
                            "no_signal_minutes", "data"}
    assert figures["records"] == ["x01"] and figures["beats"] == "annotations"
    # x01's first 631 s hold no beat: those 11 minutes are neither flagged nor scored.
    labelled, no_signal = x01_label_count(embedded_apnea_dir), figures["no_signal_minutes"]
    assert no_signal == 11
    assert figures["minute"]["minutes"] == labelled - no_signal
    assert sum(figures["minute"]["confusion"].values()) == labelled - no_signal
    assert {"accuracy", "sensitivity", "specificity", "roc_auc"} <= set(figures["minute"])
    night = figures["night"]
    assert night["nights"] == 1 and night["per_night"][0]["record"] == "x01"
    assert night["per_night"][0]["minutes"] == labelled and night["per_night"][0]["no_signal_minutes"] == no_signal
    assert figures["data"][0]["files"].keys() == {"x01.hea", "x01.qrs", "event-2-answers"}


def test_saved_checkpoint_reloads_the_same_model(tiny_teacher, embedded_apnea_dir):
    trained, work, config = tiny_teacher
    model, checkpoint = load_teacher(work)
    assert checkpoint["config"] == config.to_dict()
    assert same_weights(model.state_dict(), trained.model.state_dict())
    windows, _ = teacher.load_windows(["c07"], embedded_apnea_dir, teacher.APNEA_WINDOW, progress=False)
    np.testing.assert_array_equal(
        teacher.predict_proba(model, windows.inputs), teacher.predict_proba(trained.model, windows.inputs)
    )


def test_scoring_an_unlabelled_night_is_refused(tiny_teacher, embedded_apnea_dir, tmp_path):
    trained, _, _ = tiny_teacher
    for suffix in (".hea", ".qrs"):  # x01 without the answers file: no labels
        shutil.copy(embedded_apnea_dir / f"x01{suffix}", tmp_path / f"x01{suffix}")
    (tmp_path / "RECORDS").write_text("x01\n")
    with pytest.raises(ValueError, match="no labels for x01"):
        evaluate_apnea_teacher(trained.model, trained.contract, ["x01"], tmp_path, rule=teacher.DecisionRule(),
                               progress=False)


def test_training_needs_records(tmp_path):
    with pytest.raises(ValueError, match="no training records"):
        train_apnea_teacher(TrainConfig(epochs=1), tmp_path, tmp_path / "work", device="cpu", progress=False)
    assert not (tmp_path / "work" / CHECKPOINT_NAME).exists()


def test_load_teacher_without_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match=CHECKPOINT_NAME):
        load_teacher(tmp_path)


# --------------------------------------------------------------------------- fit: checkpoints and resuming


@pytest.fixture(scope="module")
def small_data():
    """48 random RR windows (0.7-1.1 s) with random labels: enough for 3 batches of 16."""
    rng = np.random.default_rng(0)
    inputs = (0.7 + 0.4 * rng.random((48, 1, 1200))).astype(np.float32)
    labels = rng.integers(0, 2, size=48)
    return inputs, labels


def small_config(**changes) -> TrainConfig:
    return TrainConfig(**{"epochs": 2, "batch_size": 16, "train_records": ["synthetic"], **changes})


class Interrupt(Exception):
    """Stands for a crash (or Ctrl-C) during the given epoch's validation."""


def interrupting_evaluate(at_epoch: int):
    calls = []

    def evaluate(model):
        calls.append(model.training)
        if len(calls) == at_epoch:
            raise Interrupt
        return {"val_marker": float(len(calls))}

    return evaluate


def counting_evaluate():
    calls = []

    def evaluate(model):
        calls.append(1)
        return {"val_marker": -1.0}

    return evaluate, calls


def test_fresh_runs_of_one_config_are_identical(small_data, tmp_path):
    inputs, labels = small_data
    _, first = fit(small_config(), inputs, labels, tmp_path / "a", device="cpu", progress=False)
    _, second = fit(small_config(), inputs, labels, tmp_path / "b", device="cpu", progress=False)
    assert same_weights(first["model"], second["model"])
    _, other_seed = fit(small_config(seed=1), inputs, labels, tmp_path / "c", device="cpu", progress=False)
    assert not same_weights(first["model"], other_seed["model"])


def test_resuming_a_finished_run_trains_nothing(small_data, tmp_path):
    inputs, labels = small_data
    model, done = fit(small_config(), inputs, labels, tmp_path, device="cpu", progress=False)
    on_disk = (tmp_path / CHECKPOINT_NAME).read_bytes()
    evaluate, calls = counting_evaluate()
    again, resumed = fit(
        small_config(), inputs, labels, tmp_path, device="cpu", progress=False, resume=True, evaluate=evaluate
    )
    assert calls == []  # no epoch ran
    assert resumed["history"] == done["history"] and len(resumed["history"]) == 2
    assert same_weights(resumed["model"], done["model"])
    assert same_weights(again.state_dict(), model.state_dict())
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == on_disk  # checkpoint left as it was


def test_without_resume_an_old_checkpoint_is_ignored(small_data, tmp_path):
    inputs, labels = small_data
    _, first = fit(small_config(), inputs, labels, tmp_path, device="cpu", progress=False)
    evaluate, calls = counting_evaluate()
    _, second = fit(small_config(), inputs, labels, tmp_path, device="cpu", progress=False, evaluate=evaluate)
    assert len(calls) == 2  # trained both epochs again
    assert same_weights(first["model"], second["model"])


def interrupted_after_epoch_1(config, inputs, labels, work):
    """Run `config` until validation of epoch 2 crashes: the epoch-1 checkpoint stays on disk."""
    with pytest.raises(Interrupt):
        fit(config, inputs, labels, work, device="cpu", progress=False, evaluate=interrupting_evaluate(2))
    checkpoint = torch.load(work / CHECKPOINT_NAME, weights_only=False)
    assert checkpoint["epoch"] == 1 and len(checkpoint["history"]) == 1
    return checkpoint


def test_resume_after_an_interruption_finishes_the_run(small_data, tmp_path):
    inputs, labels = small_data
    config = small_config()
    saved = interrupted_after_epoch_1(config, inputs, labels, tmp_path)
    steps_per_epoch = 3  # 48 windows, batches of 16
    assert saved["scheduler"]["last_epoch"] == steps_per_epoch

    evaluate, calls = counting_evaluate()
    _, resumed = fit(config, inputs, labels, tmp_path, device="cpu", progress=False, resume=True, evaluate=evaluate)
    assert len(calls) == 1  # only epoch 2 ran
    assert [epoch["epoch"] for epoch in resumed["history"]] == [1, 2]
    assert resumed["history"][0] == saved["history"][0]  # epoch 1 kept, not retrained
    assert resumed["history"][0]["val_marker"] == 1.0 and resumed["history"][1]["val_marker"] == -1.0
    final = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=False)
    assert final["epoch"] == 2 and final["scheduler"]["last_epoch"] == 2 * steps_per_epoch
    assert not same_weights(final["model"], saved["model"])  # epoch 2 really trained


@pytest.mark.parametrize(
    "arch_options",
    [
        # Dropout off: the only randomness is the saved generator (shuffling, augmentation).
        pytest.param({"dropout": 0.0}, id="without-dropout"),
        # The registry default, dropout 0.3: the global RNG must be restored too.
        pytest.param({}, id="with-dropout"),
    ],
)
def test_resume_reproduces_an_uninterrupted_run(small_data, tmp_path, arch_options):
    inputs, labels = small_data
    config = small_config(arch_options=arch_options)
    _, straight = fit(config, inputs, labels, tmp_path / "straight", device="cpu", progress=False)
    interrupted_after_epoch_1(config, inputs, labels, tmp_path / "resumed")
    _, resumed = fit(config, inputs, labels, tmp_path / "resumed", device="cpu", progress=False, resume=True)
    assert same_weights(resumed["model"], straight["model"])


def test_resume_with_another_config_is_refused(small_data, tmp_path):
    inputs, labels = small_data
    interrupted_after_epoch_1(small_config(), inputs, labels, tmp_path)
    on_disk = (tmp_path / CHECKPOINT_NAME).read_bytes()
    with pytest.raises(ValueError, match="another configuration"):
        fit(small_config(lr=1e-3), inputs, labels, tmp_path, device="cpu", progress=False, resume=True)
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == on_disk


def test_resume_without_checkpoint_starts_fresh(small_data, tmp_path):
    inputs, labels = small_data
    _, fresh = fit(small_config(), inputs, labels, tmp_path / "a", device="cpu", progress=False)
    _, resumed = fit(small_config(), inputs, labels, tmp_path / "b", device="cpu", progress=False, resume=True)
    assert len(resumed["history"]) == 2
    assert same_weights(fresh["model"], resumed["model"])


def test_training_leaves_the_callers_random_stream_alone(small_data, tmp_path):
    """fit seeds the global generator for its init and dropout; what the caller draws next must not
    depend on whether fit ran in between."""
    inputs, labels = small_data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fit(small_config(), inputs, labels, tmp_path, device="cpu", progress=False)
    assert torch.equal(torch.rand(3), expected)
