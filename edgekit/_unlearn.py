"""Unlearning requests through the store: refuse unknown targets, queue in the ledger, make the
guides a request needs, run `teacher.unlearn_request` (the stochastic teacher, proven against the
teacher's recipe retrained without the data), seal the new teacher with its certificate, and mark
what was derived from the old one stale (`_pipeline.rebuild` makes it again from the new teacher).

Everything earlier requests removed from the same lineage stays out of D as well.
"""

from __future__ import annotations

import getpass
import os
import shutil
from pathlib import Path

import numpy as np
import torch

import teacher
from edgekit._ledger import Ledger, lineage_of
from edgekit._store import Artifact, ArtifactStore, code_version

GUIDE_KIND = "unlearning-guide"  # one guide: the teacher's recipe without one fold of nights
GUIDE_MODEL_DIR = "fold-0"  # where `teacher.train_guides` puts a guide's model, the only fold it is given
GUIDE_SET_KIND = "unlearning-guides"  # all of a teacher's guides in one artifact: stores made before 2026-11-30
INTERRUPTED = "interrupted: rerun the same request with --resume to keep the references it trained"


def teacher_data(config: teacher.TrainConfig, data_dir, progress: bool) -> teacher.TeacherData:
    return teacher.dataset(config.dataset).training_examples(config, data_dir, progress)


def read_samples(path: str | os.PathLike) -> list[str]:
    lines = [line.strip() for line in Path(path).read_text().splitlines()]
    samples = [line for line in lines if line and not line.startswith("#")]
    if not samples:
        raise ValueError(f"{path}: no samples listed (one per line: a03:120, or a training index)")
    return samples


def unlearn(store: ArtifactStore, teacher_ref: str, kind: str, targets: list[str], reason: str, *,
            who: str | None = None, references: int = 1, data_dir=None, test_records: list[str] | None = None,
            unlearn_config: teacher.UnlearnConfig | None = None, wait_s: float = 4 * 3600,
            resume: bool = False, progress: bool = True) -> dict:
    """Run one request; returns its ledger entry, the new teacher's id, its certificate, the
    artifacts it made stale and the lineage's teacher in service. Class requests unlearn with
    `teacher.UnlearnConfig()`; patients and Apnea-ECG samples with `teacher.PATIENT_UNLEARN` and
    the guides' targets; image samples with `teacher.SAMPLES_UNLEARN`. `resume`: the same request
    was interrupted; keep the retrained references it finished (or began) instead of starting over.
    The ledger records the rerun as a request of its own."""
    named = store.get(teacher_ref)
    if named.kind != "teacher":
        raise ValueError(f"{named.id} is a {named.kind}, not a teacher")
    if references < 1:
        raise ValueError("the certificate needs at least one retrained reference")
    targets = [str(t) for t in targets]
    ledger = Ledger(store)
    lineage = lineage_of(named)
    root_config = teacher.TrainConfig(**store.get(lineage).manifest["config"])
    data = teacher_data(root_config, data_dir, progress)
    num_classes = len(named.manifest["contract"]["labels"])
    teacher.target_mask(data, kind, targets, num_classes)  # refuse before anything is recorded
    test, score = teacher.dataset(root_config.dataset).held_out(root_config, data_dir, records=test_records,
                                                                progress=progress)
    request_id = ledger.open(lineage, kind, targets, who or getpass.getuser(), reason)
    try:
        base = store.get(ledger.start(request_id, timeout_s=wait_s))
        removed = removed_earlier(ledger, lineage, data, num_classes)
        forget = teacher.target_mask(data, kind, targets, num_classes) & ~removed
        retain = ~forget & ~removed
        guides = None
        if kind != "class" and teacher.dataset(root_config.dataset).has_patients:
            earlier = {guide.id for guide in existing_guides(store, base.id)}
            made = prepare_guides(store, base.id, nights=sorted(set(data.groups[forget])), data=data,
                                  progress=progress)
            # Training time only for the guides this request made: the others were paid for before.
            seconds = sum(guide.manifest["metrics"]["seconds"] for guide in made if guide.id not in earlier)
            guides = (made, seconds)
        artifact, certificate = _unlearn_and_prove(store, base, data, forget, retain, test, score, kind, targets,
                                                   reason, request_id, lineage, references, unlearn_config, guides,
                                                   resume, progress)
    except KeyboardInterrupt:
        ledger.fail(request_id, INTERRUPTED)
        raise
    except BaseException as error:
        ledger.fail(request_id, f"{type(error).__name__}: {error}")
        raise
    stale = ledger.finish(request_id, artifact.id, teacher.certificate_headline(certificate), certificate["verified"])
    return {"request": ledger.request(request_id), "teacher": artifact.id, "certificate": certificate,
            "stale": stale, "serving": ledger.serving_teacher(lineage)}


