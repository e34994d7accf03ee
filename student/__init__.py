"""Students distilled from synthetic data alone (issue 4), and explanations of their decisions (issue 7)."""

from student._attribution import CaptumBaseline, blend, decisions, neutral_reference
from student._distill import STUDENT_RECIPES, student_config, student_targets, teacher_labeller, train_student
from student._explain import METHODS, PAPER_NEUROMASK, STOCHASTIC, make_explainer
from student._explain_metrics import deletion_insertion, gini, randomisation_check, randomised_copy, rank_correlation
from student._neuromask import NeuroMask, NeuroMaskConfig, laplacian
from student._night import explain_minutes, night_decisions, plot_minute, write_night_report
from student._relabel import VAE, RelabelConfig, RelabelDistillation, train_vae
from student._reports import format_student_figures

__all__ = [
    "METHODS",
    "PAPER_NEUROMASK",
    "STOCHASTIC",
    "STUDENT_RECIPES",
    "VAE",
    "CaptumBaseline",
    "NeuroMask",
    "NeuroMaskConfig",
    "RelabelConfig",
    "RelabelDistillation",
    "blend",
    "decisions",
    "deletion_insertion",
    "explain_minutes",
    "format_student_figures",
    "gini",
    "laplacian",
    "make_explainer",
    "neutral_reference",
    "night_decisions",
    "plot_minute",
    "randomisation_check",
    "randomised_copy",
    "rank_correlation",
    "student_config",
    "student_targets",
    "teacher_labeller",
    "train_student",
    "train_vae",
    "write_night_report",
]
