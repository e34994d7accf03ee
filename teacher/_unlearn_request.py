"""One unlearning request's computation: remove a patient, class or samples from a teacher with the
stochastic teacher, and prove it against the teacher's recipe retrained without the data.

Takes arrays and models, never a store: `edgekit unlearn` (the ledger, the store, the guides'
artifacts) calls `unlearn_request` and seals what it writes into its work directory. What a request
removes: a patient (every minute of that night, from training and validation), a class (every
training example of it), or samples (`a03:120` for minute 120 of a03, or a training-split index
such as `1234` for images).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from teacher._certificate import plot_certificate, write_certificate_html
from teacher._datasets import TeacherData
from teacher._guides import guide_targets
from teacher._models import create_model
from teacher._training import CHECKPOINT_NAME, TrainConfig, fit, trained_seconds
from teacher._unlearn import PATIENT_UNLEARN, SAMPLES_UNLEARN, StochasticTeacherUnlearner, UnlearnConfig
from teacher._unlearn_proof import Examples, certify

CERTIFICATE_JSON, CERTIFICATE_HTML, CERTIFICATE_PNG = "certificate.json", "certificate.html", "certificate.png"
RETAIN_SAMPLE = 5000  # D_r images the certificate scores (all of D_r still trains the reference)


class UnknownTargetError(ValueError):
    """A request names a patient, class or sample the teacher never trained on."""


@dataclass
class UnlearnedTeacher:
    """What a request made: the new teacher (also in the work directory's checkpoint, with the
    certificate's files), its config (less a forgotten patient's nights), the unlearning settings it
    ran with, its certificate, the unlearner's history, and each certified model's loss on every
    forgotten example (what the certificate's figure plots)."""

    model: torch.nn.Module
    config: TrainConfig
    unlearn_config: UnlearnConfig
    certificate: dict
    history: list
    forget_losses: dict


def target_mask(data: TeacherData, kind: str, targets: list[str], num_classes: int) -> np.ndarray:
    """Which training examples a request removes; unknown targets are refused."""
    if kind == "patient":
        if data.keys[0].count(":") != 1:
            raise UnknownTargetError("patient requests need an Apnea-ECG teacher; image teachers have no patients")
        known = set(data.groups.tolist())
        unknown = sorted(set(targets) - known)
        if unknown:
            raise UnknownTargetError(f"unknown patient(s) {unknown}: this teacher trained on {sorted(known)}")
        return np.isin(data.groups, targets)
    if kind == "class":
        unknown = [t for t in targets if not t.isdigit() or int(t) >= num_classes]
        if unknown:
            raise UnknownTargetError(f"unknown class(es) {unknown}: this teacher has classes 0-{num_classes - 1}")
        if num_classes - len(set(int(t) for t in targets)) < 2:
            # An Apnea-ECG teacher has two classes: forgetting "apnea" or "normal" unmakes the classifier.
            raise UnknownTargetError(f"forgetting class(es) {targets} would leave this teacher fewer than two of its "
                                     f"{num_classes} classes to tell apart; to remove people or examples, name "
                                     "patients (--patient) or samples (--samples)")
        labels = np.asarray(data.train.labels)
        return np.isin(labels, [int(t) for t in targets])
    mask = np.isin(data.keys, targets)
    unknown = sorted(set(targets) - set(data.keys[mask].tolist()))
    if unknown:
        raise UnknownTargetError(f"{len(unknown)} unknown sample(s), e.g. {unknown[:3]}: not in this teacher's "
                                 f"training data (keys look like {data.keys[0]!r})")
    return mask


def config_after_request(config: TrainConfig, kind: str, targets: list[str]) -> TrainConfig:
    """The new teacher's recipe: a forgotten patient's nights leave its training and validation nights."""
    if kind != "patient":
        return config
    return replace(config, train_records=[r for r in config.train_records if r not in targets],
                   val_records=[r for r in config.val_records if r not in targets])


def request_unlearn_config(kind: str, guided: bool) -> UnlearnConfig:
    """The unlearning settings of a request: the paper's for a class, the guided ones where guides give
    the forgotten data's targets (patients, Apnea-ECG samples), else the image samples' ones."""
    return UnlearnConfig() if kind == "class" else PATIENT_UNLEARN if guided else SAMPLES_UNLEARN


def unlearn_request(model: torch.nn.Module, config: TrainConfig, data: TeacherData, forget: np.ndarray,
                    retain: np.ndarray, test: Examples, score, *, kind: str, targets: list[str], references: int,
                    work_dir: Path, request: dict, teacher_history: list, unlearn_config: UnlearnConfig | None = None,
                    guides: tuple[list[torch.nn.Module], list[list[str]]] | None = None,
                    guide_ids: list[str] | None = None, guide_seconds: float = 0.0,
                    progress: bool = True) -> UnlearnedTeacher:
    """Unlearn `forget` (a mask over `data`) from `model`, trained with `config`, and certify it.

    Trains `references` models of the teacher's recipe on the retained data (continuing any an
    interrupted run left in `work_dir`), unlearns once per reference seed with the stochastic
    teacher (`unlearn_config`; default by kind: `UnlearnConfig()` for classes, `PATIENT_UNLEARN`
    with the guides' targets, else `SAMPLES_UNLEARN`), and scores everything with `certify`.
    `guides`: (models, the fold of nights each never saw), named by `guide_ids` in the certificate, with
    the `guide_seconds` this request spent making them (kept apart from the time ratio: a guide is
    paid for once per teacher). `teacher_history`: the teacher's training history, kept in the new
    checkpoint. `score`: a model's accuracy on examples
    with the teacher's decision rule (None: plain accuracy). `request`: what the certificate names
    (id, reason, base teacher, lineage). Writes the new teacher's checkpoint and the certificate
    (json, png, html) into `work_dir`; the references were proof, not products, and are removed.
    """
    config = config_after_request(config, kind, targets)
    forget_set, retain_set = data.train.select(forget), data.train.select(retain)

    def untrained():
        return create_model(config.arch, **config.arch_options)

    unlearn_config = unlearn_config or request_unlearn_config(kind, guided=guides is not None)
    reference_models, retrain_seconds = [], []
    for seed in range(references):
        reference, seconds = _fit_reference(replace(config, seed=config.seed + seed), retain_set,
                                            work_dir / f"reference-{seed}", progress)
        retrain_seconds.append(seconds)
        reference_models.append(reference)
    classes = [int(t) for t in targets] if kind == "class" else []
    forget_targets = guide_targets(*guides, forget_set.inputs, data.groups[forget]) if guides is not None else None
    runs, unlearn_seconds, history = [], [], None
    for seed in range(references):
        started = time.perf_counter()
        seeded = replace(unlearn_config, seed=unlearn_config.seed + seed)
        unlearner = StochasticTeacherUnlearner(model, untrained, seeded)
        unlearned, run_history = unlearner.unlearn(
            torch.as_tensor(forget_set.inputs), torch.as_tensor(retain_set.inputs),
            torch.as_tensor(retain_set.labels).long(), forget_classes=classes, forget_targets=forget_targets,
            progress=progress)
        unlearn_seconds.append(time.perf_counter() - started)
        runs.append(unlearned)
        history = history or run_history
    retain_scored = retain_set
    if score is None:  # images: a sample of D_r is enough to score what was kept
        retain_scored = retain_set.select(np.sort(np.random.default_rng(0).permutation(len(retain_set))[:RETAIN_SAMPLE]))
    unseen = test
    if kind == "class":  # a forgotten class's own test images are what its training images are told from
        unseen = test.select(np.isin(np.asarray(test.labels), classes))
    seconds = {"unlearn": unlearn_seconds[0], "retrain": float(np.mean(retrain_seconds))}
    certificate = certify(model, runs[0], reference_models, forget_set, retain_scored, unseen, test, seconds,
                          score=score, unlearned_runs=runs if references >= 2 else ())
    certificate["seconds"]["guides"] = guide_seconds
    certificate["guides"] = guide_ids
    certificate["request"] = {**request, "kind": kind, "targets": targets}
    losses = {name: figures.pop("forget_loss") for name, figures in certificate["models"].items()}
    for seed in range(references):
        shutil.rmtree(work_dir / f"reference-{seed}")
    torch.save({"model": runs[0].state_dict(), "config": config.to_dict(), "epoch": config.epochs,
                "history": teacher_history}, work_dir / CHECKPOINT_NAME)
    write_certificate(certificate, losses, work_dir)
    return UnlearnedTeacher(runs[0], config, unlearn_config, certificate, history, losses)


def write_certificate(certificate: dict, losses: dict, work_dir: Path) -> None:
    """certificate.json, its figure and the page that shows both (in the new teacher's staging
    directory, which the store seals as a whole, atomically)."""
    (work_dir / CERTIFICATE_JSON).write_text(json.dumps(certificate, indent=2, default=str) + "\n")
    plot_certificate(certificate, losses, work_dir / CERTIFICATE_PNG)
    write_certificate_html(certificate, work_dir / CERTIFICATE_PNG, work_dir / CERTIFICATE_HTML)


def _fit_reference(config: TrainConfig, retain_set: Examples, work_dir: Path,
                   progress: bool) -> tuple[torch.nn.Module, float]:
    """The teacher's recipe on D_r, continued from the checkpoint an interrupted attempt left in
    `work_dir` (a fresh request's staging has none). Returns the model and its training time, the
    epochs of the earlier attempt included, so that the certificate's time ratio stays true."""
    earlier = trained_seconds(work_dir)
    started = time.perf_counter()
    model, _ = fit(config, retain_set.inputs, retain_set.labels, work_dir, resume=True, progress=progress)
    return model, earlier + time.perf_counter() - started


