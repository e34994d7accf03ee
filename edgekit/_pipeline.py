"""Wiring: each stage's function from the packages below, sealed into an artifact of the store."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

import edge_export
import student
import synth
import teacher
from edgekit import _audit, _explain, _unlearn
from edgekit._ledger import Ledger, lineage_of
from edgekit._store import Artifact, ArtifactStore, code_version

# The demo's embedded nights: eight learning-set nights of every kind (a: apnea, b: borderline,
# c: control) to train on, and one test-set night it never sees in training.
DEMO_TRAIN_RECORDS = ["a02", "a03", "a05", "a10", "a15", "b02", "c03", "c07"]
DEMO_HELD_OUT_RECORDS = ["x01"]
DEMO_EPOCHS = 12
# The stages after the teacher, sized for `make demo` to show the whole chain within 5 minutes on 2
# shared CPU cores (measured 2026-11-30: 285-313 s for `make demo` in a fresh clone, set-up included; by
# stage, in a run before requests made only the guides they need: teacher 37 s, synthesis 11 s,
# student 13 s, audit 75 s, export 31 s, the patient request 299 s, 258 s of it for ten guides where
# it now makes two), not to reach the benchmark figures (BENCHMARKS.md has those).
DEMO_SYNTH_SIZE = 1024  # synthetic RR windows: 2 rounds of Gen{h1}'s 64 generators x 16, about 30 s
DEMO_STUDENT_ARCH = "apnea_cnn_small"
DEMO_STUDENT_EPOCHS = 20  # the apnea student recipe's; a few seconds on DEMO_SYNTH_SIZE windows
# The audit trains 7 networks on the real nights (2 team teachers, h_s and the set S, the team and
# patient identifiers) and synthesises a set per team teacher: about a minute at these settings.
DEMO_AUDIT_EPOCHS = 2  # enough for the identifiers to beat chance clearly on real minutes
DEMO_AUDIT_SAMPLES = 1024  # at least the held-out night's minutes (x01: 523), so all of them are scored
DEMO_AUDIT_TEAM_SIZE = 256  # synthetic windows per team (still one full round of Gen{h1} each)
DEMO_FORGET_PATIENT = "a03"
DEMO_FORGET_REASON = "the patient withdrew consent"
# Torch threads for the demo. Its networks are small: on 2 cores that something else also uses, a
# second OpenMP thread makes every operator wait for a descheduled thread (measured here: the demo
# teacher trained in 106 s on 2 threads, 23 s on 1; one Gen{h1} round of 16 generators took 5.9 s
# against 1.9 s). tests/conftest.py pins the tests to one thread for the same reason.
DEMO_THREADS = 1
# int8 calibration draws this many synthetic samples (balanced over classes); export first sets aside
# this many others (at most half the set) to check the .pte against the eager student on.
CALIBRATION_SAMPLES = 512
VERIFY_SAMPLES = 256
# A bundle is refused when its .pte disagrees with the eager student beyond these.
FP32_MAX_LOGIT_DIFFERENCE = 1e-3
INT8_MIN_DECISION_AGREEMENT = 0.95


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
    """The main job on the embedded nights: train a small apnea teacher and score a held-out night;
    synthesise a set from the teacher alone; distil a student on that set only and score it on the same
    night with its decision rule; audit how traceable the synthetic set is to the real nights.

    Then export the student as an int8 bundle for phones and replay the held-out night through it,
    and explain the flagged minute the bundle was surest of with NeuroMask. Last, a data steward's
    request removes patient a03 from the teacher, with its certificate against retraining.

    Returns the teacher's id and figures (top level, as `evaluate_teacher` gives them), then `synth`
    and `synth_metrics`, `student` and `student_figures`, the audit's report under `audit`, `bundle`
    and `bundle_metrics`, the night's `replay` summary with its `replay_plot`, and the `explanation`
    (minute, probability, seconds, figure; None when no minute was flagged), and the `unlearning`
    request's result (`_unlearn.unlearn`) with its `certificate_page`.
    """
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(DEMO_THREADS)
    try:
        return _run_demo(Path(out), fresh=fresh, progress=progress)
    finally:
        torch.set_num_threads(previous_threads)


def _run_demo(out: Path, *, fresh: bool, progress: bool) -> dict:
    if fresh and out.exists():
        shutil.rmtree(out)
    store = ArtifactStore(out)
    data_dir = teacher.EMBEDDED_APNEA_DIR
    config = teacher.TrainConfig(
        epochs=DEMO_EPOCHS, train_records=DEMO_TRAIN_RECORDS, test_records=DEMO_HELD_OUT_RECORDS
    )
    artifact = train_teacher(store, config, data_dir, progress=progress)
    figures = evaluate_teacher(store, artifact.id, DEMO_HELD_OUT_RECORDS, data_dir, progress=progress)

    # No data directory: without the privacy term Gen{h1} reads nothing but the teacher.
    synthetic = synthesise(store, artifact.id, synth.SynthConfig(size=DEMO_SYNTH_SIZE), None, progress=progress)
    # The demo's data holds one test night, not x01-x35: the student is scored on the held-out night
    # by the same function, with the student's decision rule (its recipe's threshold, the teacher's smoothing).
    pupil = distill(store, synthetic.id, DEMO_STUDENT_ARCH, None, epochs=DEMO_STUDENT_EPOCHS, progress=progress,
                    score_on_test=False)
    student_figures = evaluate_teacher(store, pupil.id, DEMO_HELD_OUT_RECORDS, data_dir, progress=progress)

    audit_config = _audit.AuditConfig(samples=DEMO_AUDIT_SAMPLES, epochs=DEMO_AUDIT_EPOCHS,
                                      team_size=DEMO_AUDIT_TEAM_SIZE)
    report = _audit.audit_synthetic(store, synthetic.id, data_dir, audit_config, progress=progress)

    # The phone's bundle: the student in int8, and the held-out night replayed through its .pte.
    bundle = export(store, pupil.id, "int8", progress=progress)
    night = DEMO_HELD_OUT_RECORDS[0]
    loaded = edge_export.load_bundle(bundle.path)
    replay = edge_export.replay_night(loaded, night, data_dir, progress=progress)
    plot = out / f"{night}-replay.png"
    edge_export.plot_night(replay, loaded.spec["decision"]["threshold"], plot)

    # Why: NeuroMask on the flagged minute the phone was surest of, drawn over its heart-rate series.
    flagged = [minute for minute, flag in enumerate(replay["flags"]) if flag]
    explained = None
    if flagged:
        minute = max(flagged, key=lambda m: replay["probability"][m])
        explanation = _explain.explain_minutes(store, pupil.id, night, [minute], data_dir=data_dir)
        figure = out / f"{night}-minute{minute}-neuromask.png"
        _explain.plot_minute(explanation, 0, figure)
        explained = {"minute": minute, "probability": float(explanation["probability"][0]),
                     "seconds": explanation["seconds"], "figure": str(figure)}

    # A data steward's request: patient a03 withdraws consent. The teacher is unlearned and proven
    # against its recipe retrained without a03; only if the certificate holds does the new teacher go
    # into service and what was made from the old one become stale.
    request = _unlearn.unlearn(store, artifact.id, "patient", [DEMO_FORGET_PATIENT], DEMO_FORGET_REASON,
                               who="demo", data_dir=data_dir, test_records=DEMO_HELD_OUT_RECORDS, progress=progress)
    return {
        "teacher": artifact.id,
        "runs": str(out),
        **figures,
        "synth": synthetic.id,
        "synth_metrics": synthetic.manifest["metrics"],
        "student": pupil.id,
        "student_figures": {
            **student_figures,
            "arch": pupil.manifest["config"]["arch"],
            "epochs": pupil.manifest["config"]["epochs"],
            "train_seconds": pupil.manifest["metrics"]["train_seconds"],
        },
        "audit": report,
        "bundle": bundle.id,
        "bundle_metrics": bundle.manifest["metrics"],
        "replay": {key: value for key, value in replay.items() if not isinstance(value, list)},
        "replay_plot": str(plot),
        "explanation": explained,
        "unlearning": request,
        "certificate_page": str(store.get(request["teacher"]).path / _unlearn.CERTIFICATE_HTML),
    }


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
                                             smoothing_minutes=config.smoothing_minutes,
                                             threshold=config.decision_threshold, progress=progress)
    return {"minute": figures["minute"], "night": _night_summary(figures["night"])}


def export(store: ArtifactStore, student_ref: str, quantize: str = "int8", *,
           calibration_samples: int = CALIBRATION_SAMPLES, progress: bool = True) -> Artifact:
    """A student as a phone bundle (`model.pte` + manifest), sealed as a `bundle` artifact.

    int8 is calibrated on the student's synthetic set only. Before sealing, the .pte runs in
    `executorch.runtime` on synthetic samples it was not calibrated on and must match the eager
    student (fp32: logits within FP32_MAX_LOGIT_DIFFERENCE; int8: the same decision on at least
    INT8_MIN_DECISION_AGREEMENT of them), so a model that lowers without error but answers wrongly
    never ships.
    """
    student_artifact = store.get(student_ref)
    if student_artifact.kind != "student":
        raise ValueError(f"{student_artifact.id} is a {student_artifact.kind}, not a student")
    model, checkpoint = teacher.load_teacher(student_artifact.path)
    contract = _teacher_contract(student_artifact)
    synthetic = store.get(student_artifact.manifest["parents"][0])
    data = synth.load_synthetic(synthetic.path)
    # Verification samples are set aside first (at most half of a small set), the rest calibrate.
    verify_count = min(VERIFY_SAMPLES, len(data["targets"]) // 2)
    held_out = torch.randperm(len(data["targets"]), generator=torch.Generator().manual_seed(1))[:verify_count]
    verify_inputs = data["inputs"][held_out]
    config = {"student": student_artifact.id, "quantize": quantize,
              "calibration_samples": calibration_samples if quantize == "int8" else 0}
    staging = store.staging_dir("bundle", config, parents=[student_artifact.id])
    calibration = None
    if quantize == "int8":
        remaining = torch.ones(len(data["targets"]), dtype=torch.bool)
        remaining[held_out] = False
        calibration = edge_export.calibration_samples(data["inputs"][remaining], data["targets"][remaining],
                                                      calibration_samples)
    pte = edge_export.lower_to_pte(model, contract.shape, quantize, calibration, progress=progress)
    verification = _verify_pte(pte, contract, model, verify_inputs, quantize)
    student_config = checkpoint["config"]
    spec = edge_export.write_bundle(
        staging, pte, contract, quantize=quantize,
        smoothing_minutes=student_config.get("smoothing_minutes", 0),
        threshold=student_config.get("decision_threshold", 0.5),
        lineage=[student_artifact.id, *(a.id for a in store.lineage(student_artifact.id))],
        calibration={"source": synthetic.id, "samples": len(calibration)} if calibration is not None else None)
    return store.commit(staging, kind="bundle", config=config, parents=[student_artifact.id],
                        data="none: calibrated and verified on the synthetic set only",
                        metrics={"pte_bytes": len(pte), "verification": verification},
                        code_version=code_version(), extra={"bundle": spec})


def _verify_pte(pte: bytes, contract: teacher.InputContract, model, inputs: torch.Tensor, quantize: str) -> dict:
    """The .pte in the runtime against the eager model, one input at a time as on the phone."""
    _program, method = edge_export.load_program(pte, contract)
    with torch.no_grad():
        eager = model.eval()(inputs)
    lowered = torch.cat([method.execute([sample[None].contiguous()])[0] for sample in inputs])
    figures = {"samples": len(inputs), "source": "synthetic set, not used for calibration",
               "max_logit_difference": float((lowered - eager).abs().max()),
               "decision_agreement": float((lowered.argmax(1) == eager.argmax(1)).float().mean())}
    if quantize == "none" and figures["max_logit_difference"] > FP32_MAX_LOGIT_DIFFERENCE:
        raise ValueError(f"the fp32 .pte differs from the eager student by {figures['max_logit_difference']:.2e} "
                         f"in logits (allowed {FP32_MAX_LOGIT_DIFFERENCE}): not sealed")
    if quantize == "int8" and figures["decision_agreement"] < INT8_MIN_DECISION_AGREEMENT:
        raise ValueError(f"the int8 .pte agrees with the eager student on {figures['decision_agreement']:.1%} of "
                         f"synthetic samples (needs {INT8_MIN_DECISION_AGREEMENT:.0%}): not sealed")
    return figures


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
                            calibration_samples=config["calibration_samples"] or CALIBRATION_SAMPLES).id
        else:
            raise ValueError(f"{artifact.id}: cannot rebuild a {artifact.kind}")
        made[artifact.id] = remade
        rebuilt.append((artifact.id, remade))
        ledger.rebuilt(artifact.id, remade)
    return rebuilt
