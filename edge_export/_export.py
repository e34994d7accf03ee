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
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

import teacher
from edge_export._bundle import (
    BUNDLE_FORMAT,
    PTE_NAME,
    BundleError,
    decision_section,
    load_program,
    preprocessing_spec,
    sha256_bytes,
)

QUANTIZE_MODES = ("int8", "none")
# int8 calibration draws this many synthetic samples (balanced over classes); export first sets aside
# this many others (at most half the set) to check the .pte against the eager student on.
CALIBRATION_SAMPLES = 512
VERIFY_SAMPLES = 256
# A .pte is refused when it disagrees with the eager student beyond these.
FP32_MAX_LOGIT_DIFFERENCE = 1e-3
INT8_MIN_DECISION_AGREEMENT = 0.95


@dataclass
class ExportedProgram:
    """A verified `.pte` and what the bundle records about how it was made and checked."""

    pte: bytes
    verification: dict
    calibration_count: int  # synthetic samples int8 was calibrated on (0 for fp32)


def export(model: nn.Module, contract: teacher.InputContract, inputs: torch.Tensor, targets: torch.Tensor,
           quantize: str = "int8", *, calibration_samples: int = CALIBRATION_SAMPLES,
           progress: bool = False) -> ExportedProgram:
    """Lower `model` to a `.pte` and verify it, on synthetic data only (`inputs`, `targets`: the
    student's synthetic set).

    Verification samples are set aside first (at most half of a small set); int8 calibrates on the
    rest. The .pte then runs in `executorch.runtime` on the set-aside samples and must match the
    eager model (fp32: logits within FP32_MAX_LOGIT_DIFFERENCE; int8: the same decision on at least
    INT8_MIN_DECISION_AGREEMENT), so a model that lowers without error but answers wrongly never ships.
    """
    verify_count = min(VERIFY_SAMPLES, len(targets) // 2)
    held_out = torch.randperm(len(targets), generator=torch.Generator().manual_seed(1))[:verify_count]
    calibration = None
    if quantize == "int8":
        remaining = torch.ones(len(targets), dtype=torch.bool)
        remaining[held_out] = False
        calibration = calibration_samples_of(inputs[remaining], targets[remaining], calibration_samples)
    pte = lower_to_pte(model, contract.shape, quantize, calibration, progress=progress)
    verification = verify_pte(pte, contract, model, inputs[held_out], quantize)
    return ExportedProgram(pte, verification, len(calibration) if calibration is not None else 0)


def verify_pte(pte: bytes, contract: teacher.InputContract, model: nn.Module, inputs: torch.Tensor,
               quantize: str) -> dict:
    """The .pte in the runtime against the eager model, one input at a time as on the phone;
    BundleError when it disagrees beyond the limits above."""
    _program, method = load_program(pte, contract)
    with torch.no_grad():
        eager = model.eval()(inputs)
    lowered = torch.cat([method.execute([sample[None].contiguous()])[0] for sample in inputs])
    figures = {"samples": len(inputs), "source": "synthetic set, not used for calibration",
               "max_logit_difference": float((lowered - eager).abs().max()),
               "decision_agreement": float((lowered.argmax(1) == eager.argmax(1)).float().mean())}
    if quantize == "none" and figures["max_logit_difference"] > FP32_MAX_LOGIT_DIFFERENCE:
        raise BundleError(f"the fp32 .pte differs from the eager student by {figures['max_logit_difference']:.2e} "
                          f"in logits (allowed {FP32_MAX_LOGIT_DIFFERENCE}): not sealed")
    if quantize == "int8" and figures["decision_agreement"] < INT8_MIN_DECISION_AGREEMENT:
        raise BundleError(f"the int8 .pte agrees with the eager student on {figures['decision_agreement']:.1%} of "
                          f"synthetic samples (needs {INT8_MIN_DECISION_AGREEMENT:.0%}): not sealed")
    return figures


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


def calibration_samples_of(inputs: torch.Tensor, targets: torch.Tensor, count: int, seed: int = 0) -> torch.Tensor:
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
                 decision: teacher.DecisionRule | None, lineage: list[str], calibration: dict | None) -> dict:
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
        "decision": decision_section(contract, decision),
        "severity": teacher.SEVERITY.to_dict() if contract.modality == "rr-series" else None,
        "calibration": calibration,
        "lineage": lineage,
        "exporter": {name: importlib.metadata.version(name) for name in ("torch", "executorch", "torchao")},
    }
