"""Unlearning requests end to end: refuse unknown targets, queue in the ledger, unlearn with the
stochastic teacher, prove it against the teacher's recipe retrained without the data, seal the new
teacher with its certificate, and mark what was derived from the old one stale (`_pipeline.rebuild`
makes it again from the new teacher).

What a request removes: a patient (every minute of that night, from training and validation), a
class (every training example of it), or samples (a file, one per line: `a03:120` for minute 120
of a03, or a training-split index such as `1234` for images). Everything earlier requests removed
from the same lineage stays out of D as well.
"""

from __future__ import annotations

import base64
import getpass
import html
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

import teacher
from edgekit._ledger import Ledger, lineage_of
from edgekit._store import Artifact, ArtifactStore, code_version, write_json_atomic
from teacher._image_teacher import split_validation
from teacher._training import CHECKPOINT_NAME
from teacher._unlearn_proof import Examples

CERTIFICATE_JSON, CERTIFICATE_HTML, CERTIFICATE_PNG = "certificate.json", "certificate.html", "certificate.png"
GUIDE_KIND = "unlearning-guide"  # one guide: the teacher's recipe without one fold of nights
GUIDE_MODEL_DIR = "fold-0"  # where `teacher.train_guides` puts a guide's model, the only fold it is given
GUIDE_SET_KIND = "unlearning-guides"  # all of a teacher's guides in one artifact: stores made before 2026-11-30
RETAIN_SAMPLE = 5000  # D_r images the certificate scores (all of D_r still trains the reference)
INTERRUPTED = "interrupted: rerun the same request with --resume to keep the references it trained"


class UnknownTargetError(ValueError):
    """A request names a patient, class or sample the teacher never trained on."""


@dataclass
class TeacherData:
    """What a teacher trained on (D), with each example's key (`a03:120`, or the image's index in
    the training split) and group (its night, or its class)."""

    train: Examples
    keys: np.ndarray
    groups: np.ndarray


def teacher_data(config: teacher.TrainConfig, data_dir, progress: bool) -> TeacherData:
    if config.dataset == "apnea-ecg":
        records = config.train_records + [r for r in config.val_records if r not in config.train_records]
        train, _ = teacher.training_windows(replace(config, train_records=records), data_dir, progress)
        keys = np.array([f"{record}:{minute}" for record, minute in zip(train.records, train.minutes)])
        return TeacherData(train, keys, train.records.astype(str))
    data = teacher.load_image_dataset(config.dataset, "train", data_dir, progress=progress)
    order = torch.arange(len(data))
    kept, _ = split_validation(teacher.ImageData(data.images, order, data.classes, data.source, data.provenance),
                               config.validation_size, config.seed)
    index = kept.labels  # the training split's indices of the images the teacher trained on
    labels = data.labels[index]
    return TeacherData(Examples(data.images[index], labels), index.numpy().astype(str), labels.numpy().astype(str))


def held_out_data(config: teacher.TrainConfig, data_dir, progress: bool, test_records: list[str] | None = None):
    """(test examples, score): the score is a model's accuracy with the teacher's decision rule.
    Apnea-ECG tests on `test_records`, else the recipe's own, else x01-x35."""
    if config.dataset != "apnea-ecg":
        test = teacher.load_image_dataset(config.dataset, "test", data_dir, progress=progress)
        return Examples(test.images, test.labels), None
    spec = teacher.window_spec(teacher.model_contract(config.arch, config.arch_options))
    records = test_records or config.test_records or list(teacher.TEST_RECORDS)
    test, _ = teacher.load_windows(records, data_dir, spec, progress=progress)
    return test.select(test.labels >= 0), teacher.decision_accuracy(config)


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
    target_mask(data, kind, targets, num_classes)  # refuse before anything is recorded
    test, score = held_out_data(root_config, data_dir, progress, test_records)
    request_id = ledger.open(lineage, kind, targets, who or getpass.getuser(), reason)
    try:
        base = store.get(ledger.start(request_id, timeout_s=wait_s))
        removed = removed_earlier(ledger, lineage, data, num_classes)
        forget = target_mask(data, kind, targets, num_classes) & ~removed
        retain = ~forget & ~removed
        guides = None
        if kind != "class" and root_config.dataset == "apnea-ecg":
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
    stale = ledger.finish(request_id, artifact.id, headline(certificate), certificate["verified"])
    return {"request": ledger.request(request_id), "teacher": artifact.id, "certificate": certificate,
            "stale": stale, "serving": ledger.serving_teacher(lineage)}


