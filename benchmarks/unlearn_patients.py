"""Forgetting a patient of the Apnea-ECG teacher, proven against retraining (issue 6).

Trains the original teacher with the shipped recipe on the training nights, then for each patient
runs the request `edgekit unlearn --patient` runs, `teacher.unlearn_request`: every minute of that
night (D_f) removed, the teacher's recipe retrained on the other nights as the reference
(`--references K` trains K of them, with K unlearned runs, for the forgetting score), the
stochastic teacher (`teacher.PATIENT_UNLEARN`) holding D_f at the guides' targets
(`teacher.train_guides`: the recipe trained once without each fold of nights, timed apart as a
one-off), and `teacher.certify`. Beside it, in the same run: the baselines fine-tune, NegGrad+,
bad teaching and the stochastic teacher with a random M_s (this kit's earlier patient setting,
without guides), scored the certificate's way: per-minute accuracy with the teacher's decision
rule on the patient's night and on the unseen nights, the loss-threshold attack's AUC on the
patient's minutes against unseen minutes, and wall time against retraining.

With two or more references the certificate measures its gaps to their mean and reports their
spread, the floor under any gap; the run also keeps the gaps to the first reference alone (the
earlier protocol) and the forgetting score.

`--guides-apart` makes the guides with `teacher.guide_folds(apart=True)` (cached apart from the
default guides): later partitions change each night's fold-mates as far as they can.
`--guide-folds k` splits the nights into k folds instead of `teacher.GUIDE_FOLDS` (cached apart):
more folds, fewer fold-mates missed with the patient, each guide closer to a retraining.

`--validation` trains on the learning nights minus the validation nights and treats those as the
unseen nights: settings are chosen there (`--unlearn` overrides `teacher.PATIENT_UNLEARN`).
Without it, all 35 learning nights train and x01-x35 are the unseen nights, scored once. Models
are cached in --cache, so an interrupted run resumes; a request starts from its cached references
(the request's own resume path), so its retraining time is the references' checkpointed time.

    EDGEKIT_DATA=../shared/data uv run python benchmarks/unlearn_patients.py --validation --patients a05 b03 c02
    EDGEKIT_DATA=../shared/data uv run python benchmarks/unlearn_patients.py --patients a03 a11 a19 b02 c04 --references 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import teacher
from _results import append_json_line
from teacher import certify, halves, per_example_loss, threshold_attack_auc


def run_data(validation: bool, data_dir):
    """(split, the teacher's config, what it trains on, the unseen nights' labelled windows, the
    decision rule's accuracy), as `edgekit unlearn` loads them (`teacher.dataset`): the learning
    nights minus the validation nights, which are the unseen ones, with `validation`; else all 35
    learning nights, and x01-x35 unseen."""
    split = teacher.official_split(0 if validation else None)
    config = teacher.TrainConfig(train_records=split["train"])
    apnea = teacher.dataset(config.dataset)
    data = apnea.training_examples(config, data_dir)
    unseen, score = apnea.held_out(config, data_dir, records=split["val"] if validation else split["test"])
    return split, config, data, unseen, score


def patient_figures(model, forget, attack_eval, score) -> dict:
    """How `model` reads the patient's minutes `forget`: accuracy with the decision rule `score`,
    the threshold attack's AUC against the unseen minutes `attack_eval`, and the mean loss."""
    return {"forget_accuracy": score(model, forget),
            "threshold_attack_auc": threshold_attack_auc(model, (forget.inputs, forget.labels),
                                                         (attack_eval.inputs, attack_eval.labels)),
            "forget_mean_loss": float(per_example_loss(model, forget.inputs, forget.labels).mean())}


def trained(config: teacher.TrainConfig, windows, work: Path):
    """(model, training seconds) of `config` on `windows`, resumed from `work` when cached."""
    model, checkpoint = teacher.fit(config, windows.inputs, windows.labels, work, resume=True, progress=False)
    return model, sum(epoch["seconds"] for epoch in checkpoint["history"])


def patient_minutes(windows, patient: str) -> tuple:
    """(forget, retain): every minute of the patient's night, and the training minutes left."""
    forget_mask = windows.records == patient
    return windows.select(forget_mask), windows.select(~forget_mask)


def references_without(config: teacher.TrainConfig, patient: str, retain, cache: Path, count: int) -> list[tuple]:
    """(model, training seconds) of the teacher's recipe retrained without the patient, seeds
    0..count-1, resumed from `cache` (trained and cached where missing)."""
    kept, _ = teacher.leave_patients_out(config.train_records, [patient])
    return [trained(replace(config, train_records=kept, seed=seed), retain, cache / f"retrained-{patient}-seed{seed}")
            for seed in range(count)]


def cached_guides(config: teacher.TrainConfig, windows, cache: Path, partitions: int, apart: bool, progress: bool,
                  k: int = teacher.GUIDE_FOLDS) -> tuple[list[list[str]], list[torch.nn.Module], Path]:
    """(folds, guides, their directory): the product's guides of `config`'s training nights, trained
    or resumed in `cache` (apart folds, and other fold counts, in directories of their own; a split
    with fewer partitions is the first folds of one with more, so they share a directory)."""
    folds = teacher.guide_folds(config.train_records, k=k, partitions=partitions, apart=apart)
    guide_dir = cache / ("guides" + ("" if k == teacher.GUIDE_FOLDS else f"-k{k}") + ("-apart" if apart else ""))
    guides = teacher.train_guides(config, windows.inputs, windows.labels, windows.records, folds, guide_dir,
                                  progress=progress)
    return folds, guides, guide_dir


@dataclass
class CachedRequests:
    """What a study of one teacher's patient requests starts from, out of `unlearn_patients.py`'s
    cache: the data (`run_data`), the unseen minutes the certificate's attacks score against, the
    original teacher, the product's guides and the decision rule's accuracy."""

    split: dict
    config: teacher.TrainConfig
    windows: object
    unseen: object
    attack_eval: object
    cache: Path
    original: torch.nn.Module
    folds: list[list[str]]
    guides: list[torch.nn.Module]
    score: object

    @classmethod
    def load(cls, validation: bool, data_dir, cache_root: str) -> "CachedRequests":
        split, config, data, unseen, score = run_data(validation, data_dir)
        _, attack_eval = halves(unseen)
        cache = Path(cache_root) / ("validation" if validation else "test")
        original, _ = trained(config, data.train, cache / "original")
        folds, guides, _ = cached_guides(config, data.train, cache, teacher.GUIDE_PARTITIONS, False, progress=False)
        return cls(split, config, data.train, unseen, attack_eval, cache, original, folds, guides, score)

    def references(self, patient: str, retain, count: int) -> list[torch.nn.Module]:
        """The cached references of `references_without`, seeds 0..count-1."""
        return [model for model, _ in references_without(self.config, patient, retain, self.cache, count)]

    def targets(self, forget) -> torch.Tensor:
        """The product's guide targets for the patient's minutes (`teacher.guide_targets`)."""
        return teacher.guide_targets(self.guides, self.folds, forget.inputs, forget.records)

    def unlearn(self, forget, retain, targets, config: teacher.UnlearnConfig = teacher.PATIENT_UNLEARN):
        """The model a request for `forget`'s night gives, holding it at `targets`."""
        model, _ = teacher.StochasticTeacherUnlearner(
            self.original, lambda: teacher.create_model(self.config.arch, **self.config.arch_options), config).unlearn(
            torch.as_tensor(forget.inputs), torch.as_tensor(retain.inputs), torch.as_tensor(retain.labels).long(),
            forget_targets=targets, progress=False)
        return model


class MeanOfGuides(torch.nn.Module):
    """The guides that never saw a patient as one model (log of their mean probabilities): the
    targets the unlearner holds the patient's minutes at, as `teacher.guide_targets` makes them."""

    def __init__(self, guides: list[torch.nn.Module]):
        super().__init__()
        self.guides = torch.nn.ModuleList(guides)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.stack([guide(inputs).softmax(-1) for guide in self.guides]).mean(0).log()


def random_teacher(original, untrained, forget_inputs, retain_inputs, retain_labels):
    """(model, seconds) of the stochastic teacher with a random M_s, as this kit first set it for
    patients (`teacher.SAMPLES_UNLEARN`: 1 of 5 patients verified on x01-x35)."""
    started = time.perf_counter()
    model, _ = teacher.StochasticTeacherUnlearner(original, untrained, teacher.SAMPLES_UNLEARN).unlearn(
        forget_inputs, retain_inputs, retain_labels, progress=False)
    return model, time.perf_counter() - started


def request(original, config: teacher.TrainConfig, data, unseen, score, patient: str, references: int,
            unlearn_config: teacher.UnlearnConfig, guides, cache: Path) -> teacher.UnlearnedTeacher:
    """`teacher.unlearn_request` for the patient, as `edgekit unlearn --patient` runs it, from the
    references cached in `cache` (copied where the request resumes them, since it removes its own)."""
    work = cache / f"request-{patient}"
    shutil.rmtree(work, ignore_errors=True)
    for seed in range(references):
        shutil.copytree(cache / f"retrained-{patient}-seed{seed}", work / f"reference-{seed}")
    forget = teacher.target_mask(data, "patient", [patient], num_classes=2)
    return teacher.unlearn_request(original, config, data, forget, ~forget, unseen, score, kind="patient",
                                   targets=[patient], references=references, work_dir=work,
                                   request={"id": f"benchmark-{patient}", "reason": "unlearn_patients.py",
                                            "base_teacher": "the cached original", "lineage": None}, teacher_history=[],
                                   unlearn_config=unlearn_config, guides=guides, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", nargs="+", required=True)
    parser.add_argument("--validation", action="store_true", help="choose settings: validation nights are unseen")
    parser.add_argument("--references", type=int, default=1, help="retrained references (and unlearned runs)")
    parser.add_argument("--unlearn", default="{}", help="JSON overrides of teacher.PATIENT_UNLEARN")
    parser.add_argument("--no-baselines", action="store_true", help="the stochastic teacher only (settings sweeps)")
    parser.add_argument("--guide-partitions", type=int, default=teacher.GUIDE_PARTITIONS,
                        help="splits of the nights into folds, one guide per fold (default: the product's)")
    parser.add_argument("--guide-folds", type=int, default=teacher.GUIDE_FOLDS,
                        help="folds per split (default: the product's)")
    parser.add_argument("--guides-apart", action="store_true",
                        help="later splits hold out together as few earlier fold-mates as they can (guide_folds apart)")
    parser.add_argument("--cache", default="runs/unlearn-patients")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None)
    parser.add_argument("--append", default=None,
                        help="also append one line (settings and each model's headline figures) to this JSON-lines file")
    args = parser.parse_args()
    if args.references < 1:
        parser.error("--references must be at least 1: the certificate measures against retrained models")

    split, config, data, unseen, score = run_data(args.validation, args.data_dir)
    windows = data.train
    unseen_records = split["val"] if args.validation else split["test"]
    mode = "validation" if args.validation else "test"
    cache = Path(args.cache) / mode
    original, original_seconds = trained(config, windows, cache / "original")
    unlearn_config = replace(teacher.PATIENT_UNLEARN, **json.loads(args.unlearn))
    # The product's guides (`teacher.guide_folds`): `--guide-partitions` splits of the nights into folds.
    started = time.perf_counter()
    folds, guides, guide_dir = cached_guides(config, windows, cache, args.guide_partitions, args.guides_apart,
                                             progress=True, k=args.guide_folds)
    guide_seconds = [teacher.trained_seconds(guide_dir / f"fold-{j}") for j in range(len(folds))]
    print(f"guides: {len(folds)} ({args.guide_partitions} partitions of {args.guide_folds} folds), "
          f"{sum(guide_seconds):.0f} s of training ({time.perf_counter() - started:.0f} s this run)", flush=True)

    def untrained():
        return teacher.create_model(config.arch, **config.arch_options)

    _, attack_eval = halves(unseen)  # the unseen minutes the certificate's attacks are scored on
    rows = []
    for patient in tqdm(args.patients, desc="patients", unit="patient"):
        forget, retain = patient_minutes(windows, patient)
        references, retrain_seconds = map(list, zip(*references_without(config, patient, retain, cache,
                                                                        args.references)))
        made = request(original, config, data, unseen, score, patient, args.references, unlearn_config,
                       (guides, folds), cache)
        certificate = made.certificate
        for name, figures in certificate["models"].items():
            figures["forget_mean_loss"] = float(np.mean(made.forget_losses[name]))
        forget_inputs = torch.as_tensor(forget.inputs)
        retain_inputs, retain_labels = torch.as_tensor(retain.inputs), torch.as_tensor(retain.labels).long()
        retraining = certificate["seconds"]["retrain"]
        baseline = teacher.BaselineConfig()
        forget_labels = torch.as_tensor(forget.labels).long()
        baselines = {} if args.no_baselines else {
            "finetune": teacher.finetune(original, retain_inputs, retain_labels, baseline),
            "neggrad+": teacher.neggrad_plus(original, forget_inputs, forget_labels, retain_inputs, retain_labels,
                                             baseline),
            "bad_teacher": teacher.bad_teacher(original, untrained, forget_inputs, retain_inputs, baseline),
            "random_teacher": random_teacher(original, untrained, forget_inputs, retain_inputs, retain_labels),
        }

        def on_the_patient(model) -> dict:
            return patient_figures(model, forget, attack_eval, score)

        # How the guides read the patient: what the unlearned model is held at, a proxy for retraining.
        guide_row = on_the_patient(MeanOfGuides([guide for guide, fold in zip(guides, folds) if patient in fold]))
        baseline_rows = {name: {**on_the_patient(model), "test_accuracy": score(model, unseen),
                                "time_ratio_to_retraining": seconds / retraining}
                         for name, (model, seconds) in baselines.items()}
        # The earlier protocol: the gaps to the first reference alone.
        to_first = None
        if len(references) >= 2:
            to_first = certify(original, made.model, references[:1], forget, retain, unseen, unseen,
                               {"unlearn": certificate["seconds"]["unlearn"], "retrain": retrain_seconds[0]},
                               score=score)
            to_first = {"gaps": to_first["gaps_to_retrained"], "passed": to_first["checks"]["passed"]}
        row = {"patient": patient, "forget_minutes": len(forget), "certificate": certificate, "guide": guide_row,
               "baselines": baseline_rows, "to_first_reference": to_first, "retrain_seconds": retrain_seconds,
               "unlearn_seconds": certificate["seconds"]["unlearn"], "history": made.history}
        rows.append(row)
        tqdm.write(json.dumps({"patient": patient, "verified": certificate["verified"],
                               "gaps": certificate["gaps_to_retrained"],
                               "reference_spread": certificate.get("reference_spread"),
                               "forgetting": certificate.get("forgetting")}))

    result = {"mode": mode, "unseen_records": unseen_records, "train_config": config.to_dict(),
              "unlearn_config": unlearn_config.to_dict(), "baseline_config": teacher.BaselineConfig().to_dict(),
              "original_seconds": round(original_seconds, 1),
              "guides": {"folds": folds, "seconds": guide_seconds, "partitions": args.guide_partitions,
                         "k": args.guide_folds, "apart": args.guides_apart},
              "threads": torch.get_num_threads(), "patients": rows}
    if args.json or not args.append:  # a settings sweep (--append) leaves the reported runs' files alone
        path = Path(args.json or f"benchmarks/results/unlearn_patients_{mode}.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    if args.append:
        headline = ("forget_accuracy", "test_accuracy", "threshold_attack_auc", "forget_mean_loss")
        append_json_line(args.append, {
            "mode": mode, "unlearn": json.loads(args.unlearn), "unlearn_config": unlearn_config.to_dict(),
            "guide_partitions": args.guide_partitions, "guide_folds": args.guide_folds,
            "guides_apart": args.guides_apart,
            "patients": {row["patient"]: {**{name: {key: figures[key] for key in headline}
                                             for name, figures in row["certificate"]["models"].items()},
                                          "guide": row["guide"]}
                         for row in rows}})
    print("\n| patient | model | forget acc | unseen acc | threshold AUC | shadow AUC | JS to retrained (D_f) "
          "| time / retraining |\n|---|---|---|---|---|---|---|---|")
    for row in rows:
        certificate = row["certificate"]
        for name, figures in certificate["models"].items():
            ratio = {"unlearned": certificate["time_ratio_to_retraining"], "retrained": 1.0}.get(name)
            print(f"| {row['patient']} | {name} | {figures['forget_accuracy']:.2%} | {figures['test_accuracy']:.2%} "
                  f"| {figures['threshold_attack_auc']:.3f} | {figures['shadow_attack_auc']:.3f} "
                  f"| {figures['forget_distance_to_retrained']:.4f} | {'' if ratio is None else f'{ratio:.3f}'} |")
        for name, figures in row["baselines"].items():
            print(f"| {row['patient']} | {name} | {figures['forget_accuracy']:.2%} | {figures['test_accuracy']:.2%} "
                  f"| {figures['threshold_attack_auc']:.3f} | | | {figures['time_ratio_to_retraining']:.3f} |")


if __name__ == "__main__":
    main()
