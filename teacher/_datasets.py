"""What each dataset offers the stages above it, behind one interface: training a teacher, scoring
a model on the real test data, the examples a teacher trained on (for unlearning and audits) and
unseen real examples of the same kind.

The stages ask `dataset(name)` instead of switching on the dataset's name; adding a dataset is one
entry in `DATASET_HANDLERS` (tests/teacher/test_datasets.py runs every entry through the interface).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from teacher._apnea import ApneaWindows, load_windows, official_split
from teacher._apnea_io import TEST_RECORDS, download_apnea_ecg
from teacher._apnea_teacher import (
    TrainedTeacher,
    decision_accuracy,
    evaluate_apnea_teacher,
    model_contract,
    train_apnea_teacher,
    training_windows,
)
from teacher._image_teacher import evaluate_image_teacher, image_train_config, split_validation, train_image_teacher
from teacher._images import IMAGE_DATASETS, ImageData, load_image_dataset
from teacher._training import TrainConfig
from teacher._unlearn_proof import Examples


@dataclass
class TeacherData:
    """What a teacher trained on (D), with each example's key (`a03:120`, or the image's index in
    the training split) and group (its night, or its class)."""

    train: Examples
    keys: np.ndarray
    groups: np.ndarray


@dataclass
class RealData:
    """A teacher's real training examples and unseen real examples of the same kind (audits)."""

    train_inputs: torch.Tensor
    train_labels: torch.Tensor
    heldout_inputs: torch.Tensor
    heldout_labels: torch.Tensor
    heldout_source: str


class ApneaECG:
    """PhysioNet Apnea-ECG: nights of RR windows, one per labelled minute; patients are nights."""

    name = "apnea-ecg"
    has_patients = True

    def train_config(self, data_dir, *, arch: str | None = None, epochs: int | None = None, seed: int = 0,
                     validation: bool = True, validation_seed: int = 0, validation_size: int | None = None,
                     train_records: list[str] | None = None, val_records: list[str] | None = None,
                     download: bool = False, progress: bool = True) -> TrainConfig:
        """The shipped recipe on the learning nights less the validation nights `validation_seed`
        carves out (all 35 without `validation`), or on `train_records` / `val_records` as given;
        scored on x01-x35. `download` fetches the nights from PhysioNet first."""
        if validation_size is not None:
            raise ValueError("a validation size counts images; an Apnea-ECG teacher validates on nights "
                             "(a validation seed, or the validation records)")
        if download:
            download_apnea_ecg(data_dir)
        if train_records:
            split = {"train": list(train_records), "val": list(val_records or [])}
        else:
            split = official_split(validation_seed if validation else None)
        return TrainConfig(dataset=self.name, arch=arch or "apnea_cnn", epochs=epochs or TrainConfig.epochs,
                           seed=seed, train_records=split["train"], val_records=split["val"],
                           test_records=list(TEST_RECORDS))

    def train(self, config: TrainConfig, data_dir, work_dir, *, device: str = "auto", resume: bool = False,
              download: bool = False, progress: bool = True) -> TrainedTeacher:
        return train_apnea_teacher(config, data_dir, work_dir, device=device, resume=resume, progress=progress)

    def evaluate(self, model: nn.Module, config: TrainConfig, data_dir, *, records: list[str] | None = None,
                 beats: str = "annotations", progress: bool = True) -> dict:
        """Every labelled minute with signal of `records` (default x01-x35) with the config's decision
        rule, on the annotated beats or the detector's (`beats`); `scored_on` names the nights."""
        records = list(records or TEST_RECORDS)
        contract = model_contract(config.arch, config.arch_options)
        figures = evaluate_apnea_teacher(model, contract, records, data_dir, rule=config.decision, beats=beats,
                                         progress=progress)
        scored_on = ",".join(records) + ("" if beats == "annotations" else f" ({beats} beats)")
        return {"scored_on": scored_on, **figures}

    def summary(self, figures: dict) -> dict:
        """The figures a manifest keeps: per minute, and per night without the night-by-night rows."""
        return {"minute": figures["minute"],
                "night": {key: value for key, value in figures["night"].items() if key != "per_night"}}

    def training_examples(self, config: TrainConfig, data_dir, progress: bool = True) -> TeacherData:
        """Every labelled minute of the teacher's training and validation nights (a patient's
        request removes the night from both), keyed `record:minute`, grouped by night."""
        records = config.train_records + [r for r in config.val_records if r not in config.train_records]
        train, _ = training_windows(replace(config, train_records=records), data_dir, progress)
        keys = np.array([f"{record}:{minute}" for record, minute in zip(train.records, train.minutes)])
        return TeacherData(train, keys, train.records.astype(str))

    def held_out(self, config: TrainConfig, data_dir, *, records: list[str] | None = None,
                 progress: bool = True) -> tuple[ApneaWindows, object]:
        """(test examples, score): unseen nights (`records`, else the recipe's test nights, else
        x01-x35) and the model's accuracy with the teacher's decision rule."""
        spec = model_contract(config.arch, config.arch_options).window_spec()
        records = records or config.test_records or list(TEST_RECORDS)
        test, _ = load_windows(records, data_dir, spec, progress=progress)
        return test.select(test.labels >= 0), decision_accuracy(config.decision)

    def real_data(self, config: TrainConfig, data_dir, progress: bool = True) -> RealData:
        """The teacher's training nights, and its validation nights as the unseen ones, else its test
        nights (the demo's data holds one test night, not all of x01-x35)."""
        spec = model_contract(config.arch, config.arch_options).window_spec()
        train, _ = load_windows(config.train_records, data_dir, spec, progress=progress)
        if config.val_records:
            heldout_records, heldout_source = config.val_records, "validation nights"
        else:
            heldout_records = config.test_records or list(TEST_RECORDS)
            heldout_source = ("test nights x01-x35" if list(heldout_records) == list(TEST_RECORDS)
                              else f"test nights {','.join(heldout_records)}")
        heldout, _ = load_windows(heldout_records, data_dir, spec, progress=progress)
        train_rows, heldout_rows = train.labels >= 0, heldout.labels >= 0
        return RealData(torch.as_tensor(train.inputs[train_rows]), torch.as_tensor(train.labels[train_rows]),
                        torch.as_tensor(heldout.inputs[heldout_rows]), torch.as_tensor(heldout.labels[heldout_rows]),
                        heldout_source=heldout_source)


