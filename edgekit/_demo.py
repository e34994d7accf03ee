"""`make demo`: the main job on the embedded nights, every stage through `edgekit._pipeline` into
one runs directory, sized to show the chain working in minutes (not the benchmark figures)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

import edge_export
import student
import synth
import teacher
from edgekit import _audit, _explain, _pipeline, _unlearn
from edgekit._store import ArtifactStore

# The demo's embedded nights: eight learning-set nights of every kind (a: apnea, b: borderline,
# c: control) to train on, and one test-set night it never sees in training.
DEMO_TRAIN_RECORDS = ["a02", "a03", "a05", "a10", "a15", "b02", "c03", "c07"]
DEMO_HELD_OUT_RECORDS = ["x01"]
DEMO_EPOCHS = 12
# The stages after the teacher, sized for `make demo` to show the whole chain in about 5 minutes on 2
# CPU cores, not to reach the benchmark figures (BENCHMARKS.md has those).
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
# Torch threads for the demo: its networks are small, and on 2 shared cores a second OpenMP thread
# makes every operator wait for a descheduled one (several times slower; tests/conftest.py pins one too).
DEMO_THREADS = 1



def run_demo(out: str | os.PathLike, *, fresh: bool = True, progress: bool = True) -> dict:
    """The main job on the embedded nights: train a small apnea teacher and score a held-out night;
    synthesise a set from the teacher alone; distil a student on that set only and score it on the same
    night with its decision rule; audit how traceable the synthetic set is to the real nights.

    Then export the student as an int8 bundle for phones and replay the held-out night through it,
    and explain the flagged minute the bundle was surest of with NeuroMask. Last, a data steward's
    request removes patient a03 from the teacher, with its certificate against retraining.

    Returns the teacher's id and figures (top level, as `evaluate_teacher` gives them), then `synth`
    and `synth_metrics`, `student` and `student_figures`, the audit's report under `audit`, `bundle`
    and `bundle_metrics`, the night's `replay` summary with its `replay_plot`, the `phone` core's replay
    of the same night against it (`edge_export.compare_replays`, or `skipped` with why), the `explanation`
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
    artifact = _pipeline.train_teacher(store, config, data_dir, progress=progress)
    figures = _pipeline.evaluate_teacher(store, artifact.id, DEMO_HELD_OUT_RECORDS, data_dir, progress=progress)

    # No data directory: without the privacy term Gen{h1} reads nothing but the teacher.
    synthetic = _pipeline.synthesise(store, artifact.id, synth.SynthConfig(size=DEMO_SYNTH_SIZE), None, progress=progress)
    # The demo's data holds one test night, not x01-x35: the student is scored on the held-out night
    # by the same function, with the student's decision rule (its recipe's threshold, the teacher's smoothing).
    pupil = _pipeline.distill(store, synthetic.id, DEMO_STUDENT_ARCH, None, epochs=DEMO_STUDENT_EPOCHS, progress=progress,
                    score_on_test=False)
    student_figures = _pipeline.evaluate_teacher(store, pupil.id, DEMO_HELD_OUT_RECORDS, data_dir, progress=progress)

    audit_config = synth.AuditConfig(samples=DEMO_AUDIT_SAMPLES, epochs=DEMO_AUDIT_EPOCHS,
                                      team_size=DEMO_AUDIT_TEAM_SIZE)
    report = _audit.audit_synthetic(store, synthetic.id, data_dir, audit_config, progress=progress)

    # The phone's bundle: the student in int8, signed by the demo's own "hospital" key, and the
    # held-out night replayed through its .pte, on the server and on the phone core.
    bundle = _pipeline.export(store, pupil.id, "int8", progress=progress)
    keys = out / "keys"
    private_key, public_key = ((keys / edge_export.PRIVATE_KEY_NAME, keys / edge_export.PUBLIC_KEY_NAME)
                               if (keys / edge_export.PRIVATE_KEY_NAME).exists() else edge_export.new_signing_key(keys))
    edge_export.sign_bundle(bundle.path, private_key)
    night = DEMO_HELD_OUT_RECORDS[0]
    loaded = edge_export.load_bundle(bundle.path, public_key=public_key)
    replay = edge_export.replay_night(loaded, teacher.read_night(night, data_dir), progress=progress)
    phone = _phone_replay(bundle.path, public_key, night, data_dir, replay)
    plot = out / f"{night}-replay.png"
    edge_export.plot_night(replay, loaded.spec["decision"]["threshold"], plot)

    # Why: NeuroMask on the flagged minute the phone was surest of, drawn over its heart-rate series.
    flagged = [minute for minute, flag in enumerate(replay["flags"]) if flag]
    explained = None
    if flagged:
        minute = max(flagged, key=lambda m: replay["probability"][m])
        explanation = _explain.explain_minutes(store, pupil.id, night, [minute], data_dir=data_dir)
        figure = out / f"{night}-minute{minute}-neuromask.png"
        student.plot_minute(explanation, 0, figure)
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
        "phone": phone,
        "explanation": explained,
        "unlearning": request,
        "certificate_page": str(store.get(request["teacher"]).path / teacher.CERTIFICATE_HTML),
    }


def _phone_replay(bundle: Path, public_key: Path, night: str, data_dir: Path, server: dict) -> dict:
    """The night through the phone core (Kotlin, the real .pte in ExecuTorch's C++ runtime) against the
    server's replay; where the core is not built here, why (and what to install) instead of failing."""
    if (reason := edge_export.phone_core_missing()) is not None:
        return {"skipped": reason}
    (phone,) = edge_export.host_replays(bundle, public_key, [night], data_dir)
    return {**edge_export.compare_replays(server, phone), "minutes": phone["minutes"],
            "estimated_ahi": phone["estimated_ahi"], "severity": phone["severity"],
            "runtime_seconds": phone["runtime_seconds"]}
