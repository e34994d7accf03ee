"""Explainers and their metrics on tiny models whose right answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import student

LENGTH = 100
EVIDENCE = slice(40, 60)  # the only positions the model below reads


class SegmentModel(nn.Module):
    """Two classes; the class-1 logit is the window's variation inside EVIDENCE, times 10.
    Positions outside EVIDENCE cannot change the output: a faithful map puts its weight inside."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # (B, 1, L)
        segment = inputs[:, 0, EVIDENCE]
        evidence = 10 * (segment - inputs[:, 0].mean(dim=-1, keepdim=True)).abs().mean(dim=-1)
        return torch.stack([torch.zeros_like(evidence) + 1.0, evidence], dim=-1)


def windows(count: int = 6, seed: int = 0) -> torch.Tensor:
    """RR-like windows around 0.95 s whose EVIDENCE segment swings strongly (class 1 is called)."""
    generator = torch.Generator().manual_seed(seed)
    inputs = 0.95 + 0.01 * torch.randn((count, 1, LENGTH), generator=generator)
    inputs[:, 0, EVIDENCE] += 0.3 * torch.sign(torch.randn((count, 20), generator=generator))
    return inputs


def inside_share(maps: torch.Tensor) -> float:
    positive = maps.clamp_min(0)
    return float((positive[:, EVIDENCE].sum() / positive.sum()))


def test_neutral_reference_is_the_window_mean_for_series_and_black_for_images():
    series = windows()
    assert torch.allclose(student.neutral_reference(series), series.mean(dim=-1, keepdim=True).expand_as(series))
    assert torch.equal(student.neutral_reference(torch.rand(2, 1, 4, 4)), torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="expected"):
        student.neutral_reference(torch.rand(3, 5))


def test_laplacian_vanishes_on_flat_and_linear_masks_and_not_on_a_spike():
    flat, ramp = torch.ones(1, 10), torch.arange(10.0).unsqueeze(0)
    assert torch.allclose(student.laplacian(flat), torch.zeros(1, 10))
    assert torch.allclose(student.laplacian(ramp)[:, 1:-1], torch.zeros(1, 8))
    spike = torch.zeros(1, 5, 5)
    spike[0, 2, 2] = 1
    assert student.laplacian(spike)[0, 2, 2] == -4


def test_neuromask_finds_the_only_segment_the_model_reads():
    model, inputs = SegmentModel(), windows()
    masks = student.NeuroMask(model).explain(inputs, target=1)
    assert masks.shape == (6, LENGTH) and float(masks.min()) >= 0 and float(masks.max()) <= 1
    assert inside_share(masks) > 0.8  # 20 % of the positions, more than 80 % of the mask
    # Keeping what the mask keeps keeps the decision.
    kept = student.blend(inputs, masks, student.neutral_reference(inputs))
    assert (model(kept).argmax(dim=-1) == 1).all()


def test_neuromask_batched_equals_one_at_a_time():
    model, inputs = SegmentModel(), windows()
    together = student.NeuroMask(model).explain(inputs, target=1)
    alone = student.NeuroMask(model).explain(inputs[:1], target=1)
    assert torch.allclose(together[:1], alone, atol=1e-5)


def test_neuromask_explains_images_with_a_2d_mask():
    class CornerModel(nn.Module):  # class 1 when the top-left 4x4 corner is bright
        def forward(self, inputs):
            corner = inputs[:, :, :4, :4].mean(dim=(1, 2, 3)) * 8
            return torch.stack([torch.ones_like(corner), corner], dim=-1)

    images = torch.full((2, 1, 12, 12), 0.5)
    masks = student.NeuroMask(CornerModel()).explain(images, target=1)
    assert masks.shape == (2, 12, 12)
    assert masks[:, :4, :4].mean() > 5 * masks[:, 4:, 4:].mean()


