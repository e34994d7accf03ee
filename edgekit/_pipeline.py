"""Wiring: each stage's function from the packages below, sealed into an artifact of the store."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

import student
import synth
import teacher
from edgekit._store import Artifact, ArtifactStore, code_version

# The demo's embedded nights: eight learning-set nights of every kind (a: apnea, b: borderline,
# c: control) to train on, and one test-set night it never sees in training.
DEMO_TRAIN_RECORDS = ["a02", "a03", "a05", "a10", "a15", "b02", "c03", "c07"]
DEMO_HELD_OUT_RECORDS = ["x01"]
DEMO_EPOCHS = 12


def train_teacher(
    store: ArtifactStore,
    config: teacher.TrainConfig,
    data_dir: str | os.PathLike | None,
    *,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    download: bool = False,
) -> Artifact:
    """Train a teacher in a staging directory and seal it as a `teacher` artifact.

    With `resume`, a staging directory left by an interrupted run of the same configuration is
    picked up from its last epoch checkpoint.
    """
    if config.dataset not in teacher.DATASETS:
        raise ValueError(f"unknown dataset {config.dataset!r}; known: {', '.join(teacher.DATASETS)}")
    # The data directory is not part of the identity: the file hashes in `data` are.
    staging = store.staging_dir("teacher", config.to_dict(), resume=resume)
    try:
        if config.dataset == "apnea-ecg":
            trained = teacher.train_apnea_teacher(
                config, data_dir, staging, device=device, resume=resume, progress=progress
            )
        else:
            trained = teacher.train_image_teacher(
                config, data_dir, staging, device=device, resume=resume, download=download, progress=progress
            )
    except BaseException:
        if not any(staging.iterdir()):  # failed before the first checkpoint: nothing to resume
            staging.rmdir()
        raise
    return store.commit(
        staging,
        kind="teacher",
        config=config.to_dict(),
        parents=[],
        data=trained.data,
        metrics=trained.metrics,
        code_version=code_version(),
        extra={"contract": trained.contract.to_dict(), "history": trained.checkpoint["history"]},
    )


def evaluate_teacher(
    store: ArtifactStore,
    reference: str,
    records: list[str],
    data_dir: str | os.PathLike | None,
    *,
    progress: bool = True,
) -> dict:
    """Score a teacher artifact on `records` (image teachers: the test split) and record the figures
    in its manifest."""
    artifact = store.get(reference)
    model, checkpoint = teacher.load_teacher(artifact.path)
    config = checkpoint["config"]
    if config["dataset"] != "apnea-ecg":
        figures = teacher.evaluate_image_teacher(model, config["dataset"], data_dir, progress=progress)
        evaluations = dict(artifact.manifest.get("evaluations", {}))
        evaluations["test"] = {key: value for key, value in figures.items() if key not in ("confusion", "data")}
        store.update_manifest(artifact.id, evaluations=evaluations)
        return {"artifact": artifact.id, **figures}
    contract = teacher.model_contract(config["arch"], config.get("arch_options"))
    figures = teacher.evaluate_apnea_teacher(
        model,
        contract,
        records,
        data_dir,
        smoothing_minutes=config["smoothing_minutes"],
        threshold=config["decision_threshold"],
        progress=progress,
    )
    evaluations = dict(artifact.manifest.get("evaluations", {}))
    evaluations[",".join(records)] = {"minute": figures["minute"], "night": _night_summary(figures["night"])}
    store.update_manifest(artifact.id, evaluations=evaluations)
    return {"artifact": artifact.id, **figures}


def _night_summary(night: dict) -> dict:
    return {key: value for key, value in night.items() if key != "per_night"}


def run_demo(out: str | os.PathLike, *, fresh: bool = True, progress: bool = True) -> dict:
    """The main job on the embedded nights: train a small apnea teacher, score a held-out night."""
    out = Path(out)
    if fresh and out.exists():
        shutil.rmtree(out)
    store = ArtifactStore(out)
    config = teacher.TrainConfig(
        epochs=DEMO_EPOCHS, train_records=DEMO_TRAIN_RECORDS, test_records=DEMO_HELD_OUT_RECORDS
    )
    artifact = train_teacher(store, config, teacher.EMBEDDED_APNEA_DIR, progress=progress)
    figures = evaluate_teacher(
        store, artifact.id, DEMO_HELD_OUT_RECORDS, teacher.EMBEDDED_APNEA_DIR, progress=progress
    )
    return {"teacher": artifact.id, "runs": str(out), **figures}


def _teacher_contract(artifact: Artifact) -> teacher.InputContract:
    contract = dict(artifact.manifest["contract"])
    contract["shape"] = tuple(contract["shape"])
    contract["labels"] = tuple(contract["labels"])
    return teacher.InputContract(**contract)


def synthesise(
    store: ArtifactStore,
    teacher_ref: str,
    config: synth.SynthConfig,
    data_dir: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
) -> Artifact:
    """Gen{h1} on a teacher artifact, sealed as a `synth` artifact whose parent is the teacher.

    Only the privacy term (`config.privacy_weight` > 0) reads real training data, on the server.
    """
    parent = store.get(teacher_ref)
    if parent.kind != "teacher":
        raise ValueError(f"{parent.id} is a {parent.kind}, not a teacher")
    model, _ = teacher.load_teacher(parent.path)
    contract = _teacher_contract(parent)
    real_features = None
    if config.privacy_weight > 0:
        real_features = _real_features(model, parent.manifest["config"], contract, data_dir)
    staging = store.staging_dir("synth", config.to_dict(), parents=[parent.id], resume=resume)
    statistics = synth.generate(model, contract.modality, contract.shape, config, staging, resume=resume,
                                real_features=real_features, progress=progress)
    synthetic = synth.load_synthetic(staging)
    counts = torch.bincount(synthetic["targets"], minlength=len(contract.labels)).tolist()
    thresholds = synthetic["thresholds"]
    metrics = {
        **statistics,
        "per_class": dict(zip(contract.labels, counts)),
        "threshold_mean": float(thresholds.mean()),
        "threshold_min": float(thresholds.min()),
        "threshold_max": float(thresholds.max()),
    }
    return store.commit(staging, kind="synth", config=config.to_dict(), parents=[parent.id],
                        data="none: synthesised from the teacher alone", metrics=metrics,
                        code_version=code_version(), extra={"contract": contract.to_dict()})


def _real_features(model, teacher_config: dict, contract: teacher.InputContract, data_dir,
                   per_class: int = 256) -> dict[int, torch.Tensor]:
    """Penultimate-layer features of up to `per_class` real training examples of each class."""
    if teacher_config["dataset"] == "apnea-ecg":
        windows, _ = teacher.load_windows(teacher_config["train_records"], data_dir, teacher.window_spec(contract),
                                          progress=False)
        inputs, labels = torch.as_tensor(windows.inputs), torch.as_tensor(windows.labels)
    else:
        data = teacher.load_image_dataset(teacher_config["dataset"], "train", data_dir, progress=False)
        inputs, labels = data.images, data.labels
    features = {}
    with torch.no_grad(), synth.penultimate_features(model.eval()) as recorded:
        for label in labels[labels >= 0].unique().tolist():
            chosen = (labels == label).nonzero().flatten()[:per_class]
            model(teacher.to_float(inputs[chosen]))
            features[label] = recorded["features"].clone()
    return features


def distill(
    store: ArtifactStore,
    synth_ref: str,
    arch: str,
    data_dir: str | os.PathLike | None,
    *,
    labels: str | None = None,
    temperature: float = 1.0,
    epochs: int | None = None,
    size: int | None = None,
    seed: int = 0,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    score_on_test: bool = True,
) -> Artifact:
    """Train a student on a synthetic set alone (its first `size` samples if given); score it and
    its teacher on the real test set (skipped with `score_on_test=False`, while settings are still
    being chosen on validation data)."""
    synthetic = store.get(synth_ref)
    if synthetic.kind != "synth":
        raise ValueError(f"{synthetic.id} is a {synthetic.kind}, not a synthetic set")
    teacher_artifact = store.get(synthetic.manifest["parents"][0])
    labels = labels or synthetic.manifest["config"]["labels"]
    config = student.student_config(teacher_artifact.manifest["config"], arch, labels=labels,
                                    temperature=temperature, epochs=epochs, seed=seed)
    identity = {**config.to_dict(), "labels": labels, "synthetic_samples": size}
    staging = store.staging_dir("student", identity, parents=[synthetic.id], resume=resume)
    model, checkpoint = student.train_student(config, synthetic.path, labels, staging, size=size, device=device,
                                              resume=resume, progress=progress)
    metrics = {"train_seconds": round(sum(epoch["seconds"] for epoch in checkpoint["history"]), 1)}
    if score_on_test:
        teacher_model, _ = teacher.load_teacher(teacher_artifact.path)
        metrics["test"] = _score_on_real_test(model, config, data_dir, progress)
        metrics["teacher_test"] = _score_on_real_test(teacher_model, config, data_dir, progress)
    contract = _teacher_contract(teacher_artifact)
    return store.commit(staging, kind="student", config=identity,
                        parents=[synthetic.id], data="none: trained on the synthetic set only", metrics=metrics,
                        code_version=code_version(),
                        extra={"contract": contract.to_dict(), "history": checkpoint["history"]})


def _score_on_real_test(model, config: teacher.TrainConfig, data_dir, progress: bool) -> dict:
    """Headline figures on the real test set: images' test split, or every minute of x01-x35."""
    if config.dataset != "apnea-ecg":
        figures = teacher.evaluate_image_teacher(model, config.dataset, data_dir, progress=progress)
        return {key: figures[key] for key in ("source", "examples", "accuracy", "per_class_accuracy")}
    contract = teacher.model_contract(config.arch, config.arch_options)
    figures = teacher.evaluate_apnea_teacher(model, contract, list(teacher.TEST_RECORDS), data_dir,
                                             smoothing_minutes=config.smoothing_minutes,
                                             threshold=config.decision_threshold, progress=progress)
    return {"minute": figures["minute"], "night": _night_summary(figures["night"])}
