"""Synthetic datasets by activation maximisation through generators (Gen{h1}), and their audits."""

from synth._am import MODALITY_DEFAULTS, Harvest, SynthConfig, balanced_targets, penultimate_features, run_round
from synth._dataset import generate, load_synthetic, shard_paths
from synth._generator import GeneratorBank, ImageGenerator, SeriesGenerator, make_generator