# Occlusion's 20-position window spreads credit over its own width around the segment.
@pytest.mark.parametrize("method, share", [("ig", 0.8), ("saliency", 0.8), ("occlusion", 0.6), ("gradientshap", 0.8)])
def test_captum_baselines_put_their_weight_on_the_evidence(method, share):
    maps = student.CaptumBaseline(SegmentModel(), method).explain(windows(), target=1)
    assert maps.shape == (6, LENGTH)
    assert inside_share(maps) > share


def test_integrated_gradients_starts_from_the_neutral_reference():
    """Completeness: the attributions add up to logit(x) - logit(reference), so the reference is
    the window's mean level, not zero."""
    model, inputs = SegmentModel(), windows()
    maps = student.CaptumBaseline(model, "ig", steps=256).explain(inputs, target=1)
    with torch.no_grad():
        gap = model(inputs)[:, 1] - model(student.neutral_reference(inputs))[:, 1]
    assert torch.allclose(maps.sum(dim=1), gap, rtol=0.02)


def test_deletion_is_low_and_insertion_high_for_the_true_map_and_reversed_for_its_opposite():
    model, inputs = SegmentModel(), windows()
    truth = torch.zeros(6, LENGTH)
    truth[:, EVIDENCE] = 1.0
    truth += 1e-3 * torch.rand(6, LENGTH)  # no ties
    target = torch.ones(6, dtype=torch.long)
    right = student.deletion_insertion(model, inputs, truth, target)
    wrong = student.deletion_insertion(model, inputs, -truth, target)
    assert right["deletion"].mean() < wrong["deletion"].mean() - 0.2
    assert right["insertion"].mean() > wrong["insertion"].mean() + 0.2
    assert right["deletion_curve"].shape == (51,)


def test_gini_is_zero_for_an_even_map_and_near_one_for_a_single_position():
    even, single = torch.ones(1, 100), torch.zeros(1, 100)
    single[0, 7] = 3.0
    assert student.gini(even)[0] == pytest.approx(0.0, abs=1e-9)
    assert student.gini(single)[0] == pytest.approx(0.99, abs=1e-9)


def test_randomisation_check_passes_for_gradients_and_fails_for_a_map_that_ignores_the_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(LENGTH, 16), nn.ReLU(), nn.Linear(16, 2))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].weight[:, EVIDENCE] = torch.randn(16, 20)
    inputs, target = windows(12), torch.ones(12, dtype=torch.long)

    def saliency(net, x, y, seed):
        return student.CaptumBaseline(net, "saliency").explain(x, y)

    def the_input_itself(net, x, y, seed):
        return x[:, 0] - x[:, 0].mean(dim=-1, keepdim=True)

    assert student.randomisation_check(saliency, model, inputs, target, stochastic=False)["passes"]
    assert not student.randomisation_check(the_input_itself, model, inputs, target, stochastic=False)["passes"]


def test_relabel_distillation_trains_a_vae_and_returns_maps_on_the_evidence():
    model = SegmentModel()
    training = torch.cat([windows(200, seed=1), 0.95 + 0.01 * torch.randn(200, 1, LENGTH)])
    vae, history = student.train_vae(training, latent=4, epochs=15)
    assert history[-1]["loss"] < history[0]["loss"]
    maps = student.RelabelDistillation(model, vae, student.RelabelConfig(neighbours=64, steps=100)).explain(
        windows(), target=1)
    assert maps.shape == (6, LENGTH) and torch.isfinite(maps).all()
    # A linear student reads a model of |variation| only in part: the evidence is denser, not alone.
    assert inside_share(maps) > 1.3 * 0.2


def test_make_explainer_refuses_unknown_methods_and_relabel_without_a_vae():
    with pytest.raises(ValueError, match="unknown explanation method 'lime'"):
        student.make_explainer("lime", SegmentModel())
    with pytest.raises(ValueError, match="needs a VAE"):
        student.make_explainer("relabel", SegmentModel())
    assert np.all([student.make_explainer(m, SegmentModel(), vae=student.VAE((1, LENGTH))) for m in student.METHODS])
