"""The training loop as plain functions: `train_one_epoch`, `predict_proba`, `fit`.

`fit` checkpoints after every epoch into its work directory (a plain dict, written atomically), and
picks up from that checkpoint when asked to resume, so an interrupted run loses at most one epoch.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from teacher._decision import DecisionRule
from teacher._models import create_model

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class TrainConfig:
    """Everything that defines a training run; written verbatim into the artifact.

    Defaults were chosen on validation nights carved from the learning set (see BENCHMARKS.md).
    """

    dataset: str = "apnea-ecg"
    arch: str = "apnea_cnn"
    arch_options: dict = field(default_factory=dict)  # overrides of the registry's constructor defaults
    epochs: int = 20
    batch_size: int = 128
    lr: float = 3e-3  # peak of the one-cycle schedule
    weight_decay: float = 0.05  # beat 0.01 in cross-validation: the nets overfit patients fast
    label_smoothing: float = 0.0
    # Soft targets (students): the loss is T^2 * CE(logits / T, targets), the distillation loss of
    # Hinton et al.; the targets must already be the teacher's softmax at the same T.
    temperature: float = 1.0
    # Students with a teacher at hand: this share of each batch is replaced by mixes of two samples
    # (weights drawn uniformly), labelled live by the teacher (`fit(label_batch=...)`), so the
    # student learns the teacher's function between the synthetic samples too, not only on them.
    mixup: float = 0.0
    optimizer: str = "adamw"  # or "sgd" (Nesterov momentum 0.9), the usual choice for CIFAR ResNets
    seed: int = 0
    # RR augmentation: scale a whole window by U(1 - s, 1 + s) (another resting heart rate) and add
    # Gaussian jitter of this many seconds. Off by default: with night-relative RR it cost 0.7
    # points of cross-validated accuracy (BENCHMARKS.md).
    rr_scale_jitter: float = 0.0
    rr_noise_s: float = 0.0
    # Extra copies of the training nights with simulated detector errors (jitter, missed and false
    # beats), so the model does not depend on the reference annotator's quality.
    noisy_beat_copies: int = 0
    # Images: "crop-flip" (pad 4, random 32x32 crop, horizontal flip; CIFAR-10), "shift" (pad 2,
    # random crop: digits must not be mirrored) or "none".
    augment: str = "none"
    # Images: training examples held out (seeded) to report validation figures each epoch.
    validation_size: int = 0
    # Apnea-ECG: what turns the minutes' probabilities into flags and the night's call.
    decision: DecisionRule = field(default_factory=DecisionRule)
    train_records: list[str] = field(default_factory=list)
    val_records: list[str] = field(default_factory=list)
    test_records: list[str] = field(default_factory=list)

    def __post_init__(self):
        if isinstance(self.decision, dict):  # from a manifest or checkpoint
            self.decision = DecisionRule.from_dict(self.decision)

    def to_dict(self) -> dict:
        return {**asdict(self), "decision": self.decision.to_dict()}


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def batch_transform(config: TrainConfig):
    """The per-batch training transform of a configuration, `transform(batch, generator)`, or None."""
    if config.dataset == "apnea-ecg":
        if config.rr_scale_jitter or config.rr_noise_s:
            return lambda batch, generator: augment_rr(batch, config, generator)
        return None
    if config.augment not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {config.augment!r}; known: {', '.join(AUGMENTATIONS)}")
    padding, flip = AUGMENTATIONS[config.augment]
    return lambda batch, generator: augment_images(to_float(batch), padding, flip, generator)


def augment_images(images: torch.Tensor, padding: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random crops of the zero-padded images (one offset per image) and random horizontal flips."""
    if padding:
        batch, _, height, width = images.shape
        padded = nn.functional.pad(images, (padding,) * 4)
        dy = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
        dx = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
        rows = (dy[:, None] + torch.arange(height))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(width))[:, None, None, :]
        images = padded[torch.arange(batch)[:, None, None, None], torch.arange(images.shape[1])[None, :, None, None],
                        rows, cols]
    if flip:
        mirrored = torch.rand(images.shape[0], generator=generator) < 0.5
        images = torch.where(mirrored[:, None, None, None], images.flip(-1), images)
    return images


# name -> (padding of the random crop, horizontal flip)
AUGMENTATIONS = {"none": (0, False), "shift": (2, False), "crop-flip": (4, True)}


