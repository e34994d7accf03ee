"""Wiring: each stage's function from the packages below, sealed into an artifact of the store."""

from __future__ import annotations

import os

import torch

import edge_export
import student
import synth
import teacher
from edgekit import _unlearn
from edgekit._ledger import Ledger, lineage_of
from edgekit._store import Artifact, ArtifactStore, code_version



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
    in its manifest. A student artifact is scored the same way, with the decision rule it inherited."""
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
    rule = teacher.DecisionRule.from_dict(config["decision"])
    figures = teacher.evaluate_apnea_teacher(model, contract, records, data_dir, rule=rule, progress=progress)
    evaluations = dict(artifact.manifest.get("evaluations", {}))
    evaluations[",".join(records)] = {"minute": figures["minute"], "night": _night_summary(figures["night"])}
    store.update_manifest(artifact.id, evaluations=evaluations)
    return {"artifact": artifact.id, **figures}


def _night_summary(night: dict) -> dict:
    return {key: value for key, value in night.items() if key != "per_night"}


def _teacher_contract(artifact: Artifact) -> teacher.InputContract:
    return teacher.InputContract.from_dict(artifact.manifest["contract"])


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
    config = config.for_modality(contract.modality)
    real_features = None
    if config.privacy_weight > 0:
        real_features = _real_features(model, parent.manifest["config"], contract, data_dir)
    staging = store.staging_dir("synth", config.to_dict(), parents=[parent.id], resume=resume)
    statistics = synth.generate(model, contract.modality, contract.shape, config, staging, resume=resume,
                                real_features=real_features, grid_hz=contract.grid_hz, progress=progress)
    synthetic = synth.load_synthetic(staging)
    counts = torch.bincount(synthetic["targets"], minlength=len(contract.labels)).tolist()
    thresholds = synthetic["thresholds"][synthetic["thresholds"] > 0]  # labelled starts met no stop rule
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
        windows, _ = teacher.load_windows(teacher_config["train_records"], data_dir, contract.window_spec(),
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
    temperature: float | None = None,
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
    being chosen on validation data). Where the recipe mixes samples (`mixup`), the teacher labels
    the mixes as the student trains."""
    synthetic = store.get(synth_ref)
    if synthetic.kind != "synth":
        raise ValueError(f"{synthetic.id} is a {synthetic.kind}, not a synthetic set")
    teacher_artifact = store.get(synthetic.manifest["parents"][0])
    labels = labels or synthetic.manifest["config"]["labels"]
    config = student.student_config(teacher_artifact.manifest["config"], arch, labels=labels,
                                    temperature=temperature, epochs=epochs, seed=seed)
    identity = {**config.to_dict(), "labels": labels, "synthetic_samples": size}
    staging = store.staging_dir("student", identity, parents=[synthetic.id], resume=resume)
    teacher_model, _ = teacher.load_teacher(teacher_artifact.path)
    model, checkpoint = student.train_student(config, synthetic.path, labels, staging, size=size,
                                              teacher_model=teacher_model, device=device, resume=resume,
                                              progress=progress)
    metrics = {"train_seconds": round(sum(epoch["seconds"] for epoch in checkpoint["history"]), 1)}
    if score_on_test:
        metrics["test"] = _score_on_real_test(model, config, data_dir, progress)
        # The teacher with its own decision rule: a student may have its own threshold.
        teacher_config = teacher.TrainConfig(**teacher_artifact.manifest["config"])
        metrics["teacher_test"] = _score_on_real_test(teacher_model, teacher_config, data_dir, progress)
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
                                             rule=config.decision, progress=progress)
    return {"minute": figures["minute"], "night": _night_summary(figures["night"])}


