"""The stages: each one's function from the rooms below, sealed into an artifact of the store, and
the table (`STAGES`) that the CLI, `rebuild`, the demo and the benchmarks share."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

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
    reuse: bool = False,
) -> Artifact:
    """Train a teacher in a staging directory and seal it as a `teacher` artifact.

    With `resume`, a staging directory left by an interrupted run of the same configuration is
    picked up from its last epoch checkpoint. With `reuse`, a teacher already sealed with the same
    configuration is returned instead of trained again: only for callers that know it read the same
    data (the audit's team teachers), since the config names nights, not their files.
    """
    handler = teacher.dataset(config.dataset)
    if reuse and (found := store.find("teacher", config.to_dict())) is not None:
        return found
    # The data directory is not part of the identity: the file hashes in `data` are.
    staging = store.staging_dir("teacher", config.to_dict(), resume=resume)
    try:
        trained = handler.train(config, data_dir, staging, device=device, resume=resume, download=download,
                                progress=progress)
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
    records: list[str] | None,
    data_dir: str | os.PathLike | None,
    *,
    beats: str = "annotations",
    progress: bool = True,
) -> dict:
    """Score a teacher artifact on the real test data (`records` of Apnea-ECG, on their annotated or
    detected `beats`; image teachers: the test split) and record the figures in its manifest. A
    student artifact is scored the same way, with the decision rule it carries."""
    artifact = store.get(reference)
    model, checkpoint = teacher.load_teacher(artifact.path)
    config = teacher.TrainConfig(**checkpoint["config"])
    handler = teacher.dataset(config.dataset)
    figures = handler.evaluate(model, config, data_dir, records=records, beats=beats, progress=progress)
    evaluations = dict(artifact.manifest.get("evaluations", {}))
    evaluations[figures.pop("scored_on")] = handler.summary(figures)
    store.update_manifest(artifact.id, evaluations=evaluations)
    return {"artifact": artifact.id, **figures}


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
    model, checkpoint = teacher.load_teacher(parent.path)
    contract = teacher.InputContract.from_dict(parent.manifest["contract"])
    config = config.for_modality(contract.modality)
    # The teacher and the config say everything the set is made from, unless the privacy term reads
    # real data: then the data directory does too.
    if config.privacy_weight == 0 and (found := store.find("synth", config.to_dict(), [parent.id])) is not None:
        return found
    real_features = None
    if config.privacy_weight > 0:
        teacher_config = teacher.TrainConfig(**checkpoint["config"])
        real = teacher.dataset(teacher_config.dataset).real_data(teacher_config, data_dir, progress=False)
        real_features = synth.class_features(model, real.train_inputs, real.train_labels)
    staging = store.staging_dir("synth", config.to_dict(), parents=[parent.id], resume=resume)
    statistics = synth.generate(model, contract.modality, contract.shape, config, staging, resume=resume,
                                real_features=real_features, grid_hz=contract.grid_hz, progress=progress)
    metrics = {**statistics, **synth.set_statistics(synth.load_synthetic(staging), contract.labels)}
    return store.commit(staging, kind="synth", config=config.to_dict(), parents=[parent.id],
                        data="none: synthesised from the teacher alone", metrics=metrics,
                        code_version=code_version(), extra={"contract": contract.to_dict()})


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
    found = store.find("student", identity, [synthetic.id])
    if found is not None and (not score_on_test or "test" in found.manifest["metrics"]):
        return found  # the same student from the same synthetic set: distilled once
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
    contract = teacher.InputContract.from_dict(teacher_artifact.manifest["contract"])
    return store.commit(staging, kind="student", config=identity,
                        parents=[synthetic.id], data="none: trained on the synthetic set only", metrics=metrics,
                        code_version=code_version(),
                        extra={"contract": contract.to_dict(), "history": checkpoint["history"]})


def _score_on_real_test(model, config: teacher.TrainConfig, data_dir, progress: bool) -> dict:
    """Headline figures on the real test set: images' test split, or every minute of x01-x35."""
    handler = teacher.dataset(config.dataset)
    return handler.summary(handler.evaluate(model, config, data_dir, progress=progress))


def export(store: ArtifactStore, student_ref: str, quantize: str = "int8", *,
           calibration_samples: int = edge_export.CALIBRATION_SAMPLES, progress: bool = True) -> Artifact:
    """A student as a phone bundle (`model.pte` + manifest), sealed as a `bundle` artifact; the
    .pte is calibrated and verified on the student's synthetic set only (`edge_export.export`)."""
    student_artifact = store.get(student_ref)
    if student_artifact.kind != "student":
        raise ValueError(f"{student_artifact.id} is a {student_artifact.kind}, not a student")
    model, checkpoint = teacher.load_teacher(student_artifact.path)
    contract = teacher.InputContract.from_dict(student_artifact.manifest["contract"])
    synthetic = store.get(student_artifact.manifest["parents"][0])
    data = synth.load_synthetic(synthetic.path)
    config = {"student": student_artifact.id, "quantize": quantize,
              "calibration_samples": calibration_samples if quantize == "int8" else 0}
    if (found := store.find("bundle", config, [student_artifact.id])) is not None:
        return found
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


def _remake_synth(store, parent: Artifact, made_from: Artifact, data_dir, progress: bool) -> str:
    return synthesise(store, parent.id, synth.SynthConfig(**made_from.manifest["config"]), data_dir,
                      progress=progress).id


def _remake_student(store, parent: Artifact, made_from: Artifact, data_dir, progress: bool) -> str:
    config = made_from.manifest["config"]
    return distill(store, parent.id, config["arch"], data_dir, labels=config["labels"],
                   temperature=config["temperature"], epochs=config["epochs"], size=config["synthetic_samples"],
                   seed=config["seed"], progress=progress, score_on_test="test" in made_from.manifest["metrics"]).id


def _remake_bundle(store, parent: Artifact, made_from: Artifact, data_dir, progress: bool) -> str:
    config = made_from.manifest["config"]
    return export(store, parent.id, config["quantize"], progress=progress,
                  calibration_samples=config["calibration_samples"] or edge_export.CALIBRATION_SAMPLES).id


def _remake_guides(store, parent: Artifact, made_from: Artifact, data_dir, progress: bool) -> str:
    """The new teacher's guides for the nights of the old one's fold (its split differs: nights were
    forgotten, and have no guide any more), or all of them for a whole set; nothing derives from a
    guide, so several ids are recorded as one."""
    config = made_from.manifest["config"]
    guides = _unlearn.prepare_guides(store, parent.id, folds=config.get("folds_asked"), nights=config.get("fold"),
                                     data_dir=data_dir, progress=progress)
    return ",".join(guide.id for guide in guides) or "-"


@dataclass(frozen=True)
class Stage:
    """One kind of artifact: the typed config it is made with, the function that makes it from its
    parents (`run`), the kinds of its parents, and how `rebuild` makes it again from a new parent
    with the recipe recorded in the stale one (None: it is not remade, e.g. a root teacher)."""

    kind: str
    config: type | None
    run: Callable[..., Artifact | list[Artifact]]
    parents: tuple[str, ...]
    remake: Callable[[ArtifactStore, Artifact, Artifact, object, bool], str] | None = None


STAGES = {stage.kind: stage for stage in (
    Stage("teacher", teacher.TrainConfig, train_teacher, ()),
    Stage("synth", synth.SynthConfig, synthesise, ("teacher",), _remake_synth),
    Stage("student", teacher.TrainConfig, distill, ("synth",), _remake_student),
    Stage("bundle", None, export, ("student",), _remake_bundle),
    Stage(_unlearn.GUIDE_KIND, teacher.TrainConfig, _unlearn.prepare_guides, ("teacher",), _remake_guides),
    Stage(_unlearn.GUIDE_SET_KIND, teacher.TrainConfig, _unlearn.prepare_guides, ("teacher",), _remake_guides),
)}


def rebuild(store: ArtifactStore, data_dir=None, progress: bool = True) -> list[tuple[str, str]]:
    """Make every stale synthetic set, student, bundle and unlearning guide again from its lineage's
    teacher in service (parents first), with the recipe it was made with (`STAGES[kind].remake`).
    Returns (stale id, new id) pairs; a guide's new id is the comma-joined ids of the new teacher's
    guides for its nights."""
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
        stage = STAGES.get(artifact.kind)
        if stage is None or stage.remake is None:
            raise ValueError(f"{artifact.id}: cannot rebuild a {artifact.kind}")
        parent_id = artifact.manifest["parents"][0]
        parent = store.get(made.get(parent_id, parent_id))
        if parent.kind == "teacher":
            parent = store.get(ledger.serving_teacher(lineage_of(parent)))
        remade = stage.remake(store, parent, artifact, data_dir, progress)
        made[artifact.id] = remade
        rebuilt.append((artifact.id, remade))
        ledger.rebuilt(artifact.id, remade)
    return rebuilt
