"""teacher._image_models and the registry: every model trains on its contract's shape, image models
also at other channel counts and sizes, and the pixel normalisation they carry inside."""

from __future__ import annotations

import pytest
import torch

import teacher
from teacher import REGISTRY, create_model, get_entry, list_models
from teacher._image_models import AMPaperCNN, PixelNormalise, ResNet9, UnlearningPaperCNN

IMAGE_MODELS = list_models("image")


def _cases() -> list:
    """(name, constructor overrides, per-example input shape, classes) for every registered model:
    its contract's shape, and for image models also 1x28x28 and 3x32x32 with another class count."""
    cases = []
    for name, entry in REGISTRY.items():
        contract = entry.contract
        cases.append(pytest.param(name, {}, tuple(contract.shape), len(contract.labels), id=f"{name}-contract"))
        if contract.modality == "image":
            cases.append(pytest.param(name, {"in_channels": 1, "image_size": 28, "num_classes": 10},
                                      (1, 28, 28), 10, id=f"{name}-1x28x28"))
            cases.append(pytest.param(name, {"in_channels": 3, "image_size": 32, "num_classes": 7},
                                      (3, 32, 32), 7, id=f"{name}-3x32x32"))
    return cases


def _inputs(modality: str, shape: tuple[int, ...], batch: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if modality == "rr-series":
        return 0.6 + 0.6 * torch.rand((batch, *shape), generator=generator)  # RR seconds
    return torch.rand((batch, *shape), generator=generator)  # pixels in [0, 1]


def test_the_image_models_are_registered_with_image_contracts():
    expected = {"unlearning_cnn", "am_h1", "am_h1_half", "cnn_id", "cnn_small", "cnn_small_half", "cnn_large", "cnn_tiny",
                "mlp", "resnet9_narrow"}
    assert set(IMAGE_MODELS) == expected
    assert "apnea_cnn" not in IMAGE_MODELS
    for name in IMAGE_MODELS:
        contract = get_entry(name).contract
        assert contract.modality == "image"
        assert len(contract.shape) == 3 and contract.shape[1] == contract.shape[2]
        assert len(contract.labels) == 10
        assert "[0, 1]" in contract.units
    assert get_entry("am_h1").contract.shape == (1, 28, 28)
    assert get_entry("resnet9_narrow").contract.shape == (3, 32, 32)
    assert get_entry("resnet9_narrow").contract.labels[0] == "airplane"


def test_the_builders_are_the_papers_architectures():
    assert isinstance(create_model("unlearning_cnn"), UnlearningPaperCNN)
    assert isinstance(create_model("resnet9_narrow"), ResNet9)
    for name in ("am_h1", "am_h1_half", "cnn_id", "cnn_small", "cnn_small_half", "cnn_large", "cnn_tiny"):
        assert isinstance(create_model(name), AMPaperCNN)

    def size(name):
        return sum(parameter.numel() for parameter in create_model(name).parameters())

    # h1 and the student CNN_ID are the same network; the other students are smaller or larger.
    assert size("am_h1") == size("cnn_id")
    assert size("cnn_tiny") < size("cnn_small") < size("am_h1")
    assert size("cnn_large") != size("am_h1")
    # h1 at half width is CNN_S of h1, and its own CNN_S halves it again.
    assert size("am_h1_half") == size("cnn_small")
    assert size("cnn_small_half") < size("am_h1_half") < size("am_h1")


@pytest.mark.parametrize("name, overrides, shape, classes", _cases())
def test_forward_backward_reaches_every_parameter(name, overrides, shape, classes):
    torch.manual_seed(0)
    model = create_model(name, **overrides).train()
    batch = 4
    inputs = _inputs(get_entry(name).contract.modality, shape, batch)
    logits = model(inputs)
    assert logits.shape == (batch, classes)
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    loss = torch.nn.functional.cross_entropy(logits, torch.arange(batch) % classes)
    loss.backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{name}.{parameter_name} got no gradient"
        assert torch.isfinite(parameter.grad).all(), f"{name}.{parameter_name} has a non-finite gradient"
        assert parameter.grad.abs().sum() > 0, f"{name}.{parameter_name} got an all-zero gradient"


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_image_model_carries_the_given_pixel_statistics(name):
    mean, std = (0.1, 0.2, 0.3), (0.4, 0.5, 0.6)
    model = create_model(name, in_channels=3, image_size=32, mean=mean, std=std)
    state = model.state_dict()  # buffers: they travel with the weights into artifacts and exports
    torch.testing.assert_close(state["normalise.mean"].flatten(), torch.tensor(mean))
    torch.testing.assert_close(state["normalise.std"].flatten(), torch.tensor(std))


def test_pixel_normalise_maps_the_mean_to_zero_and_one_std_to_one():
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    normalise = PixelNormalise(mean, std)
    at_mean = torch.tensor(mean).view(1, 3, 1, 1).expand(2, 3, 5, 5)
    torch.testing.assert_close(normalise(at_mean), torch.zeros(2, 3, 5, 5))
    one_std_up = (torch.tensor(mean) + torch.tensor(std)).view(1, 3, 1, 1).expand(2, 3, 5, 5)
    torch.testing.assert_close(normalise(one_std_up), torch.ones(2, 3, 5, 5))
    # Each channel with its own statistics: black pixels land at -mean/std per channel.
    expected = (-torch.tensor(mean) / torch.tensor(std)).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    torch.testing.assert_close(normalise(torch.zeros(1, 3, 4, 4)), expected)


def test_pixel_normalise_single_channel_mnist_statistics():
    normalise = PixelNormalise((0.1307,), (0.3081,))
    assert normalise(torch.full((1, 1, 28, 28), 0.1307)).abs().max() < 1e-6
    torch.testing.assert_close(normalise(torch.full((1, 1, 2, 2), 0.4388)), torch.ones(1, 1, 2, 2))


def test_model_normalises_inside_so_statistics_change_the_output():
    torch.manual_seed(0)
    a = create_model("cnn_tiny", mean=(0.1307,), std=(0.3081,)).eval()
    b = create_model("cnn_tiny", mean=(0.5,), std=(0.25,)).eval()
    b.load_state_dict({k: v for k, v in a.state_dict().items() if not k.startswith("normalise.")}, strict=False)
    pixels = _inputs("image", (1, 28, 28), batch=2)
    with torch.no_grad():
        assert not torch.allclose(a(pixels), b(pixels))
        # The same weights with the same statistics give the same logits.
        c = create_model("cnn_tiny", mean=(0.1307,), std=(0.3081,)).eval()
        c.load_state_dict(a.state_dict())
        torch.testing.assert_close(a(pixels), c(pixels))


def test_image_contract_helper():
    contract = teacher.image_contract((3, 16, 16), ("bright", "dark"), (0.5, 0.5, 0.5), (0.4, 0.4, 0.4))
    assert contract.modality == "image" and contract.shape == (3, 16, 16)
    assert contract.labels == ("bright", "dark")
    assert "0.4" in contract.normalisation and contract.to_dict()["shape"] == (3, 16, 16)
