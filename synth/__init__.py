"""Synthetic datasets by activation maximisation through generators (Gen{h1}), and their audits."""

from synth._am import (
    MODALITY_DEFAULTS,
    Harvest,
    SynthConfig,
    balanced_targets,
    class_features,
    penultimate_features,
    run_round,
)
from synth._audit import (
    INTERPRETATION_SETS,
    AuditConfig,
    TrainClassifier,
    format_report,
    identification,
    interpretation,
    interpretation_rates,
    nearest_neighbour_distances,
    nearest_neighbour_ratio,
    predict_labels,
    split_minutes,
    split_teams,
)
from synth._dataset import generate, load_synthetic, set_statistics, shard_paths
from synth._generator import GeneratorBank, ImageGenerator, SeriesGenerator, make_generator

__all__ = [
    "INTERPRETATION_SETS",
    "MODALITY_DEFAULTS",
    "AuditConfig",
    "GeneratorBank",
    "Harvest",
    "ImageGenerator",
    "SeriesGenerator",
    "SynthConfig",
    "TrainClassifier",
    "balanced_targets",
    "class_features",
    "format_report",
    "generate",
    "identification",
    "interpretation",
    "interpretation_rates",
    "load_synthetic",
    "make_generator",
    "nearest_neighbour_distances",
    "nearest_neighbour_ratio",
    "penultimate_features",
    "predict_labels",
    "run_round",
    "set_statistics",
    "shard_paths",
    "split_minutes",
    "split_teams",
]