def removed_earlier(ledger: Ledger, lineage: str, data: teacher.TeacherData, num_classes: int) -> np.ndarray:
    """Which of the lineage's training examples earlier requests removed."""
    removed = np.zeros(len(data.keys), dtype=bool)
    for earlier_kind, earlier in ledger.forgotten(lineage).items():
        if earlier:
            removed |= teacher.target_mask(data, earlier_kind, [str(t) for t in earlier], num_classes)
    return removed


def prepare_guides(store: ArtifactStore, teacher_ref: str, *, folds: int | None = None,
                   nights: list[str] | None = None, data_dir=None, data: teacher.TeacherData | None = None,
                   progress: bool = True) -> list[Artifact]:
    """The guides of an Apnea-ECG teacher that a request for `nights` needs (every guide when None):
    each is the teacher's recipe trained on what the teacher trained on (less what earlier requests
    of its lineage removed) without one fold of nights, sealed as an artifact whose parent is the
    teacher. Guides made before are found, not made again, so a teacher's first request pays for
    the guides of its patient's folds only (one per split of the nights), not for all of them; an
    interrupted preparation resumes. `folds`: how many in each of the `teacher.GUIDE_PARTITIONS`
    splits (default `teacher.GUIDE_FOLDS`); a teacher keeps one split, which every request uses, so
    asking for another number than its guides were made with is refused. `data`: the lineage's
    `teacher_data`, when the caller has already read it."""
    base = store.get(teacher_ref)
    if base.kind != "teacher":
        raise ValueError(f"{base.id} is a {base.kind}, not a teacher")
    existing = existing_guides(store, base.id)
    if existing:
        asked = existing[0].manifest["config"]["folds_asked"]  # fewer are made when there are fewer nights
        if folds is not None and folds != asked:
            raise ValueError(f"{base.id} already has guides of a {asked}-fold split ({len(existing)} made), which "
                             f"its requests use; it keeps one split, so {folds} folds are not made")
        folds = asked
    folds = teacher.GUIDE_FOLDS if folds is None else folds
    _, checkpoint = teacher.load_teacher(base.path)
    config = teacher.TrainConfig(**checkpoint["config"])
    if not teacher.dataset(config.dataset).has_patients:
        raise ValueError(f"{base.id}: guides are for Apnea-ECG teachers, whose requests name nights; "
                         f"this one is a {config.dataset} teacher")
    lineage = lineage_of(base)
    if data is None:
        data = teacher_data(teacher.TrainConfig(**store.get(lineage).manifest["config"]), data_dir, progress)
    kept = ~removed_earlier(Ledger(store), lineage, data, len(base.manifest["contract"]["labels"]))
    kept_nights = data.groups[kept]
    # One split per teacher: the one its first guides were made with, even if a later request of
    # the lineage removed a night since (the guides still train on what is kept only).
    split = (existing[0].manifest["config"]["split"] if existing else
             teacher.guide_folds(kept_nights.tolist(), folds, teacher.GUIDE_PARTITIONS))
    made = {tuple(guide.manifest["config"]["fold"]): guide for guide in existing}
    needed = [fold for fold in split if nights is None or set(fold) & set(nights)]
    missing = [fold for fold in needed if tuple(fold) not in made]
    kept_data = data.train.select(kept) if missing else None  # a copy of the training data: only to train
    for fold in missing:
        recipe = {"teacher": base.id, "folds_asked": folds, "partitions_asked": teacher.GUIDE_PARTITIONS,
                  "fold": fold, "split": split, "train_config": config.to_dict()}
        staging = store.staging_dir(GUIDE_KIND, recipe, parents=[base.id], resume=True)
        # `edgekit guides` is not queued with requests: one may be making this guide right now.
        with store.working_alone(staging):
            sealed = [guide for guide in existing_guides(store, base.id) if guide.manifest["config"]["fold"] == fold]
            if sealed:  # made while this process waited its turn
                made[tuple(fold)] = sealed[0]
                shutil.rmtree(staging, ignore_errors=True)  # an empty one, if this process made it again
                continue
            teacher.train_guides(config, kept_data.inputs, kept_data.labels, kept_nights, [fold], staging, progress)
            # Its training time from the checkpoint: the epochs of an interrupted earlier run count too.
            seconds = teacher.trained_seconds(staging / GUIDE_MODEL_DIR)
            made[tuple(fold)] = store.commit(staging, kind=GUIDE_KIND, config=recipe, parents=[base.id],
                                             data=base.manifest.get("data", []),
                                             metrics={"seconds": round(seconds, 1)}, code_version=code_version())
    return [made[tuple(fold)] for fold in needed]


