"""How good an explanation is, measured on the model rather than by eye.

- Deletion and insertion AUC (RISE, Petsiuk et al. 2018), for series as for images: positions are
  removed (deletion) or restored (insertion) in the map's order, toward the same neutral reference
  the explainers use, and the target's probability is integrated over the fraction moved. A
  faithful map makes deletion fall fast (low AUC) and insertion rise fast (high AUC).
- Sparsity: the Gini index of the map's magnitudes (0: spread evenly, 1: one position).
- The model-randomisation sanity check (Adebayo et al. 2018): explanations of a model whose weights
  are re-initialised must differ from those of the trained model.
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch
from scipy import stats
from torch import nn

from student._attribution import blend, neutral_reference
from teacher._training import restores_global_rng


def _ranks(maps: torch.Tensor) -> torch.Tensor:
    """(B, P) rank of each position, 0 = most important; ties keep position order."""
    order = torch.argsort(maps, dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(maps.shape[1]).expand_as(order))
    return ranks


def deletion_insertion(model: nn.Module, inputs: torch.Tensor, maps: torch.Tensor, target: torch.Tensor, *,
                       steps: int = 50, chunk: int = 32) -> dict[str, np.ndarray]:
    """Per-example deletion and insertion AUC, and the mean curves.

    Args:
        model: the explained classifier.
        inputs: (B, 1, L) or (B, C, H, W).
        maps: (B, *spatial) explanations; larger = more important.
        target: (B,) class whose probability is followed.
        steps: the curve has steps + 1 points, from nothing moved to everything moved.
        chunk: examples evaluated at once ((steps + 1) * chunk forward passes in one batch).

    Returns:
        "deletion", "insertion": (B,) AUCs in [0, 1]; "deletion_curve", "insertion_curve": (steps + 1,)
        mean probability after each fraction.
    """
    model = model.eval()
    positions = maps[0].numel()
    moved = torch.round(torch.linspace(0, positions, steps + 1)).long()  # (S+1,)
    deletion, insertion = [], []
    for start in range(0, inputs.shape[0], chunk):
        x = inputs[start:start + chunk].detach()
        ranks = _ranks(maps[start:start + chunk].reshape(x.shape[0], -1))  # (b, P)
        top = ranks.unsqueeze(1) < moved.view(1, -1, 1)  # (b, S+1, P): among the first k moved
        spatial = x.shape[2:]
        repeated = x.repeat_interleave(steps + 1, dim=0)  # (b*(S+1), ...): one copy per point of the curve
        reference = neutral_reference(x).repeat_interleave(steps + 1, dim=0)
        chosen = target[start:start + chunk].repeat_interleave(steps + 1)
        curves = []
        for keep in (~top, top):  # deletion keeps what is not yet removed; insertion what is restored
            blended = blend(repeated, keep.float().reshape(-1, *spatial), reference)
            with torch.no_grad():
                probabilities = torch.softmax(model(blended), dim=-1)
            curves.append(probabilities[torch.arange(len(chosen)), chosen].reshape(x.shape[0], steps + 1))
        deletion.append(curves[0])
        insertion.append(curves[1])
    deletion, insertion = torch.cat(deletion).numpy(), torch.cat(insertion).numpy()
    fraction = moved.numpy() / positions
    return {
        "deletion": np.trapezoid(deletion, fraction, axis=1),
        "insertion": np.trapezoid(insertion, fraction, axis=1),
        "deletion_curve": deletion.mean(axis=0),
        "insertion_curve": insertion.mean(axis=0),
    }


def gini(maps: torch.Tensor) -> np.ndarray:
    """(B,) Gini index of |map| per example (Hurley and Rickard 2009): 0 even, toward 1 sparse."""
    values = np.sort(np.abs(maps.reshape(maps.shape[0], -1).numpy().astype(np.float64)), axis=1)
    n = values.shape[1]
    totals = values.sum(axis=1, keepdims=True)
    shares = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    weights = (n - np.arange(1, n + 1) + 0.5) / n
    return 1.0 - 2.0 * (shares * weights).sum(axis=1)


# How much less alike (in rank correlation) maps of a randomised model must be than reruns.
CHECK_MARGIN = 0.1


@restores_global_rng
def randomised_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """The same architecture with every layer re-initialised (full randomisation, not cascading)."""
    torch.manual_seed(seed)
    twin = copy.deepcopy(model)
    for module in twin.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        if hasattr(module, "reset_running_stats"):
            module.reset_running_stats()
    return twin.eval()


def rank_correlation(first: torch.Tensor, second: torch.Tensor, where: torch.Tensor | None = None) -> np.ndarray:
    """(B,) Spearman correlation between two sets of maps, example by example, over the positions
    `where` (B, *spatial) is true (default: all)."""
    a, b = first.reshape(first.shape[0], -1).numpy(), second.reshape(second.shape[0], -1).numpy()
    keep = np.ones_like(a, dtype=bool) if where is None else where.reshape(where.shape[0], -1).numpy()
    return np.array([stats.spearmanr(x[k], y[k]).statistic for x, y, k in zip(a, b, keep)])


def randomisation_check(explain: Callable[[nn.Module, torch.Tensor, torch.Tensor, int], torch.Tensor],
                        model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, *,
                        stochastic: bool) -> dict:
    """Does the explanation depend on what the model learned?

    `explain(model, inputs, target, seed)` gives maps. The maps of the trained model are compared
    (Spearman, per example, over the positions where the input differs from its reference) with
    those of a randomised copy, for the same target classes, and, for a
    stochastic explainer, with a second run of itself under another seed: its own noise floor. The
    check passes when the upper quartile of the similarity to the randomised model's maps lies at
    least `CHECK_MARGIN` below the lower quartile of the similarity to a rerun (a deterministic
    method reruns identically: 1).
    """
    # Only positions where the input differs from its reference: elsewhere (an MNIST image's black
    # background) no model can react, so any map's values there say nothing about the model.
    informative = (inputs - neutral_reference(inputs)).abs().sum(dim=1) > 1e-6
    trained = explain(model, inputs, target, 0)
    # The randomised model is explained under the rerun's seed: both comparisons change the seed,
    # so a stochastic explainer cannot look model-dependent merely by keeping its own start.
    to_random = rank_correlation(trained, explain(randomised_copy(model), inputs, target, 1), informative)
    rerun = (rank_correlation(trained, explain(model, inputs, target, 1), informative) if stochastic
             else np.ones(len(to_random)))
    to_random, rerun = np.nan_to_num(to_random), np.nan_to_num(rerun)
    return {
        "similarity_to_randomised_median": float(np.median(to_random)),
        "similarity_to_randomised_q75": float(np.quantile(to_random, 0.75)),
        "similarity_to_rerun_median": float(np.median(rerun)),
        "similarity_to_rerun_q25": float(np.quantile(rerun, 0.25)),
        "passes": bool(np.quantile(to_random, 0.75) < np.quantile(rerun, 0.25) - CHECK_MARGIN),
    }