def export(store: ArtifactStore, student_ref: str, quantize: str = "int8", *,
           calibration_samples: int = edge_export.CALIBRATION_SAMPLES, progress: bool = True) -> Artifact:
    """A student as a phone bundle (`model.pte` + manifest), sealed as a `bundle` artifact; the
    .pte is calibrated and verified on the student's synthetic set only (`edge_export.export`)."""
    student_artifact = store.get(student_ref)
    if student_artifact.kind != "student":
        raise ValueError(f"{student_artifact.id} is a {student_artifact.kind}, not a student")
    model, checkpoint = teacher.load_teacher(student_artifact.path)
    contract = _teacher_contract(student_artifact)
    synthetic = store.get(student_artifact.manifest["parents"][0])
    data = synth.load_synthetic(synthetic.path)
    config = {"student": student_artifact.id, "quantize": quantize,
              "calibration_samples": calibration_samples if quantize == "int8" else 0}
    staging = store.staging_dir("bundle", config, parents=[student_artifact.id])
    exported = edge_export.export(model, contract, data["inputs"], data["targets"], quantize,
                                  calibration_samples=calibration_samples, progress=progress)
    spec = edge_export.write_bundle(
        staging, exported.pte, contract, quantize=quantize,
        decision=teacher.TrainConfig(**checkpoint["config"]).decision,
        lineage=[student_artifact.id, *(a.id for a in store.lineage(student_artifact.id))],
        calibration=({"source": synthetic.id, "samples": exported.calibration_count}
                     if exported.calibration_count else None))
    return store.commit(staging, kind="bundle", config=config, parents=[student_artifact.id],
                        data="none: calibrated and verified on the synthetic set only",
                        metrics={"pte_bytes": len(exported.pte), "verification": exported.verification},
                        code_version=code_version(), extra={"bundle": spec})


def rebuild(store: ArtifactStore, data_dir=None, progress: bool = True) -> list[tuple[str, str]]:
    """Make every stale synthetic set, student, bundle and unlearning guide again from its lineage's
    teacher in service (parents first), with the recipe it was made with. Returns (stale id, new id)
    pairs; a guide's new id is the comma-joined ids of the new teacher's guides for its nights."""
    ledger = Ledger(store)
    # Replacements made by earlier rebuilds too, so a student finds the synthetic set already remade.
    made = {entry["artifact"]: entry["rebuilt_as"] for entry in ledger.stale(include_rebuilt=True)
            if entry["rebuilt_as"] not in (None, "-")}
    rebuilt: list[tuple[str, str]] = []
    for entry in ledger.stale():
        artifact = store.get(entry["artifact"])
        if artifact.kind == "teacher":  # a teacher that failed verification: nothing to make again
            ledger.rebuilt(artifact.id, "-")
            continue
        parent_id = artifact.manifest["parents"][0]
        parent = store.get(made.get(parent_id, parent_id))
        if parent.kind == "teacher":
            parent = store.get(ledger.serving_teacher(lineage_of(parent)))
        config = artifact.manifest["config"]
        if artifact.kind == "synth":
            remade = synthesise(store, parent.id, synth.SynthConfig(**config), data_dir, progress=progress).id
        elif artifact.kind == "student":
            remade = distill(store, parent.id, config["arch"], data_dir, labels=config["labels"],
                             temperature=config["temperature"], epochs=config["epochs"],
                             size=config["synthetic_samples"], seed=config["seed"], progress=progress,
                             score_on_test="test" in artifact.manifest["metrics"]).id
        elif artifact.kind in (_unlearn.GUIDE_KIND, _unlearn.GUIDE_SET_KIND):
            # The new teacher's guides for the nights of the old one's fold (its split differs: nights
            # were forgotten, and have no guide any more), or all of them for a whole set; nothing
            # derives from a guide, so several ids are recorded as one.
            guides = _unlearn.prepare_guides(store, parent.id, folds=config.get("folds_asked"),
                                             nights=config.get("fold"), data_dir=data_dir, progress=progress)
            remade = ",".join(guide.id for guide in guides) or "-"
        elif artifact.kind == "bundle":
            remade = export(store, parent.id, config["quantize"], progress=progress,
                            calibration_samples=config["calibration_samples"] or edge_export.CALIBRATION_SAMPLES).id
        else:
            raise ValueError(f"{artifact.id}: cannot rebuild a {artifact.kind}")
        made[artifact.id] = remade
        rebuilt.append((artifact.id, remade))
        ledger.rebuilt(artifact.id, remade)
    return rebuilt