def removed_earlier(ledger: Ledger, lineage: str, data: TeacherData, num_classes: int) -> np.ndarray:
    """Which of the lineage's training examples earlier requests removed."""
    removed = np.zeros(len(data.keys), dtype=bool)
    for earlier_kind, earlier in ledger.forgotten(lineage).items():
        if earlier:
            removed |= target_mask(data, earlier_kind, [str(t) for t in earlier], num_classes)
    return removed


def prepare_guides(store: ArtifactStore, teacher_ref: str, *, folds: int | None = None,
                   nights: list[str] | None = None, data_dir=None, data: TeacherData | None = None,
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
    if config.dataset != "apnea-ecg":
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


def _unlearn_and_prove(store, base: Artifact, data: TeacherData, forget, retain, test, score, kind, targets, reason,
                       request_id, lineage, references, unlearn_config, guides, resume,
                       progress) -> tuple[Artifact, dict]:
    model, checkpoint = teacher.load_teacher(base.path)
    config = teacher.TrainConfig(**checkpoint["config"])
    if kind == "patient":
        config = replace(config, train_records=[r for r in config.train_records if r not in targets],
                         val_records=[r for r in config.val_records if r not in targets])
    forget_set, retain_set = data.train.select(forget), data.train.select(retain)

    def untrained():
        return teacher.create_model(config.arch, **config.arch_options)

    if unlearn_config is None:
        unlearn_config = (teacher.UnlearnConfig() if kind == "class" else
                          teacher.PATIENT_UNLEARN if guides else teacher.SAMPLES_UNLEARN)
    # Named by what the request computes, not by its ledger id: a rerun of an interrupted request
    # finds the references it trained.
    work = {**config.to_dict(), "unlearning": {"kind": kind, "targets": targets, "references": references,
                                               "config": unlearn_config.to_dict()}}
    staging = store.staging_dir("teacher", work, parents=[base.id], resume=resume)
    reference_models, retrain_seconds = [], []
    for seed in range(references):
        reference, seconds = _fit_reference(replace(config, seed=config.seed + seed), retain_set,
                                            staging / f"reference-{seed}", progress)
        retrain_seconds.append(seconds)
        reference_models.append(reference)
    classes = [int(t) for t in targets] if kind == "class" else []
    forget_targets, guide_seconds = None, 0.0
    if guides is not None:
        guide_artifacts, guide_seconds = guides
        forget_targets = teacher.guide_targets(*load_guides(guide_artifacts), forget_set.inputs, data.groups[forget])
    runs, unlearn_seconds, history = [], [], None
    for seed in range(references):
        started = time.perf_counter()
        seeded = replace(unlearn_config, seed=unlearn_config.seed + seed)
        unlearner = teacher.StochasticTeacherUnlearner(model, untrained, seeded)
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
    certificate = teacher.certify(model, runs[0], reference_models, forget_set, retain_scored, unseen, test, seconds,
                                  score=score, unlearned_runs=runs if references >= 2 else ())
    # A guide is paid for once per teacher, not per request: kept apart from the time ratio.
    certificate["seconds"]["guides"] = guide_seconds
    certificate["guides"] = [guide.id for guide in guides[0]] if guides else None
    certificate["request"] = {"id": request_id, "kind": kind, "targets": targets, "reason": reason,
                              "base_teacher": base.id, "lineage": lineage}
    losses = {name: figures.pop("forget_loss") for name, figures in certificate["models"].items()}
    for seed in range(references):  # the references were proof, not products: only the new teacher ships
        shutil.rmtree(staging / f"reference-{seed}")
    torch.save({"model": runs[0].state_dict(), "config": config.to_dict(), "epoch": config.epochs,
                "history": checkpoint.get("history", [])}, staging / CHECKPOINT_NAME)
    write_json_atomic(staging / CERTIFICATE_JSON, certificate)
    plot_certificate(certificate, losses, staging / CERTIFICATE_PNG)
    write_certificate_html(certificate, staging / CERTIFICATE_PNG, staging / CERTIFICATE_HTML)
    unlearned_figures = certificate["models"]["unlearned"]
    artifact = store.commit(
        staging, kind="teacher", config=config.to_dict(), parents=[base.id],
        # The nights it was made from, the forgotten patient's files no longer among them.
        data=[entry for entry in base.manifest.get("data", [])
              if not (kind == "patient" and isinstance(entry, dict) and entry.get("record") in targets)],
        metrics={"test_accuracy": unlearned_figures["test_accuracy"], "verified": certificate["verified"]},
        code_version=code_version(),
        extra={"contract": base.manifest["contract"],
               "unlearning": {"lineage": lineage, "request": request_id, "kind": kind, "targets": targets,
                              "config": unlearn_config.to_dict(), "history": history, "guides": certificate["guides"],
                              "certificate": headline(certificate)}})
    return artifact, certificate


def _fit_reference(config: teacher.TrainConfig, retain_set: Examples, work_dir: Path,
                   progress: bool) -> tuple[torch.nn.Module, float]:
    """The teacher's recipe on D_r, continued from the checkpoint an interrupted attempt left in
    `work_dir` (a fresh request's staging has none). Returns the model and its training time, the
    epochs of the earlier attempt included, so that the certificate's time ratio stays true."""
    earlier = teacher.trained_seconds(work_dir)
    started = time.perf_counter()
    model, _ = teacher.fit(config, retain_set.inputs, retain_set.labels, work_dir, resume=True, progress=progress)
    return model, earlier + time.perf_counter() - started


def headline(certificate: dict) -> dict:
    """The figures the ledger keeps of a certificate."""
    models = certificate["models"]
    return {
        "verified": certificate["verified"],
        "forget_accuracy": {name: figures["forget_accuracy"] for name, figures in models.items()},
        "test_accuracy": {name: figures["test_accuracy"] for name, figures in models.items()},
        "threshold_attack_auc": {name: figures["threshold_attack_auc"] for name, figures in models.items()},
        "shadow_attack_auc": {name: figures["shadow_attack_auc"] for name, figures in models.items()},
        "time_ratio_to_retraining": certificate["time_ratio_to_retraining"],
        **({"forgetting_score": certificate["forgetting"]["score"]} if "forgetting" in certificate else {}),
    }


def guides_text(certificate: dict) -> str:
    if not certificate.get("guides"):
        return "a randomly initialised network (the stochastic teacher)"
    made = certificate["seconds"].get("guides", 0)
    trained_now = f" (trained for this request in {made:.0f} s, once per teacher)" if made else ""
    return (f"the mean outputs of guides {', '.join(certificate['guides'])}, models of the teacher's recipe each "
            f"trained without a fold of nights that holds the forgotten data{trained_now}")


def retrained_text(certificate: dict) -> str:
    """How many retrained models the "retrained" row stands for, and how far apart they are."""
    spread = certificate.get("reference_spread")  # present with two or more references
    if not spread:
        return ""
    return (f" (the mean of {certificate['references']} retrained models, which differ among themselves by up to "
            f"{100 * spread['forget_accuracy']:.2f} points on the forgotten data and "
            f"{max(spread['threshold_attack_auc'], spread['shadow_attack_auc']):.3f} in attack AUC)")


MODEL_COLOURS = {"original": "tab:red", "unlearned": "tab:blue", "retrained": "tab:green"}


def plot_certificate(certificate: dict, losses: dict, path: Path) -> None:
    """Accuracies, attack AUCs and the forgotten data's loss under each model, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    models, references = certificate["models"], certificate.get("references", 1)
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    groups = [("forget_accuracy", "forgotten"), ("retain_accuracy", "kept"), ("test_accuracy", "test")]
    for offset, (name, figures) in enumerate(models.items()):
        legend = f"retrained (mean of {references})" if name == "retrained" and references > 1 else name
        axes[0].bar(np.arange(3) + 0.27 * (offset - 1), [figures[key] for key, _ in groups], 0.27, label=legend,
                    color=MODEL_COLOURS[name])
        axes[1].bar(np.arange(2) + 0.27 * (offset - 1), [figures["threshold_attack_auc"],
                    figures["shadow_attack_auc"]], 0.27, label=legend, color=MODEL_COLOURS[name])
        axes[2].hist(np.minimum(losses[name], 10), bins=40, histtype="step", linewidth=1.6, label=legend,
                     color=MODEL_COLOURS[name])
    axes[0].set_xticks(range(3), [label for _, label in groups])
    axes[0].set_ylabel("accuracy")
    axes[0].set_ylim(0, 1)
    axes[1].set_xticks(range(2), ["loss threshold", "shadow model"])
    axes[1].axhline(0.5, color="grey", linestyle=":")
    axes[1].set_ylabel("membership attack AUC (forgotten vs unseen)")
    axes[1].set_ylim(0, 1)
    axes[2].set_xlabel("loss on the forgotten data (clipped at 10)")
    axes[2].set_ylabel("examples")
    for axis in axes:
        axis.legend(fontsize=8)
    request = certificate["request"]
    figure.suptitle(f"request {request['id']}: forget {request['kind']} {', '.join(request['targets'][:5])} - "
                    f"{'VERIFIED' if certificate['verified'] else 'NOT VERIFIED'} against retraining")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_certificate_html(certificate: dict, png: Path, path: Path) -> None:
    request, gaps = certificate["request"], certificate["gaps_to_retrained"]
    rows = "".join(
        f"<tr><td>{name}</td>" + "".join(f"<td>{figures[key]:.4f}</td>" for key in (
            "forget_accuracy", "retain_accuracy", "test_accuracy", "threshold_attack_auc", "shadow_attack_auc",
            "forget_distance_to_retrained", "test_distance_to_retrained")) + "</tr>"
        for name, figures in certificate["models"].items())
    checks = "".join(f"<li>{html.escape(name)}: {'holds' if ok else 'FAILS'}</li>"
                     for name, ok in certificate["checks"]["passed"].items())
    forgetting = certificate.get("forgetting")
    image = base64.b64encode(png.read_bytes()).decode()
    path.write_text(f"""<!doctype html><meta charset="utf-8"><title>Unlearning certificate {request['id']}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}td,th{{padding:4px 10px;text-align:right}}
