"""The bundle a phone ships: `model.pte` and the manifest that says how to feed it.

A bundle is an artifact directory of the store (kind "bundle"). Its manifest carries, under
"bundle", everything the app needs besides the .pte: the input contract, the label names, the
preprocessing from beat times to the model input (by name and constants, so that the app and this
replay can both check they implement the same one), the decision rule, the .pte's sha256, the
lineage back to the teacher and the exporter versions.

`load_bundle` refuses, before anything runs, a bundle not signed by the given key (`_signing.py`),
one whose .pte is missing, truncated or changed (hash), whose preprocessing this code does not
implement, or whose model does not take the contract's input; `BundleModel.probabilities` refuses a window of the wrong shape or with NaN.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import teacher
from teacher._rr import ECTOPIC_NEIGHBOURS, ECTOPIC_TOLERANCE, RR_MAX_S, RR_MIN_S

BUNDLE_FORMAT = "edgekit-bundle/1"
PTE_NAME = "model.pte"
MANIFEST_NAME = "manifest.json"


class BundleError(ValueError):
    """A bundle, or an input to it, that must not run; nothing was run."""


def preprocessing_spec(contract: teacher.InputContract) -> dict:
    """How raw data becomes one model input, by name and constants.

    RR windows: the night's beat times (from a strap's RR intervals, or from an ECG through the
    kit's detector, `ecg_to_beats`, where its signal quality allows) -> RR intervals cleaned as in
    training (`teacher.clean_rr`) -> linear resampling on the grid -> one window per minute with
    context, edges held -> the night rescaled to the night-median RR; minutes without signal
    (`signal_quality`) are neither flagged nor counted; a night whose kept intervals cover less than
    `min_rr_coverage` of it is refused. Images: pixels as floats in [0, 1].
    Normalisation is inside the model in both cases, so the phone feeds these values as they are.
    """
    if contract.modality == "image":
        return {"name": "image-pixels/1", "pixels": "float32 in [0, 1] (uint8 / 255)",
                "layout": "NCHW", "normalisation": contract.normalisation}
    return {
        "name": "beats-to-rr-windows/1",
        "input": "beat (R-peak) times of one night, seconds",
        "rr_limits_s": [RR_MIN_S, RR_MAX_S],
        "ectopic": {"tolerance": ECTOPIC_TOLERANCE, "neighbours_each_side": ECTOPIC_NEIGHBOURS},
        "grid_hz": contract.grid_hz,
        "context_minutes": contract.context_minutes,
        "window_samples": contract.shape[-1],
        "edges": "hold the nearest kept RR value",
        "night_median_rr_s": teacher.NIGHT_MEDIAN_RR_S if contract.night_relative else None,
        "min_rr_coverage": teacher.MIN_VALID_COVERAGE,
        "normalisation": contract.normalisation,
        "ecg_to_beats": teacher.BEAT_DETECTOR.to_dict(),
        "rr_input": "RR intervals in ms (a strap's 1/1024 s units converted) or beat times in s; beat i at the "
                    "sum of the first i intervals",
        "signal_quality": teacher.SIGNAL_QUALITY.to_dict(),
    }


def decision_section(contract: teacher.InputContract, rule: teacher.DecisionRule | None) -> dict:
    """What turns the model's softmax into the app's answer: for a night of minutes, the student's
    `teacher.DecisionRule` as it serialises itself; for images, the most probable label."""
    if contract.modality == "image":
        return {"name": "argmax/1"}
    if rule.positive_label != contract.labels[-1]:
        raise ValueError(f"the decision rule flags {rule.positive_label!r}, the model's last label is "
                         f"{contract.labels[-1]!r}")
    return rule.to_dict()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class BundleModel:
    """A verified bundle, loaded in `executorch.runtime` as the phone loads it."""

    path: Path
    manifest: dict
    contract: teacher.InputContract
    program: object  # executorch.runtime.Program: must outlive `method`, which points into it
    method: object  # executorch.runtime.Method

    @property
    def spec(self) -> dict:
        return self.manifest["bundle"]

    @property
    def decision(self) -> teacher.DecisionRule:
        """The night's decision rule the bundle carries (rr-series bundles)."""
        return teacher.DecisionRule.from_dict(self.spec["decision"])

    @property
    def severity(self) -> teacher.SeverityClasses:
        """How the night's AHI becomes a severity class (rr-series bundles)."""
        return teacher.SeverityClasses.from_dict(self.spec["severity"])

    def check_input(self, window: np.ndarray | torch.Tensor) -> torch.Tensor:
        """One input as the contract wants it, or BundleError saying what is wrong with it."""
        tensor = torch.as_tensor(window, dtype=torch.float32)
        if tuple(tensor.shape) != tuple(self.contract.shape):
            raise BundleError(f"input of shape {tuple(tensor.shape)}: the bundle takes {tuple(self.contract.shape)}")
        if not torch.isfinite(tensor).all():
            raise BundleError(f"input has {int((~torch.isfinite(tensor)).sum())} NaN or infinite values")
        return tensor

    def logits(self, window: np.ndarray | torch.Tensor) -> np.ndarray:
        """The .pte's logits for one input (checked first), run as the phone runs it."""
        (logits,) = self.method.execute([self.check_input(window)[None].contiguous()])
        return logits[0].numpy()

    def probabilities(self, window: np.ndarray | torch.Tensor) -> np.ndarray:
        return torch.softmax(torch.as_tensor(self.logits(window)).float(), dim=0).numpy()


