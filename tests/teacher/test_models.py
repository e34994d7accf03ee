"""teacher._models: every registered model trains on inputs of its contract's shape."""

from __future__ import annotations

import pytest
import torch

import teacher
from teacher import REGISTRY, create_model, get_entry, list_models


def contract_batch(name: str, batch: int, seed: int = 0) -> torch.Tensor:
    contract = get_entry(name).contract
    generator = torch.Generator().manual_seed(seed)
    if contract.modality == "rr-series":
        # Plausible RR seconds, as the windows hold them (the models normalise internally).
        return 0.6 + 0.6 * torch.rand((batch, *contract.shape), generator=generator)
    return torch.rand((batch, *contract.shape), generator=generator)


def test_registry_is_not_empty_and_names_match():
    names = list_models()
    assert names and names == list(REGISTRY)
    for name in names:
        assert get_entry(name).name == name
    assert set(list_models("rr-series")) <= set(names)
    assert list_models("no-such-modality") == []


@pytest.mark.parametrize("name", list_models())
def test_forward_backward_on_contract_shape(name):
    torch.manual_seed(0)
    contract = get_entry(name).contract
    model = create_model(name)
    model.train()
    inputs = contract_batch(name, batch=4)
    logits = model(inputs)
    assert logits.shape == (4, len(contract.labels))
    assert torch.isfinite(logits).all()
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 0, 1]) % len(contract.labels))
    loss.backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{name}.{parameter_name} got no gradient"
        assert torch.isfinite(parameter.grad).all(), f"{name}.{parameter_name} has a non-finite gradient"
    # Some gradient is non-zero: the loss really reaches the weights.
    assert any(parameter.grad.abs().sum() > 0 for parameter in model.parameters())


@pytest.mark.parametrize("name", list_models())
def test_eval_mode_is_deterministic_and_batch_independent(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    inputs = contract_batch(name, batch=3, seed=1)
    with torch.no_grad():
        together = model(inputs)
        alone = torch.cat([model(inputs[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list_models("rr-series"))
def test_contract_shape_is_what_the_window_spec_gives(name):
    contract = get_entry(name).contract
    spec = contract.window_spec()
    assert contract.shape == (1, spec.length)
    assert contract.shape[-1] == int((2 * contract.context_minutes + 1) * 60 * contract.grid_hz)
    assert teacher.create_model(name).classifier[-1].out_features == len(contract.labels)


def test_wrong_length_is_refused_by_the_contract_check():
    with pytest.raises(ValueError):
        teacher.model_contract("apnea_cnn", {"length": 600})


def test_unknown_model_names_the_registered_ones():
    with pytest.raises(KeyError, match="apnea_cnn"):
        create_model("no_such_model")


@pytest.mark.parametrize("pool", [1, 4])
def test_the_export_friendly_max_pool_is_max_pool_1d(pool):
    from teacher._models import MaxPool1dAs2d

    inputs = torch.randn(3, 5, 1203, generator=torch.Generator().manual_seed(0))
    assert torch.equal(MaxPool1dAs2d(pool)(inputs), torch.nn.MaxPool1d(pool)(inputs))


def test_the_smoothed_channel_keeps_slow_heart_rate_cycles_and_drops_breathing():
    """smooth_samples=33 (8 s at 4 Hz): a 60 s cycle (apnea-like) survives, a 4 s one (respiratory
    sinus arrhythmia) is averaged away; the level and deviation channels are unchanged."""
    from teacher._models import RRNormalise

    t = torch.arange(1200) / 4.0
    slow = 0.9 + 0.05 * torch.sin(2 * torch.pi * t / 60)
    fast = 0.9 + 0.05 * torch.sin(2 * torch.pi * t / 4)
    channels = RRNormalise(smooth_samples=33)(torch.stack([slow, fast]).reshape(2, 1, 1200))
    assert channels.shape == (2, 3, 1200)
    assert torch.equal(channels[:, :2], RRNormalise()(torch.stack([slow, fast]).reshape(2, 1, 1200)))
    middle = slice(100, 1100)
    slow_kept = channels[0, 2, middle].std() / channels[0, 1, middle].std()
    fast_kept = channels[1, 2, middle].std() / channels[1, 1, middle].std()
    assert slow_kept > 0.9 and fast_kept < 0.1
