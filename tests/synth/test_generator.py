"""The generators of Gen{h1}: bounded outputs of the right shape, and K independent copies in a bank."""

from __future__ import annotations

import pytest
import torch

from synth import GeneratorBank, ImageGenerator, SeriesGenerator, make_generator
from synth._generator import RR_RANGE_S

LATENT = 16


def _noise(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_image_generator_shape_and_pixel_bounds(shape):
    torch.manual_seed(0)
    generator = ImageGenerator(shape, latent_dim=LATENT)
    # Large noise pushes the pre-sigmoid activations far out: the bound must still hold.
    images = generator(_noise(5, LATENT) * 50)
    assert images.shape == (5, *shape)
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert images.std() > 0  # not a constant image


def test_image_generator_honours_its_value_range():
    torch.manual_seed(0)
    images = ImageGenerator((1, 8, 8), latent_dim=LATENT, value_range=(-2.0, -1.0))(_noise(4, LATENT) * 50)
    assert images.min() >= -2.0 and images.max() <= -1.0


def test_image_generator_refuses_a_side_not_divisible_by_4():
    with pytest.raises(ValueError, match="30"):
        ImageGenerator((1, 30, 30), latent_dim=LATENT)


def test_series_generator_shape_and_rr_bounds():
    torch.manual_seed(0)
    generator = SeriesGenerator((1, 1200), latent_dim=LATENT)
    low, high = RR_RANGE_S
    series = generator(_noise(3, LATENT))
    assert series.shape == (3, 1, 1200)
    assert series.min() >= low and series.max() <= high
    saturated = generator(_noise(3, LATENT) * 1000)
    assert saturated.min() >= low and saturated.max() <= high


def test_series_generator_refuses_a_length_not_divisible_by_8():
    with pytest.raises(ValueError, match="1201"):
        SeriesGenerator((1, 1201), latent_dim=LATENT)


def test_make_generator_picks_the_modality_range():
    torch.manual_seed(0)
    series = make_generator("rr-series", (1, 64), LATENT)(_noise(2, LATENT) * 1000)
    images = make_generator("image", (3, 8, 8), LATENT)(_noise(2, LATENT) * 1000)
    assert series.shape == (2, 1, 64) and images.shape == (2, 3, 8, 8)
    assert series.min() >= RR_RANGE_S[0] and series.max() <= RR_RANGE_S[1]
    assert images.min() >= 0.0 and images.max() <= 1.0
    with pytest.raises(ValueError, match="audio"):
        make_generator("audio", (1, 64), LATENT)


def _image_factory():
    return ImageGenerator((1, 8, 8), latent_dim=LATENT, width=8)


def _alone(seed: int) -> ImageGenerator:
    """One copy rebuilt the way the bank builds copy i: PyTorch's default init under its seed."""
    torch.manual_seed(seed)
    return _image_factory()


@pytest.fixture()
def bank() -> GeneratorBank:
    return GeneratorBank(_image_factory, count=3, seed=10)


def test_bank_copies_differ(bank):
    assert bank.count == 3
    for stacked in bank.parameters():
        assert stacked.shape[0] == 3
    weights = bank.params["project.weight"]
    assert not torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[1], weights[2])
    assert not torch.equal(weights[0], weights[2])


def test_bank_output_equals_each_copy_run_alone(bank):
    noise = _noise(3, 5, LATENT)
    outputs = bank(noise)
    assert outputs.shape == (3, 5, 1, 8, 8)
    for index in range(3):
        copy = _alone(10 + index)
        assert torch.equal(bank.params["project.weight"][index], copy.project.weight)
        torch.testing.assert_close(outputs[index], copy(noise[index]), rtol=1e-5, atol=1e-6)
    # The same noise through different copies gives different samples.
    same = bank(noise[:1].expand(3, 5, LATENT))
    assert not torch.allclose(same[0], same[1]) and not torch.allclose(same[1], same[2])


def test_bank_does_not_touch_the_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    GeneratorBank(_image_factory, count=2, seed=0)
    assert torch.equal(torch.rand(4), expected)


def test_bank_generators_are_independent(bank):
    outputs = bank(_noise(3, 5, LATENT))
    (outputs[1] ** 2).sum().backward()
    for name, stacked in bank.params.items():
        assert stacked.grad is not None, name
        assert torch.count_nonzero(stacked.grad[0]) == 0, name
        assert torch.count_nonzero(stacked.grad[2]) == 0, name
    assert torch.count_nonzero(bank.params["project.weight"].grad[1]) > 0


def test_one_adam_step_on_the_bank_moves_each_copy_as_if_alone(bank):
    """A sum of per-generator losses under one Adam is K separate Adams (the bank's claim)."""
    noise = _noise(3, 5, LATENT)
    optimizer = torch.optim.Adam(bank.parameters(), lr=0.01)
    outputs = bank(noise)
    losses = [outputs[index].mean() * (index + 1) for index in range(3)]
    optimizer.zero_grad()
    sum(losses).backward()
    optimizer.step()
    for index in range(3):
        copy = _alone(10 + index)
        alone = torch.optim.Adam(copy.parameters(), lr=0.01)
        alone.zero_grad()
        (copy(noise[index]).mean() * (index + 1)).backward()
        alone.step()
        torch.testing.assert_close(bank.params["project.weight"][index], copy.project.weight, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(bank(noise)[index], copy(noise[index]), rtol=1e-5, atol=1e-6)
