"""ExecuTorch bundles for phones (fp32 or int8 through XNNPACK) and the host replay that runs them
exactly as the phone does."""

from edge_export._bundle import (
    BUNDLE_FORMAT,
    PTE_NAME,
    BundleError,
    BundleModel,
    decision_section,
    load_bundle,
    load_program,
    preprocessing_spec,
    sha256_bytes,
)
from edge_export._export import (
    CALIBRATION_SAMPLES,
    FP32_MAX_LOGIT_DIFFERENCE,
    INT8_MIN_DECISION_AGREEMENT,
    QUANTIZE_MODES,
    VERIFY_SAMPLES,
    ExportedProgram,
    calibration_samples_of,
    export,
    lower_to_pte,
    verify_pte,
    write_bundle,
)
from edge_export._signing import (
    SIGNATURE_NAME,
    SIGNATURE_SCHEME,
    new_signing_key,
    sign_bundle,
    verify_signature,
)
from edge_export._replay import plot_night, replay_night, write_minutes_csv

__all__ = [
    "BUNDLE_FORMAT",
    "CALIBRATION_SAMPLES",
    "FP32_MAX_LOGIT_DIFFERENCE",
    "INT8_MIN_DECISION_AGREEMENT",
    "PTE_NAME",
    "QUANTIZE_MODES",
    "SIGNATURE_NAME",
    "SIGNATURE_SCHEME",
    "VERIFY_SAMPLES",
    "BundleError",
    "BundleModel",
    "ExportedProgram",
    "calibration_samples_of",
    "decision_section",
    "export",
    "load_bundle",
    "load_program",
    "lower_to_pte",
    "new_signing_key",
    "plot_night",
    "preprocessing_spec",
    "replay_night",
    "sha256_bytes",
    "sign_bundle",
    "verify_pte",
    "verify_signature",
    "write_bundle",
    "write_minutes_csv",
]