class ImageDataset:
    """An image classification dataset read through torchvision: its train and test splits."""

    has_patients = False

    def __init__(self, name: str):
        self.name = name

    def train_config(self, data_dir, *, arch: str | None = None, epochs: int | None = None, seed: int = 0,
                     validation: bool = True, validation_seed: int = 0, validation_size: int | None = None,
                     train_records: list[str] | None = None, val_records: list[str] | None = None,
                     download: bool = False, progress: bool = True) -> TrainConfig:
        """The dataset's recipe (`image_train_config`), holding out `validation_size` training images
        (none without `validation`); the validation draw follows `seed`. `download` fetches the
        dataset through torchvision."""
        if train_records or val_records:
            raise ValueError(f"training and validation records name Apnea-ECG nights; {self.name} holds out "
                             "training images instead (a validation size)")
        return image_train_config(self.name, arch, data_dir, download=download, progress=progress, epochs=epochs,
                                  seed=seed, validation_size=validation_size if validation else 0)

    def train(self, config: TrainConfig, data_dir, work_dir, *, device: str = "auto", resume: bool = False,
              download: bool = False, progress: bool = True) -> TrainedTeacher:
        return train_image_teacher(config, data_dir, work_dir, device=device, resume=resume, download=download,
                                   progress=progress)

    def evaluate(self, model: nn.Module, config: TrainConfig, data_dir, *, records: list[str] | None = None,
                 beats: str = "annotations", progress: bool = True) -> dict:
        """Accuracy, per class and confusion on the test split (`records` and `beats` do not apply)."""
        if beats != "annotations":
            raise ValueError(f"beats={beats!r} applies to ECG nights; {self.name} is images")
        return {"scored_on": "test", **evaluate_image_teacher(model, self.name, data_dir, progress=progress)}

    def summary(self, figures: dict) -> dict:
        return {key: value for key, value in figures.items() if key not in ("confusion", "data", "scored_on")}

    def training_examples(self, config: TrainConfig, data_dir, progress: bool = True) -> TeacherData:
        """The training images the teacher trained on (its validation draw left out), keyed by their
        index in the training split, grouped by class."""
        data = load_image_dataset(self.name, "train", data_dir, progress=progress)
        order = torch.arange(len(data))
        kept, _ = split_validation(ImageData(data.images, order, data.classes, data.source, data.provenance),
                                   config.validation_size, config.seed)
        index = kept.labels  # the training split's indices of the images the teacher trained on
        labels = data.labels[index]
        return TeacherData(Examples(data.images[index], labels), index.numpy().astype(str),
                           labels.numpy().astype(str))

    def held_out(self, config: TrainConfig, data_dir, *, records: list[str] | None = None,
                 progress: bool = True) -> tuple[Examples, None]:
        """(the test split, None): a model's score on images is its plain accuracy."""
        test = load_image_dataset(self.name, "test", data_dir, progress=progress)
        return Examples(test.images, test.labels), None

    def real_data(self, config: TrainConfig, data_dir, progress: bool = True) -> RealData:
        train = load_image_dataset(self.name, "train", data_dir, progress=progress)
        test = load_image_dataset(self.name, "test", data_dir, progress=progress)
        return RealData(train.images, train.labels, test.images, test.labels,
                        heldout_source=f"{test.source} test split")


DATASET_HANDLERS = {"apnea-ecg": ApneaECG(), **{name: ImageDataset(name) for name in IMAGE_DATASETS}}
DATASETS = tuple(DATASET_HANDLERS)


def dataset(name: str) -> ApneaECG | ImageDataset:
    """The handler of a dataset by its name in a TrainConfig."""
    if name not in DATASET_HANDLERS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASET_HANDLERS)}")
    return DATASET_HANDLERS[name]