table{{border-collapse:collapse}}tr:nth-child(even){{background:#f3f3f3}}</style>
<h1>Unlearning certificate: request {request['id']}</h1>
<p>Forget {html.escape(request['kind'])} <b>{html.escape(', '.join(request['targets']))}</b> from teacher
{html.escape(request['base_teacher'])}. Reason: {html.escape(request['reason'])}.</p>
<p><b>{'Verified' if certificate['verified'] else 'Not verified'}</b>: the unlearned model is compared with the
teacher's recipe retrained without the data, in the same run{retrained_text(certificate)}.</p>
<table><tr><th>model</th><th>forgotten acc.</th><th>kept acc.</th><th>test acc.</th><th>threshold attack AUC</th>
<th>shadow attack AUC</th><th>JS to retrained (forgotten)</th><th>JS to retrained (test)</th></tr>{rows}</table>
<ul>{checks}</ul>
<p>Gaps to retrained: forgotten accuracy {gaps['forget_accuracy_points']:.2f} points, attack AUC
{max(gaps['threshold_attack_auc'], gaps['shadow_attack_auc']):.3f}, test accuracy
{gaps['test_accuracy_points_below']:.2f} points below; wall time {certificate['time_ratio_to_retraining']:.1%} of
retraining ({certificate['seconds']['unlearn']:.1f} s against {certificate['seconds']['retrain']:.1f} s).
{f"Forgetting score over {forgetting['references']} references: {forgetting['score']:.3f}." if forgetting else ""}</p>
<p>Targets for the forgotten data: {html.escape(guides_text(certificate))}.</p>
<img src="data:image/png;base64,{image}" style="width:100%">
""")
