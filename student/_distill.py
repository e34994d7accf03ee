"""Students: small networks trained on a synthetic set alone, scored on the real test set.

The student never sees a real example: its inputs are the synthetic samples, its targets the
teacher's recorded logits (soft labels, softmax at temperature T, loss scaled by T^2) or their
argmax (hard labels). Its input contract is the teacher's: same window or image, same units.
"""

from __future__ import annotations

import copy
import os

import torch

import teacher
from synth._dataset import load_synthetic

# Student recipes: the teacher dataset's optimiser settings without augmentation (the synthetic set
# is the whole training distribution; random shifts lowered MNIST students in the settings study of
# BENCHMARKS.md), overridable from the command line. Soft labels at temperature 4 beat 1 for ten
# image classes; for the two apnea classes 1 is better (same study).
STUDENT_RECIPES = {
    # Apnea: the teacher labels mixes of synthetic windows as the student trains, for long (patient,
    # consistent distillation). On the validation nights, at the teacher's threshold: 85.0 % with 80
    # epochs, 82.7 % mean of three sets with 40, and 74-81 % (best threshold) without mixing, with a
    # threshold that moved from 0.1 to 0.45 between runs (BENCHMARKS.md). A mixed student's own
    # decision threshold is 0.3: on unseen nights its apnea probabilities sit below its teacher's, and
    # 0.3 beat the teacher's 0.45 in 5 of 6 mixed students on the validation nights (+1.3 points).
    "apnea-ecg": {"epochs": 80, "temperature": 1.0, "mixup": 1.0, "decision_threshold": 0.3},
    "mnist": {"epochs": 15, "batch_size": 128, "lr": 2e-3, "weight_decay": 0.01, "temperature": 4.0},
    "fashion-mnist": {"epochs": 15, "batch_size": 128, "lr": 2e-3, "weight_decay": 0.01, "temperature": 4.0},
    "cifar10": {"epochs": 20, "batch_size": 256, "lr": 0.2, "optimizer": "sgd", "weight_decay": 5e-4,
                "temperature": 4.0},
    "imagefolder": {"epochs": 15, "batch_size": 128, "lr": 2e-3, "weight_decay": 0.01, "temperature": 4.0},
}
# Constructor arguments that describe the data, not the architecture: a student inherits them.
DATA_OPTIONS = ("length", "in_channels", "image_size", "num_classes", "mean", "std")


def student_config(teacher_config: dict, arch: str, *, labels: str, temperature: float | None = None,
                   **overrides) -> teacher.TrainConfig:
    """The student's training configuration, derived from its teacher's (temperature None: the recipe's)."""
    if labels not in ("soft", "hard"):
        raise ValueError(f"labels must be 'soft' or 'hard', not {labels!r}")
    dataset = teacher_config["dataset"]
    settings = dict(STUDENT_RECIPES[dataset])
    recipe_temperature = settings.pop("temperature")
    temperature = recipe_temperature if temperature is None else temperature
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    teacher_modality = teacher.get_entry(teacher_config["arch"]).contract.modality
    if teacher.get_entry(arch).contract.modality != teacher_modality:
        raise ValueError(f"{arch} does not take {teacher_modality} inputs like its teacher {teacher_config['arch']}")
    arch_options = {key: value for key, value in teacher_config.get("arch_options", {}).items() if key in DATA_OPTIONS}
    settings = {**settings, **{key: value for key, value in overrides.items() if value is not None}}
    # The teacher's decision rule, with the student's own threshold where the recipe or the caller gives one.
    decision = teacher.DecisionRule.from_dict(teacher_config["decision"])
    if "decision_threshold" in settings:
        decision = decision.with_threshold(settings.pop("decision_threshold"))
    return teacher.TrainConfig(dataset=dataset, arch=arch, arch_options=arch_options, decision=decision,
                               temperature=temperature if labels == "soft" else 1.0, **settings)


def student_targets(logits: torch.Tensor, labels: str, temperature: float) -> torch.Tensor:
    """Soft: the teacher's softmax at `temperature`; hard: its argmax."""
    if labels == "hard":
        return logits.argmax(dim=1)
    return torch.softmax(logits / temperature, dim=1)


def teacher_labeller(teacher_model: torch.nn.Module, labels: str, temperature: float):
    """`label_batch(inputs) -> targets` for `teacher.fit`: the frozen teacher's targets as
    `student_targets` makes them from stored logits. It labels with its own copy of the teacher,
    moved to the batches' device, so that the caller's teacher stays where it was."""
    labeller = copy.deepcopy(teacher_model).eval()

    def label_batch(inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return student_targets(labeller.to(inputs.device)(inputs), labels, temperature)
    return label_batch


def train_student(config: teacher.TrainConfig, synth_dir: str | os.PathLike, labels: str,
                  work_dir: str | os.PathLike, *, size: int | None = None, teacher_model=None,
                  device: str = "auto", resume: bool = False, progress: bool = True):
    """Fit the student on the synthetic set in `synth_dir` (its first `size` samples if given);
    returns (model, checkpoint). `config.mixup` needs `teacher_model`, which labels the mixes."""
    synthetic = load_synthetic(synth_dir)
    if size is not None:
        if not 0 < size <= len(synthetic["targets"]):
            raise ValueError(f"size {size} is not within the synthetic set's {len(synthetic['targets'])} samples")
        synthetic = {key: value[:size] for key, value in synthetic.items()}
    targets = student_targets(synthetic["logits"], labels, config.temperature)
    label_batch = teacher_labeller(teacher_model, labels, config.temperature) if config.mixup else None
    return teacher.fit(config, synthetic["inputs"], targets, work_dir, label_batch=label_batch, device=device,
                       resume=resume, progress=progress)
