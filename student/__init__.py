"""Students distilled from synthetic data alone (issue 4), and explanations of their decisions (issue 7)."""

from student._distill import STUDENT_RECIPES, student_config, student_targets, teacher_labeller, train_student
