"""Student -> `.pte` for ExecuTorch's XNNPACK delegate, in fp32 or int8.

One input at a time with a static shape (1, *contract.shape), as the phone runs it. int8 is
post-training quantisation through PT2E with the XNNPACK quantizer: symmetric per-channel weights,
activations calibrated on samples of the synthetic set the student was distilled from, so the
bundle never needs a real night.
"""

from __future__ import annotations

import copy
import importlib.metadata
import warnings
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from edge_export._bundle import BUNDLE_FORMAT, PTE_NAME, decision_rule, preprocessing_spec, sha256_bytes
import teacher

QUANTIZE_MODES = ("int8", "none")


def lower_to_pte(model: nn.Module, input_shape: tuple[int, ...], quantize: str,
                 calibration: torch.Tensor | None = None, progress: bool = False) -> bytes:
    """The serialised ExecuTorch program of `model` (eval mode) for inputs of shape (1, *input_shape).

    Args:
        quantize: "int8" (needs `calibration`, (N, *input_shape) float inputs) or "none" (fp32).
    """
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZE_MODES)}, not {quantize!r}")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    if quantize == "int8" and (calibration is None or len(calibration) == 0):
        raise ValueError("int8 export needs calibration inputs (samples of the synthetic set)")
    model = copy.deepcopy(model).eval()
    example = (torch.zeros(1, *input_shape),)
    with warnings.catch_warnings():  # the exporters' own deprecation notices, nothing a user can act on
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        program = torch.export.export(model, example)
        if quantize == "int8":
            program = torch.export.export(_quantize(program, calibration, progress), example)
        return to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch().buffer


def _quantize(program, calibration: torch.Tensor, progress: bool) -> nn.Module:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(program.module(), quantizer)
    with torch.no_grad():
        for sample in tqdm(calibration, desc="calibrating", unit="sample", disable=not progress, leave=False):
            prepared(sample[None].float())  # one at a time: the graph has the phone's static batch of 1
    return convert_pt2e(prepared)


def calibration_samples(inputs: torch.Tensor, targets: torch.Tensor, count: int, seed: int = 0) -> torch.Tensor:
    """`count` synthetic inputs, as many of each class as possible, drawn at random."""
    rng = torch.Generator().manual_seed(seed)
    classes = targets.unique()
    chosen = []
    for cls in classes.tolist():
        members = (targets == cls).nonzero().flatten()
        chosen.append(members[torch.randperm(len(members), generator=rng)[: -(-count // len(classes))]])
    picked = torch.cat(chosen)
    return inputs[picked[torch.randperm(len(picked), generator=rng)[:count]]]


def write_bundle(directory: Path, pte: bytes, contract: teacher.InputContract, *, quantize: str,
                 smoothing_minutes: int, threshold: float, lineage: list[str], calibration: dict) -> dict:
    """Write `model.pte` into `directory`; returns the manifest's "bundle" section."""
    (directory / PTE_NAME).write_bytes(pte)
    return {
        "format": BUNDLE_FORMAT,
        "quantize": quantize,
        "pte": PTE_NAME,
        "pte_bytes": len(pte),
        "pte_sha256": sha256_bytes(pte),
        "contract": contract.to_dict(),
        "labels": list(contract.labels),
        "preprocessing": preprocessing_spec(contract),
        "decision": decision_rule(contract, smoothing_minutes, threshold),
        "calibration": calibration,
        "lineage": lineage,
        "exporter": {name: importlib.metadata.version(name) for name in ("torch", "executorch", "torchao")},
    }
