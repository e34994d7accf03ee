"""Students distilled from synthetic data alone (issue 4), and explanations of their decisions (issue 7)."""

from student._attribution import CaptumBaseline, blend, decisions, neutral_reference
from student._distill import STUDENT_RECIPES, student_config, student_targets, teacher_labeller, train_student
from student._explain import METHODS, PAPER_NEUROMASK, STOCHASTIC, make_explainer
from student._explain_metrics import deletion_insertion, gini, randomisation_check, randomised_copy, rank_correlation
from student._neuromask import NeuroMask, NeuroMaskConfig, laplacian
from student._relabel import VAE, RelabelConfig, RelabelDistillation, train_vae
