"""What every explainer shares: the neutral reference an input is masked toward, the target class,
the map's shape, and the field's baselines through Captum.

An explanation is a map over the input's positions (the channel axis summed away): `(B, L)` for an
RR series of shape `(1, L)`, `(B, H, W)` for an image of shape `(C, H, W)`. Larger means more
evidence for the target class. Every explainer and every metric removes information the same way:
by blending toward `neutral_reference`, never by multiplying with zero.
"""

from __future__ import annotations

import torch
from captum.attr import GradientShap, IntegratedGradients, Occlusion, Saliency
from torch import nn


def neutral_reference(inputs: torch.Tensor) -> torch.Tensor:
    """What "no information" looks like for each input, shaped like `inputs`.

    - RR series `(B, 1, L)`: the window's own mean RR, a steady heart. Multiplying an RR series by
      zero would fake an impossible heart rate (0 s between beats), which the model has never seen
      and which says nothing about the minute; a flat line at the window's level removes the
      variation (the cyclic heart-rate changes that apneas cause) and keeps the level.
    - Images `(B, C, H, W)`: black, the background of MNIST and the start of the kit's generators.
    """
    if inputs.dim() == 3:
        return inputs.mean(dim=-1, keepdim=True).expand_as(inputs)
    if inputs.dim() == 4:
        return torch.zeros_like(inputs)
    raise ValueError(f"inputs of shape {tuple(inputs.shape)}: expected (B, 1, L) series or (B, C, H, W) images")


def blend(inputs: torch.Tensor, keep: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """`keep` in [0, 1] over the map's positions (B, *spatial): 1 keeps the input, 0 the reference."""
    return reference + keep.unsqueeze(1) * (inputs - reference)


def decisions(model: nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's class and its softmax confidence for each input."""
    with torch.no_grad():
        probabilities = torch.softmax(model(inputs), dim=-1)
    confidence, target = probabilities.max(dim=-1)
    return target, confidence


def resolve_target(model: nn.Module, inputs: torch.Tensor, target) -> torch.Tensor:
    """`target` as a (B,) class tensor: the model's own decision when None, one class for all when an int."""
    if target is None:
        return decisions(model, inputs)[0]
    if isinstance(target, int):
        return torch.full((inputs.shape[0],), target, dtype=torch.long)
    target = torch.as_tensor(target, dtype=torch.long)
    if target.shape != (inputs.shape[0],):
        raise ValueError(f"target of shape {tuple(target.shape)} for {inputs.shape[0]} inputs")
    return target


class CaptumBaseline:
    """One of the field's attribution methods, through Captum, on the same footing as NeuroMask:
    the same neutral reference as the baseline of Integrated Gradients, GradientShap and Occlusion,
    and the map summed over channels.

    Args:
        model: the classifier (kept in eval mode).
        method: "ig", "saliency", "occlusion" or "gradientshap".
        steps: integration steps of Integrated Gradients; samples of GradientShap.
        occlusion_window: positions hidden at once by Occlusion (a side for images); its stride is half.
    """

    METHODS = ("ig", "saliency", "occlusion", "gradientshap")

    def __init__(self, model: nn.Module, method: str, *, steps: int = 32, occlusion_window: int | None = None):
        if method not in self.METHODS:
            raise ValueError(f"unknown attribution method {method!r}; known: {', '.join(self.METHODS)}")
        self.model = model.eval()
        self.method = method
        self.steps = steps
        self.occlusion_window = occlusion_window

    def explain(self, inputs: torch.Tensor, target=None) -> torch.Tensor:
        """Maps (B, *spatial) for the target class (default: the model's decision)."""
        target = resolve_target(self.model, inputs, target)
        reference = neutral_reference(inputs).detach()
        # Attribute the displacement from the reference, d = inputs - reference, through
        # f(reference + d): a zero baseline for d is the reference for every input, each RR window
        # keeping its own level (Captum expands the reference along with the inputs).
        displacement = (inputs - reference).detach().requires_grad_(True)
        common = {"target": target, "additional_forward_args": (reference,)}
        if self.method == "ig":
            attributions = IntegratedGradients(self._shifted).attribute(
                displacement, baselines=0.0, n_steps=self.steps, internal_batch_size=4096, **common)
        elif self.method == "saliency":
            attributions = Saliency(self._shifted).attribute(displacement, abs=True, **common)
        elif self.method == "gradientshap":
            # Baselines: the reference jittered by a tenth of the displacements' spread.
            noise = torch.randn((8, *inputs.shape[1:]), generator=torch.Generator().manual_seed(0))
            baselines = 0.1 * displacement.detach().std() * noise
            attributions = GradientShap(self._shifted).attribute(
                displacement, baselines=baselines, n_samples=self.steps, stdevs=0.0, **common)
        else:
            attributions = Occlusion(self._shifted).attribute(
                displacement, sliding_window_shapes=self._window(inputs), strides=self._stride(inputs),
                baselines=0.0, perturbations_per_eval=64, **common)
        return attributions.detach().sum(dim=1)

    def _shifted(self, displacement: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return self.model(reference + displacement)

    def _window(self, inputs: torch.Tensor) -> tuple[int, ...]:
        channels = inputs.shape[1]
        if inputs.dim() == 3:
            return (channels, self.occlusion_window or 20)  # 20 samples: 5 s at 4 Hz
        side = self.occlusion_window or 4
        return (channels, side, side)

    def _stride(self, inputs: torch.Tensor) -> tuple[int, ...]:
        window = self._window(inputs)
        return (window[0], *(max(1, side // 2) for side in window[1:]))
