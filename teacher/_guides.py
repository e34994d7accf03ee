"""Guides for forgetting patients: the teacher's recipe trained k times, each time without one
fold of nights (issue 6).

A model retrained without patient p still reads p's minutes well, because it generalises; the
unlearned model should read them the same way, not at chance. What such a model says about p is
known only by training one without p, which is what unlearning avoids doing per request. Guides
pay for it once per teacher: k models (k = 5: each about 4/5 of a training), the one whose fold
holds p never saw p, and its outputs on p's minutes are the unlearner's `forget_targets`.

One guide is one draw of a model without p, and two retrained models differ on p's minutes by
points (3.9 on a03): the unlearned model matched its guide, and missed the reference by the guide's
own distance. So the nights are split into folds several ways (partitions), and p's targets are the
mean of the guides of every partition that never saw p (BENCHMARKS.md: 9 of 9 patient checks on
validation nights with 2 partitions, 7 of 9 with one).
"""

from __future__ import annotations

import copy
import os
from dataclasses import replace
from itertools import combinations
from pathlib import Path

import numpy as np
import torch
from torch import nn

from teacher._apnea import leave_nights_out_folds
from teacher._training import TrainConfig, fit, make_optimizer, predict_proba, restores_global_rng, train_one_epoch

GUIDE_FOLDS = 5
GUIDE_PARTITIONS = 2
APART_CANDIDATES = 200  # random splits `guide_folds(apart=True)` chooses each later partition from


def guide_folds(nights: list[str], k: int = GUIDE_FOLDS, partitions: int = GUIDE_PARTITIONS,
                apart: bool = False) -> list[list[str]]:
    """The folds of `partitions` different splits of the nights, one after the other: each split
    has k folds of whole nights (fewer when there are fewer nights), each kind (a, b, c) dealt out.
    A split that repeats an earlier one is skipped (few nights leave few ways to split them).

    apart: each split after the first is, of APART_CANDIDATES random ones, the one that holds out
    together the fewest pairs of nights an earlier split already held out together. A guide's
    reading of a patient also carries the absence of the patient's fold-mates (a03's two guides both
    missed b05, which alone moves a03's reading by 4.6 points: BENCHMARKS.md, "Guide by guide"), so
    partitions that change the fold-mates average that out instead of repeating it. Not the
    default: on validation nights it did no better (BENCHMARKS.md, "Apart partitions and drawn
    targets")."""
    nights = sorted(set(nights))
    splits: list[set[frozenset[str]]] = []
    folds: list[list[str]] = []
    held_together: set[frozenset[str]] = set()
    for seed in range(partitions):
        tries = APART_CANDIDATES if apart and splits else 1
        candidates = [leave_nights_out_folds(min(k, len(nights)), seed=seed + partitions * attempt, records=nights)
                      for attempt in range(tries)]
        split = min(candidates, key=lambda candidate: len(_pairs(candidate) & held_together))
        as_sets = {frozenset(fold) for fold in split}
        if as_sets not in splits:
            splits.append(as_sets)
            folds += split
            held_together |= _pairs(split)
    return folds


def _pairs(split: list[list[str]]) -> set[frozenset[str]]:
    """Every pair of nights that share a fold of `split`."""
    return {frozenset(pair) for fold in split for pair in combinations(fold, 2)}


def train_guides(config: TrainConfig, inputs, labels, nights, folds: list[list[str]], work_dir: str | os.PathLike,
                 progress: bool = True) -> list[nn.Module]:
    """One model of `config` per fold, trained on the examples whose night is outside it, in
    `work_dir/fold-{j}` (an interrupted run resumes)."""
    nights = np.asarray(nights)
    guides = []
    for j, fold in enumerate(folds):
        outside = ~np.isin(nights, fold)
        fold_config = replace(config, train_records=[r for r in config.train_records if r not in fold],
                              val_records=[r for r in config.val_records if r not in fold])
        model, _ = fit(fold_config, inputs[outside], labels[outside], Path(work_dir) / f"fold-{j}", resume=True,
                       progress=progress)
        guides.append(model.eval())
    return guides


