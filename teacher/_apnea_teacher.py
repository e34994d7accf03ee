"""Training and scoring the apnea teacher: the readers, the registry and the loop put together."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from teacher._apnea import ApneaWindows, load_windows
from teacher._decision import DecisionRule
from teacher._metrics import minute_metrics, night_metrics
from teacher._models import InputContract, create_model, get_entry
from teacher._rr import BeatNoise
from teacher._training import CHECKPOINT_NAME, TrainConfig, fit, predict_proba


@dataclass
class TrainedTeacher:
    """A finished training run: the model and what the artifact records about it."""

    model: nn.Module
    checkpoint: dict
    contract: InputContract
    data: list[dict]  # per-night provenance (record, file hashes, RR-cleaning counts)
    metrics: dict


def training_beat_noise(copy: int) -> BeatNoise:
    """The detector errors simulated in the `copy`-th noisy copy of the training nights."""
    return BeatNoise(jitter_s=0.01, missed=0.02, extra=0.02, seed=1000 * (copy + 1))


def model_contract(arch: str, arch_options: dict | None = None) -> InputContract:
    """The registry contract of `arch`; a `length` override must agree with its window length."""
    contract = get_entry(arch).contract
    length = (arch_options or {}).get("length")
    if length is not None and length != contract.shape[-1]:
        raise ValueError(f"{arch}: length {length} does not match its contract {contract.shape}")
    return contract


def score_windows(model: nn.Module, windows: ApneaWindows, rule: DecisionRule) -> dict:
    """Per-minute and per-night figures of `model` on labelled windows, with the decision rule.

    Minutes without signal are neither flagged nor scored (`no_signal_minutes` counts them).
    `minute_unsmoothed` keeps the figures of the raw per-minute outputs (same threshold) for comparison.
    """
    labelled = windows.select(windows.labels >= 0)
    raw = predict_proba(model, labelled.inputs)[:, 1]
    smoothed, flags = rule.apply_by_night(labelled.records, labelled.minutes, raw, labelled.scored)
    scored = labelled.scored
    return {
        "minute": minute_metrics(labelled.labels[scored], smoothed[scored], flags[scored]),
        "minute_unsmoothed": minute_metrics(labelled.labels[scored], raw[scored], rule.flags(raw[scored])),
        "night": night_metrics(labelled.records, labelled.labels, flags, rule, scored),
        "no_signal_minutes": int((~scored).sum()),
    }


def decision_accuracy(rule: DecisionRule):
    """`score(model, windows)`: per-minute accuracy with the decision rule, the figure unlearning
    certificates compare."""
    def score(model: nn.Module, windows: ApneaWindows) -> float:
        return score_windows(model, windows, rule)["minute"]["accuracy"]
    return score


THRESHOLD_GRID = tuple(round(0.05 * step, 2) for step in range(1, 19))  # 0.05 ... 0.90


def best_threshold(model: nn.Module, windows: ApneaWindows, rule: DecisionRule,
                   candidates: tuple[float, ...] = THRESHOLD_GRID) -> tuple[float, float]:
    """(threshold, accuracy): the threshold of `rule` (its smoothing kept) that scores best on these
    labelled windows. Ties go to the threshold nearest 0.5."""
    labelled = windows.select(windows.labels >= 0)
    raw = predict_proba(model, labelled.inputs)[:, 1]
    smoothed, _ = rule.apply_by_night(labelled.records, labelled.minutes, raw, labelled.scored)
    smoothed, truth = smoothed[labelled.scored], labelled.labels[labelled.scored].astype(bool)
    tried = [(float(np.mean(rule.with_threshold(threshold).flags(smoothed) == truth)), -abs(threshold - 0.5),
              threshold) for threshold in candidates]
    accuracy, _, threshold = max(tried)
    return threshold, accuracy


def training_windows(config: TrainConfig, data_dir: str | os.PathLike | None,
                     progress: bool = True) -> tuple[ApneaWindows, list[dict]]:
    """The labelled windows the recipe trains on: `config.train_records`, then its noisy copies."""
    spec = model_contract(config.arch, config.arch_options).window_spec()
    train, provenance = load_windows(config.train_records, data_dir, spec, progress=progress)
    for copy in range(config.noisy_beat_copies):
        noisy, _ = load_windows(
            config.train_records, data_dir, spec, beat_noise=training_beat_noise(copy), progress=progress
        )
        train = train.concatenate(noisy)
    return train.select(train.labels >= 0), provenance


def train_apnea_teacher(
    config: TrainConfig,
    data_dir: str | os.PathLike | None,
    work_dir: str | os.PathLike,
    *,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
) -> TrainedTeacher:
    """Train on `config.train_records`, reporting validation figures each epoch if any are given."""
    if not config.train_records:
        raise ValueError("no training records given")
    contract = model_contract(config.arch, config.arch_options)
    spec = contract.window_spec()
    train, provenance = training_windows(config, data_dir, progress)
    validation = None
    if config.val_records:
        validation, val_provenance = load_windows(config.val_records, data_dir, spec, progress=progress)
        provenance += val_provenance

    def evaluate(model: nn.Module) -> dict:
        figures = score_windows(model, validation, config.decision)["minute"]
        return {"val_accuracy": figures["accuracy"], "val_roc_auc": figures["roc_auc"]}

    model, checkpoint = fit(
        config,
        train.inputs,
        train.labels,
        work_dir,
        evaluate=evaluate if validation is not None else None,
        device=device,
        resume=resume,
        progress=progress,
    )
    metrics = {"train_minutes": len(train), "train_loss": checkpoint["history"][-1]["train_loss"]}
    metrics["train_seconds"] = round(sum(epoch["seconds"] for epoch in checkpoint["history"]), 1)
    if validation is not None:
        figures = score_windows(model, validation, config.decision)
        metrics.update(
            val_accuracy=figures["minute"]["accuracy"],
            val_roc_auc=figures["minute"]["roc_auc"],
            val_nights_correct=figures["night"]["nights_correct"],
            val_nights=figures["night"]["nights"],
        )
    return TrainedTeacher(model, checkpoint, contract, provenance, metrics)


def load_teacher(artifact_dir: str | os.PathLike) -> tuple[nn.Module, dict]:
    """Model (eval mode, CPU) and its checkpoint dict from an artifact directory."""
    path = Path(artifact_dir) / CHECKPOINT_NAME
    if not path.exists():
        raise FileNotFoundError(f"{path}: no checkpoint in this artifact")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    config = checkpoint["config"]
    model = create_model(config["arch"], **config.get("arch_options", {}))
    model.load_state_dict(checkpoint["model"])
    return model.eval(), checkpoint


def evaluate_apnea_teacher(
    model: nn.Module,
    contract: InputContract,
    records: list[str],
    data_dir: str | os.PathLike | None = None,
    *,
    rule: DecisionRule,
    beat_noise: BeatNoise | None = None,
    beats: str = "annotations",
    progress: bool = True,
) -> dict:
    """Scores on every labelled minute with signal of `records` (x01-x35 by default at the CLI).

    `beat_noise` degrades the beat annotations first, to measure robustness to a worse detector;
    `beats="detector"` takes the beats from the kit's detector on the ECG instead of the .qrs.
    """
    windows, provenance = load_windows(
        records, data_dir, contract.window_spec(), beat_noise=beat_noise, beats=beats, progress=progress
    )
    unlabelled = sorted(set(windows.records[windows.labels < 0].tolist()))
    if unlabelled:
        raise ValueError(f"no labels for {', '.join(unlabelled)}: cannot score them")
    figures = score_windows(model, windows, rule)
    return {
        "records": records,
        "beats": beats,
        "decision": rule.to_dict(),
        **figures,
        "data": provenance,
    }