def restores_global_rng(function):
    """For functions that seed PyTorch's global generator (weight init and dropout draw from it, so a
    seeded run has to seed it): the caller's random stream is put back when they return, so calling
    one does not silently reseed whatever the caller draws next."""

    @functools.wraps(function)
    def with_caller_rng_restored(*args, **kwargs):
        with torch.random.fork_rng():
            return function(*args, **kwargs)

    return with_caller_rng_restored


def to_float(inputs: torch.Tensor) -> torch.Tensor:
    """uint8 tensors are image pixels: to float in [0, 1]. Anything else: float32 as is."""
    return inputs.float().div_(255.0) if inputs.dtype == torch.uint8 else inputs.float()


def augment_rr(inputs: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """Random per-window RR scaling and timing jitter (training only)."""
    batch = inputs.shape[0]
    scale = 1.0 + (torch.rand(batch, 1, 1, generator=generator) * 2 - 1) * config.rr_scale_jitter
    noise = torch.randn(inputs.shape, generator=generator) * config.rr_noise_s
    return inputs * scale.to(inputs.device) + noise.to(inputs.device)


def train_one_epoch(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    config: TrainConfig,
    generator: torch.Generator,
    device: torch.device,
    progress: bool = True,
    description: str = "train",
    transform=None,
    label_batch=None,
) -> float:
    """One pass over shuffled training data; returns the mean loss.

    `transform(batch, generator)` prepares each batch on the CPU (augmentation, uint8 -> float).
    `label_batch(batch) -> targets` (the teacher) labels the batches that `config.mixup` mixes.
    """
    model.train()
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    order = torch.randperm(len(labels), generator=generator)
    total, seen = 0.0, 0
    batches = range(0, len(order), config.batch_size)
    for start in tqdm(batches, desc=description, unit="batch", leave=False, disable=not progress):
        index = order[start : start + config.batch_size]
        batch = inputs[index]
        if transform is not None:
            batch = transform(batch, generator)
        if batch.ndim == 4:  # images: oneDNN convolutions ran 1.2-1.5x faster channels-last here
            batch = batch.contiguous(memory_format=torch.channels_last)
        batch, target = batch.to(device), labels[index].to(device)
        if label_batch is not None and config.mixup > 0:
            batch, target = mix_and_relabel(to_float(batch), config.mixup, label_batch, generator)
        if target.is_floating_point():  # class probabilities: distillation at config.temperature
            loss = criterion(model(batch) / config.temperature, target) * config.temperature**2
        else:
            loss = criterion(model(batch), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(index)
        seen += len(index)
    return total / max(seen, 1)


def mix_and_relabel(batch: torch.Tensor, share: float, label_batch, generator: torch.Generator):
    """Replace the first `share` of a (shuffled) batch by convex mixes of two of its samples, then
    label the whole batch with `label_batch`."""
    count = round(share * len(batch))
    partners = torch.randperm(len(batch), generator=generator)[:count].to(batch.device)
    weights = torch.rand((count,) + (1,) * (batch.ndim - 1), generator=generator).to(batch.device)
    mixed = batch.clone()
    mixed[:count] = weights * batch[:count] + (1 - weights) * batch[partners]
    with torch.no_grad():
        return mixed, label_batch(mixed)


@torch.no_grad()
def predict_proba(
    model: nn.Module, inputs: np.ndarray | torch.Tensor, device: torch.device | str | None = None,
    batch_size: int = 1024,
) -> np.ndarray:
    """Softmax probabilities, (N, num_classes), in eval mode; uint8 inputs are pixels (see `to_float`).
    The batches go to `device`, by default wherever the model's weights are (the CPU if it has none)."""
    model.eval()
    if device is None:
        weight = next(model.parameters(), None)
        device = torch.device("cpu") if weight is None else weight.device
    device = torch.device(device)
    inputs = torch.as_tensor(inputs)
    chunks = [
        torch.softmax(model(to_float(inputs[start : start + batch_size]).to(device)), dim=1).cpu()
        for start in range(0, len(inputs), batch_size)
    ]
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), dtype=np.float32)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=config.lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay
        )
    raise ValueError(f"unknown optimizer {config.optimizer!r}; known: adamw, sgd")


