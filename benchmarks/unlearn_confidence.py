"""How sure each model is of the forgotten night, the kept nights and unseen nights (issue 6).

A threshold attack calls a minute a member when the model's loss on it is low compared with
unseen minutes, so what matters is the night's confidence relative to the rest. For one patient:
the guides (their mean, the unlearner's targets), the original M_d, the retrained references and
the unlearner under each `--unlearn` setting (JSON overrides of `teacher.PATIENT_UNLEARN`), with
the median logit margin |z1 - z0| on 3,000 kept minutes (D_r), on the unseen minutes the attack
uses and on the patient's night, the night / unseen ratio, the mean KL of the night's outputs to
the guide targets, and the threshold-attack AUC. Models come from `unlearn_patients.py`'s cache.

    EDGEKIT_DATA=../shared/data uv run python benchmarks/unlearn_confidence.py --validation --patient a10 \\
        --unlearn '{"anchor_rescale": false}' '{}'
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import numpy as np
import torch

import teacher
from teacher import to_float
from unlearn_patients import CachedRequests, MeanOfGuides, patient_figures, patient_minutes


def logits_of(model: torch.nn.Module, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(to_float(torch.as_tensor(inputs))).float()


def kl_to_targets(target_logits: torch.Tensor, logits: torch.Tensor) -> float:
    """Mean KL(targets || model) over the night: what the unlearner's anchor term pulls down."""
    p = torch.softmax(target_logits, dim=1)
    return float((torch.xlogy(p, p) - p * torch.log_softmax(logits, dim=1)).sum(dim=1).mean())


def median_margin(logits: torch.Tensor) -> float:
    return float((logits[:, 1] - logits[:, 0]).abs().median())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patient", required=True)
    parser.add_argument("--validation", action="store_true", help="the models of unlearn_patients.py --validation")
    parser.add_argument("--unlearn", nargs="+", default=["{}"], help="JSON overrides of teacher.PATIENT_UNLEARN")
    parser.add_argument("--references", type=int, default=2)
    parser.add_argument("--cache", default="runs/unlearn-patients")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    run = CachedRequests.load(args.validation, args.data_dir, args.cache)
    forget, retain = patient_minutes(run.windows, args.patient)
    targets = run.targets(forget)
    kept_sample = retain.inputs[np.random.default_rng(0).choice(len(retain), min(3000, len(retain)), replace=False)]

    patients_guides = [guide for guide, fold in zip(run.guides, run.folds) if args.patient in fold]
    models = {"guides (the targets)": MeanOfGuides(patients_guides), "original": run.original}
    for seed, model in enumerate(run.references(args.patient, retain, args.references)):
        models[f"retrained, seed {seed}"] = model
    for overrides in args.unlearn:
        models[f"unlearned {overrides}"] = run.unlearn(forget, retain, targets,
                                                       replace(teacher.PATIENT_UNLEARN, **json.loads(overrides)))

    print(f"| {args.patient}: model | median margin: D_r | unseen | the night | night / unseen | KL to targets "
          "| threshold AUC |\n|---|---|---|---|---|---|---|")
    for name, model in models.items():
        night = logits_of(model, forget.inputs)
        kept_margin = median_margin(logits_of(model, kept_sample))
        unseen_margin = median_margin(logits_of(model, run.attack_eval.inputs))
        night_margin = median_margin(night)
        kl = kl_to_targets(targets, night)
        auc = patient_figures(model, forget, run.attack_eval, run.score)["threshold_attack_auc"]
        print(f"| {name} | {kept_margin:.2f} | {unseen_margin:.2f} | {night_margin:.2f} "
              f"| {night_margin / unseen_margin:.2f} | {kl:.3f} | {auc:.3f} |", flush=True)


if __name__ == "__main__":
    main()