def load_bundle(path: str | Path, public_key: str | Path | None = None) -> BundleModel:
    """Verify a bundle (its signature when `public_key` is given, then manifest, hash, preprocessing,
    contract) and load its .pte in the runtime."""
    from edge_export._signing import verify_signature  # _signing reads this module's names

    path = Path(path)
    manifest_path, pte_path = path / MANIFEST_NAME, path / PTE_NAME
    if not manifest_path.exists() or not pte_path.exists():
        missing = [p.name for p in (manifest_path, pte_path) if not p.exists()]
        raise BundleError(f"{path}: not a bundle (missing {', '.join(missing)})")
    if public_key is not None:
        verify_signature(path, public_key)
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as error:
        raise BundleError(f"{manifest_path}: not valid JSON ({error})") from error
    spec = manifest.get("bundle")
    if manifest.get("kind") != "bundle" or not spec or spec.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{manifest_path}: not a {BUNDLE_FORMAT} manifest")
    data = pte_path.read_bytes()
    if sha256_bytes(data) != spec["pte_sha256"]:
        raise BundleError(f"{pte_path}: sha256 {sha256_bytes(data)[:12]}... does not match the manifest's "
                          f"{spec['pte_sha256'][:12]}... ({len(data)} bytes): the file was truncated or changed")
    contract = teacher.InputContract.from_dict(spec["contract"])
    expected = preprocessing_spec(contract)
    if spec["preprocessing"] != expected:
        differences = sorted(key for key in {*expected, *spec["preprocessing"]}
                             if spec["preprocessing"].get(key) != expected.get(key))
        raise BundleError(
            f"{path}: the bundle's preprocessing differs from what this edgekit implements for its contract in "
            + "; ".join(f"{key}: bundle {spec['preprocessing'].get(key)!r}, edgekit {expected.get(key)!r}"
                        for key in differences)
            + ": re-export it")
    if contract.modality == "rr-series":
        try:
            teacher.DecisionRule.from_dict(spec["decision"])
            teacher.SeverityClasses.from_dict(spec.get("severity", {"name": "none"}))
        except ValueError as error:
            raise BundleError(f"{path}: {error}: re-export it") from error
    return BundleModel(path, manifest, contract, *load_program(data, contract, pte_path))


def load_program(data: bytes, contract: teacher.InputContract, where: str | Path = "model.pte"):
    """(program, its `forward` method) loaded in `executorch.runtime`, the method's signature checked
    against `contract`. Keep the program referenced while the method is used: the method lives in it."""
    from executorch.runtime import Runtime  # the runtime's native library loads only when a bundle is used

    try:
        program = Runtime.get().load_program(data)
        method = program.load_method("forward")
    except RuntimeError as error:
        raise BundleError(f"{where}: the ExecuTorch runtime cannot load it ({error})") from error
    _check_signature(method, contract, where)
    return program, method


def _check_signature(method, contract: teacher.InputContract, pte_path: str | Path) -> None:
    """The .pte's one input and output must be what the manifest's contract says."""
    meta = method.metadata
    if meta.num_inputs() != 1 or meta.num_outputs() != 1:
        raise BundleError(f"{pte_path}: {meta.num_inputs()} inputs and {meta.num_outputs()} outputs, expected 1 and 1")
    sizes = tuple(meta.input_tensor_meta(0).sizes())
    if sizes != (1, *contract.shape):
        raise BundleError(f"{pte_path}: the model takes input {sizes}, the manifest's contract says "
                          f"{(1, *contract.shape)}")
    outputs = tuple(meta.output_tensor_meta(0).sizes())
    if outputs != (1, len(contract.labels)):
        raise BundleError(f"{pte_path}: the model gives {outputs}, the contract has {len(contract.labels)} labels")
