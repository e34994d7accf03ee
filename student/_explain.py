"""One way to ask any of the kit's explainers for maps: `make_explainer(method, model)`."""

from __future__ import annotations

import dataclasses

from torch import nn

from student._attribution import CaptumBaseline
from student._neuromask import NeuroMask, NeuroMaskConfig
from student._relabel import VAE, RelabelConfig, RelabelDistillation

# The paper's own cost: no deletion term, the uniform start in (-tau, tau), a weight per position.
PAPER_NEUROMASK = NeuroMaskConfig(init_range=20.0, lambda_delete=0.0, block=1)
METHODS = ("neuromask", "neuromask-paper", "relabel", *CaptumBaseline.METHODS)
STOCHASTIC = ("neuromask", "neuromask-paper", "relabel")


def make_explainer(method: str, model: nn.Module, *, vae: VAE | None = None, seed: int = 0):
    """An object whose `explain(inputs, target=None)` returns maps (B, *spatial).

    Args:
        method: one of `METHODS`.
        model: the classifier to explain.
        vae: the trained VAE re-label distillation perturbs (required for "relabel").
        seed: seeds the stochastic explainers (NeuroMask's start, the VAE's perturbations).
    """
    if method == "neuromask":
        return NeuroMask(model, NeuroMaskConfig(seed=seed))
    if method == "neuromask-paper":
        return NeuroMask(model, dataclasses.replace(PAPER_NEUROMASK, seed=seed))
    if method == "relabel":
        if vae is None:
            raise ValueError("re-label distillation needs a VAE trained on inputs like the explained ones")
        return RelabelDistillation(model, vae, RelabelConfig(seed=seed))
    if method in CaptumBaseline.METHODS:
        return CaptumBaseline(model, method)
    raise ValueError(f"unknown explanation method {method!r}; known: {', '.join(METHODS)}")
