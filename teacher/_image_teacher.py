"""Training and scoring image teachers (MNIST, Fashion-MNIST, CIFAR-10, any ImageFolder)."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from teacher._apnea_teacher import TrainedTeacher
from teacher._images import ImageData, load_image_dataset, pixel_stats
from teacher._models import get_entry, image_contract, list_models
from teacher._training import TrainConfig, fit, predict_proba

# Training recipes per dataset, for every architecture (overrides of TrainConfig's defaults). They
# are the field's standard recipes, fixed before any test-set run, not tuned: each run reports its
# validation curve on held-out training images next to the test figure (BENCHMARKS.md).
RECIPES = {
    "mnist": {"epochs": 12, "batch_size": 128, "lr": 2e-3, "weight_decay": 0.01, "augment": "shift"},
    "fashion-mnist": {"epochs": 20, "batch_size": 128, "lr": 2e-3, "weight_decay": 0.05, "augment": "shift"},
    "cifar10": {"epochs": 20, "batch_size": 256, "lr": 0.2, "optimizer": "sgd", "weight_decay": 5e-4,
                "label_smoothing": 0.1, "augment": "crop-flip"},
    "imagefolder": {"epochs": 20, "batch_size": 128, "lr": 2e-3, "weight_decay": 0.05, "augment": "none"},
}
DEFAULT_ARCH = {"mnist": "am_h1", "fashion-mnist": "unlearning_cnn", "cifar10": "resnet9_narrow",
                "imagefolder": "resnet9_narrow"}


def image_train_config(
    dataset: str,
    arch: str | None = None,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = False,
    progress: bool = True,
    **overrides,
) -> TrainConfig:
    """The full training configuration: the dataset's recipe, then `overrides` (None = keep), then
    the constructor arguments that fit the model to the data (channels, size, classes, pixel
    statistics). Without a `validation_size`, 10 % of the training images (at most 5,000) are held out.
    """
    arch = arch or DEFAULT_ARCH[dataset]
    if get_entry(arch).contract.modality != "image":
        raise ValueError(f"{arch} is not an image model; image models: {', '.join(list_models('image'))}")
    data = load_image_dataset(dataset, "train", data_dir, download=download, progress=progress)
    channels, height, width = data.shape
    if height != width:
        raise ValueError(f"{dataset}: {height}x{width} images; the registered image models take square images")
    mean, std = pixel_stats(dataset, data)
    arch_options = {"in_channels": channels, "image_size": height, "num_classes": len(data.classes),
                    "mean": list(mean), "std": list(std), **overrides.pop("arch_options", {})}
    settings = {**RECIPES[dataset], **{key: value for key, value in overrides.items() if value is not None}}
    if "validation_size" not in settings:  # 10 % of the training images, at most 5,000
        settings["validation_size"] = min(5000, len(data) // 10)
    return TrainConfig(dataset=dataset, arch=arch, arch_options=arch_options, **settings)


def split_validation(data: ImageData, size: int, seed: int) -> tuple[ImageData, ImageData | None]:
    """Hold out `size` training images (a seeded draw) for validation figures."""
    if size <= 0:
        return data, None
    if size >= len(data):
        raise ValueError(f"validation size {size} leaves no training images (of {len(data)})")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))

    def take(index):
        return ImageData(data.images[index], data.labels[index], data.classes, data.source, data.provenance)
    return take(order[size:]), take(order[:size])


def classification_figures(labels: np.ndarray, probabilities: np.ndarray, classes: tuple[str, ...]) -> dict:
    """Accuracy, per-class accuracy (the unlearning tables are per class), confusion matrix, NLL."""
    labels = np.asarray(labels)
    predictions = probabilities.argmax(axis=1)
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    per_class = {
        name: float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else float("nan")
        for i, name in enumerate(classes)
    }
    nll = float(-np.mean(np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, None))))
    return {
        "examples": int(len(labels)),
        "accuracy": float(np.mean(predictions == labels)),
        "per_class_accuracy": per_class,
        "nll": nll,
        "confusion": confusion.tolist(),
    }


def train_image_teacher(
    config: TrainConfig,
    data_dir: str | os.PathLike | None,
    work_dir: str | os.PathLike,
    *,
    device: str = "auto",
    resume: bool = False,
    download: bool = False,
    progress: bool = True,
) -> TrainedTeacher:
    """Train `config.arch` on the training split of `config.dataset` (minus the validation draw)."""
    data = load_image_dataset(config.dataset, "train", data_dir, download=download, progress=progress)
    train, validation = split_validation(data, config.validation_size, config.seed)
    labels = data.classes
    contract = image_contract(data.shape, labels, config.arch_options["mean"], config.arch_options["std"])

    def evaluate(model: nn.Module) -> dict:
        probabilities = predict_proba(model, validation.images)
        return {"val_accuracy": float(np.mean(probabilities.argmax(1) == validation.labels.numpy()))}

    model, checkpoint = fit(
        config, train.images, train.labels, work_dir,
        evaluate=evaluate if validation is not None else None, device=device, resume=resume, progress=progress,
    )
    seconds = [epoch["seconds"] for epoch in checkpoint["history"]]
    metrics = {
        "source": data.source,
        "train_examples": len(train),
        "train_loss": checkpoint["history"][-1]["train_loss"],
        "train_seconds": round(sum(seconds), 1),
        "seconds_per_epoch": round(float(np.mean(seconds)), 1),
    }
    if validation is not None:
        metrics["val_accuracy"] = checkpoint["history"][-1]["val_accuracy"]
    provenance = [{**data.provenance, "validation_examples": config.validation_size}]
    return TrainedTeacher(model, checkpoint, contract, provenance, metrics)


def evaluate_image_teacher(
    model: nn.Module, dataset: str, data_dir: str | os.PathLike | None = None, *, progress: bool = True
) -> dict:
    """Figures on the real test split of `dataset`, labelled with where its pixels came from."""
    test = load_image_dataset(dataset, "test", data_dir, progress=progress)
    probabilities = predict_proba(model, test.images)
    return {"dataset": dataset, "source": test.source, **classification_figures(test.labels.numpy(), probabilities, test.classes),
            "data": [test.provenance]}
