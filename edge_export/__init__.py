"""ExecuTorch bundles for phones (fp32 or int8 through XNNPACK) and the host replay that runs them
exactly as the phone does."""

from edge_export._bundle import (
    BUNDLE_FORMAT,
    PTE_NAME,
    BundleError,
    BundleModel,
    decision_rule,
    load_bundle,
    preprocessing_spec,
    load_program,
    sha256_bytes,
)
from edge_export._export import QUANTIZE_MODES, calibration_samples, lower_to_pte, write_bundle
from edge_export._replay import plot_night, replay_night, write_minutes_csv