def existing_guides(store: ArtifactStore, teacher_id: str) -> list[Artifact]:
    """The guides made of the teacher so far."""
    return [child for child in store.children(teacher_id) if child.kind == GUIDE_KIND]


def load_guides(guides: list[Artifact]) -> tuple[list[torch.nn.Module], list[list[str]]]:
    """The guides' models and the fold of nights each was trained without."""
    return ([teacher.load_teacher(guide.path / GUIDE_MODEL_DIR)[0] for guide in guides],
            [guide.manifest["config"]["fold"] for guide in guides])


def _unlearn_and_prove(store: ArtifactStore, base: Artifact, data: teacher.TeacherData, forget, retain, test, score,
                       kind, targets, reason, request_id, lineage, references, unlearn_config, guides, resume,
                       progress) -> tuple[Artifact, dict]:
    model, checkpoint = teacher.load_teacher(base.path)
    config = teacher.TrainConfig(**checkpoint["config"])
    unlearn_config = unlearn_config or teacher.request_unlearn_config(kind, guided=guides is not None)
    # Named by what the request computes, not by its ledger id: a rerun of an interrupted request
    # finds the references it trained.
    work = {**teacher.config_after_request(config, kind, targets).to_dict(), "unlearning": {"kind": kind, "targets": targets, "references": references,
                                                   "config": unlearn_config.to_dict()}}
    staging = store.staging_dir("teacher", work, parents=[base.id], resume=resume)
    guide_models, guide_artifacts, guide_seconds = None, None, 0.0
    if guides is not None:
        guide_artifacts, guide_seconds = guides
        guide_models = load_guides(guide_artifacts)
    made = teacher.unlearn_request(
        model, config, data, forget, retain, test, score, kind=kind, targets=targets, references=references,
        work_dir=staging, request={"id": request_id, "reason": reason, "base_teacher": base.id, "lineage": lineage},
        teacher_history=checkpoint.get("history", []), unlearn_config=unlearn_config, guides=guide_models,
        guide_ids=[guide.id for guide in guide_artifacts] if guide_artifacts else None, guide_seconds=guide_seconds,
        progress=progress)
    certificate = made.certificate
    artifact = store.commit(
        staging, kind="teacher", config=made.config.to_dict(), parents=[base.id],
        # The nights it was made from, the forgotten patient's files no longer among them.
        data=[entry for entry in base.manifest.get("data", [])
              if not (kind == "patient" and isinstance(entry, dict) and entry.get("record") in targets)],
        metrics={"test_accuracy": certificate["models"]["unlearned"]["test_accuracy"],
                 "verified": certificate["verified"]},
        code_version=code_version(),
        extra={"contract": base.manifest["contract"],
               "unlearning": {"lineage": lineage, "request": request_id, "kind": kind, "targets": targets,
                              "config": made.unlearn_config.to_dict(), "history": made.history,
                              "guides": certificate["guides"], "certificate": teacher.certificate_headline(certificate)}})
    return artifact, certificate