def save_atomic(obj: dict, path: Path) -> None:
    """torch.save to a temporary file, fsync, then rename: readers never see half a file."""
    temporary = path.with_suffix(".tmp")
    with open(temporary, "wb") as handle:
        torch.save(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def trained_seconds(work_dir: str | os.PathLike) -> float:
    """Seconds the epochs saved in `work_dir`'s checkpoint took to train (0 without a checkpoint):
    a run's training time, epochs of an interrupted earlier attempt included."""
    checkpoint_path = Path(work_dir) / CHECKPOINT_NAME
    if not checkpoint_path.exists():
        return 0.0
    history = torch.load(checkpoint_path, map_location="cpu", weights_only=False)["history"]
    return sum(record["seconds"] for record in history)


@restores_global_rng
def fit(
    config: TrainConfig,
    train_inputs: np.ndarray,
    train_labels: np.ndarray,
    work_dir: str | os.PathLike,
    *,
    evaluate: "callable | None" = None,
    label_batch: "callable | None" = None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
) -> tuple[nn.Module, dict]:
    """Train `config.arch` on the given arrays with AdamW and a one-cycle schedule.

    Args:
        config: the run's configuration.
        train_inputs: (N, ...) float32 inputs in the model's raw units.
        train_labels: (N,) int64 class ids, or (N, classes) probabilities (soft targets).
        work_dir: where the per-epoch checkpoint lives.
        evaluate: optional `evaluate(model) -> dict` called after each epoch (validation figures).
        label_batch: a student's teacher, `label_batch(inputs) -> targets`; needed by `config.mixup`.
        device: "auto", "cpu", "cuda", ...
        resume: continue from `work_dir/checkpoint.pt` if it exists.
        progress: show tqdm bars.

    The per-batch transform (augmentation, pixel conversion) comes from `batch_transform(config)`.

    Returns:
        The trained model (eval mode, on CPU) and the final checkpoint dict
        (`model`, `optimizer`, `scheduler`, `epoch`, `config`, `history`).
    """
    if config.mixup and label_batch is None:
        raise ValueError("mixup needs the teacher to label the mixed samples (label_batch)")
    torch.manual_seed(config.seed)
    target_device = resolve_device(device)
    model = create_model(config.arch, **config.arch_options).to(target_device)
    if np.ndim(train_inputs) == 4:
        model = model.to(memory_format=torch.channels_last)
    inputs = torch.as_tensor(train_inputs)
    if inputs.dtype != torch.uint8:  # uint8 pixels stay compact until a batch is drawn
        inputs = inputs.float()
    labels = torch.as_tensor(train_labels)
    labels = labels.float() if labels.is_floating_point() else labels.long()  # probabilities or class ids
    steps_per_epoch = -(-len(labels) // config.batch_size)
    optimizer = make_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch
    )
    generator = torch.Generator().manual_seed(config.seed)
    transform = batch_transform(config)
    history: list[dict] = []
    start_epoch = 0

    Path(work_dir).mkdir(parents=True, exist_ok=True)
    checkpoint_path = Path(work_dir) / CHECKPOINT_NAME
    if resume and checkpoint_path.exists():
        checkpoint = torch.load(checkpoint_path, map_location=target_device, weights_only=False)
        if checkpoint["config"] != config.to_dict():
            raise ValueError(f"{checkpoint_path} was written by another configuration; cannot resume")
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        generator.set_state(checkpoint["generator"])
        torch.set_rng_state(checkpoint["torch_rng"])  # dropout masks continue as if never stopped
        history, start_epoch = checkpoint["history"], checkpoint["epoch"]

    epochs = tqdm(range(start_epoch, config.epochs), desc=f"{config.arch}", unit="epoch", disable=not progress,
                  initial=start_epoch, total=config.epochs)
    for epoch in epochs:
        started = time.perf_counter()
        loss = train_one_epoch(
            model, inputs, labels, optimizer, scheduler, config, generator, target_device, progress,
            description=f"epoch {epoch + 1}", transform=transform, label_batch=label_batch,
        )
        record = {"epoch": epoch + 1, "train_loss": loss, "seconds": time.perf_counter() - started}
        if evaluate is not None:
            record.update(evaluate(model))
        history.append(record)
        epochs.set_postfix({k: round(v, 4) for k, v in record.items() if isinstance(v, float)})
        checkpoint = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "epoch": epoch + 1,
            "config": config.to_dict(),
            "history": history,
        }
        save_atomic(checkpoint, checkpoint_path)

    model = model.cpu().eval()
    return model, {
        "model": model.state_dict(),
        "epoch": config.epochs,
        "config": config.to_dict(),
        "history": history,
    }