def guide_targets(guides: list[nn.Module], folds: list[list[str]], inputs, nights,
                  draw_seed: int | None = None) -> torch.Tensor:
    """Log-probabilities for each example: the mean probabilities of the guides that never saw its
    night, one per partition (softmax of them gives back that mean, so they serve as the
    unlearner's target logits).

    draw_seed: instead of the mean, each example takes the probabilities of one of those guides,
    drawn at random. A mean of models reads a night better than any one model does (it averages
    away each model's confident mistakes), while the reference it is measured against is one
    model; a draw keeps each minute a single model's output and still spreads a night's minutes
    over every partition's guide. Not the default: on validation nights it did no better
    (BENCHMARKS.md, "Apart partitions and drawn targets").

    Raises:
        ValueError: no examples, or a night in no fold (the guides were made for other data).
    """
    nights = np.asarray(nights)
    if len(nights) == 0:
        raise ValueError("no examples to make guide targets for")
    unguided = sorted(set(nights.tolist()) - {night for fold in folds for night in fold})
    if unguided:
        raise ValueError(f"no guide was trained without night(s) {unguided}: the guides belong to other data")
    outputs = []  # (examples of the guide's fold, their probabilities) per guide
    for guide, fold in zip(guides, folds):
        inside = np.flatnonzero(np.isin(nights, fold))
        if len(inside):
            outputs.append((inside, torch.as_tensor(predict_proba(guide, inputs[inside]))))
    total = torch.zeros(len(nights), outputs[0][1].shape[1])
    if draw_seed is None:
        count = torch.zeros(len(nights))
        for inside, probabilities in outputs:
            total[inside] += probabilities
            count[inside] += 1
        return torch.log((total / count[:, None]).clamp_min(1e-12))
    # Reservoir draw: the j-th guide that holds an example replaces its pick with chance 1/j.
    rng = np.random.default_rng(draw_seed)
    count = np.zeros(len(nights))
    for inside, probabilities in outputs:
        count[inside] += 1
        replace_pick = rng.random(len(inside)) < 1 / count[inside]
        total[inside[replace_pick]] = probabilities[torch.as_tensor(replace_pick)]
    return torch.log(total.clamp_min(1e-12))


@restores_global_rng
def complete_guides(guides: list[nn.Module], folds: list[list[str]], needed_nights, config: TrainConfig,
                    retain_inputs, retain_labels, retain_nights, epochs: int = 1, lr: float = 1e-3,
                    seed: int = 0) -> list[nn.Module]:
    """The guides whose fold holds one of `needed_nights`, each given back what the retained data
    D_r holds of its fold; the other guides as they are.

    A guide missed its whole fold, not only the forgotten night, and what it makes of the night
    carries those absences too (a03's two guides both missed b05, which alone moves a03's reading by
    4.6 points: BENCHMARKS.md, "Guide by guide"). A model retrained without the night saw them all.
    So a copy of the guide trains `epochs` passes over D_r's minutes of its fold, each batch half
    of them and half replayed from the nights it did see (so that it does not drift to its
    fold-mates), at `lr` annealed to zero, with the recipe's optimizer and loss. Nothing forgotten
    is used: the data are D_r's. Not the default: on validation nights the completed targets were
    no closer to retraining and the unlearned models failed the attack check on 4 of 6 patients
    (BENCHMARKS.md, "Guides given back their fold-mates")."""
    retain_nights = np.asarray(retain_nights)
    retain_inputs, retain_labels = torch.as_tensor(retain_inputs), torch.as_tensor(retain_labels).long()
    needed_nights = set(np.asarray(needed_nights).tolist())
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout draws from the global generator (restored on return)
    completed = []
    for guide, fold in zip(guides, folds):
        in_fold = np.isin(retain_nights, fold)
        if not set(fold) & needed_nights or not in_fold.any():
            completed.append(guide)
            continue
        missed = np.flatnonzero(in_fold)
        seen = np.flatnonzero(~in_fold)
        replay = seen[torch.randperm(len(seen), generator=generator)[: len(missed)].numpy()]
        index = torch.as_tensor(np.concatenate([missed, replay]))
        model = copy.deepcopy(guide)
        optimizer = make_optimizer(model, replace(config, lr=lr))
        steps = epochs * -(-len(index) // config.batch_size)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / steps)
        for _ in range(epochs):
            train_one_epoch(model, retain_inputs[index], retain_labels[index], optimizer, schedule, config,
                            generator, torch.device("cpu"), progress=False, description="complete guide")
        completed.append(model.eval())
    return completed
