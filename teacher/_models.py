"""The model registry: every architecture with the input contract it expects.

Entries are registered explicitly in `REGISTRY` below (no import side effects). The contract travels
with the model into artifacts and, later, into the exported bundle's manifest, so the code that feeds
a model never guesses its shape, rate or units.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch import nn

from teacher._image_models import AMPaperCNN, ResNet9, UnlearningPaperCNN
from teacher._rr import WindowSpec


@dataclass(frozen=True)
class InputContract:
    """What a model eats.

    Attributes:
        modality: "rr-series" (RR intervals on a regular grid) or "image".
        shape: per-example input shape, e.g. (1, L) for a series of L samples.
        units: physical units of the raw input (normalisation happens inside the model).
        grid_hz: sampling rate of the series (rr-series only).
        context_minutes: minutes of context each side of the scored minute (rr-series only).
        night_relative: each night rescaled so its median RR is 0.95 s (rr-series only).
        labels: class names, index = class id.
        normalisation: how the model normalises its raw input internally.
    """

    modality: str
    shape: tuple[int, ...]
    units: str
    labels: tuple[str, ...]
    normalisation: str
    grid_hz: float | None = None
    context_minutes: int | None = None
    night_relative: bool | None = None
    dtype: str = "float32"

    def to_dict(self) -> dict:
        return asdict(self)

    def window_spec(self) -> WindowSpec:
        """How a night's RR becomes this model's input (rr-series only)."""
        if self.modality != "rr-series":
            raise ValueError(f"a {self.modality} model takes no RR windows")
        return WindowSpec(grid_hz=self.grid_hz, context_minutes=self.context_minutes,
                          night_relative=bool(self.night_relative))

    @classmethod
    def from_dict(cls, values: dict) -> "InputContract":
        """The inverse of `to_dict` on a manifest's JSON (lists back to tuples)."""
        return cls(**{**values, "shape": tuple(values["shape"]), "labels": tuple(values["labels"])})


# Typical adult RR interval and its spread across nights: a fixed affine map to unit scale that
# needs no statistics from the data (and so is identical on the server and on the phone).
RR_CENTER_S = 0.95
RR_SCALE_S = 0.15


class RRNormalise(nn.Module):
    """Raw RR seconds -> two channels: the absolute level and the deviation from the window's mean
    (and, with `smooth_samples`, one more: the deviation low-passed by a moving average).

    The deviation channel carries the cyclic variation of heart rate that apneas cause, independent
    of each patient's resting rate; the level channel keeps bradycardia/tachycardia information.
    """

    def __init__(self, level: bool = True, smooth_samples: int = 0):
        super().__init__()
        self.level = level
        self.smooth_samples = smooth_samples
        self.channels = 1 + int(level) + int(smooth_samples > 0)

    def forward(self, rr: torch.Tensor) -> torch.Tensor:  # (B, 1, L) seconds
        batch, _, length = rr.shape
        # The window's mean as a 4-D global average: the form XNNPACK runs (it delegates mean.dim
        # only over the inner dimensions of 4-D tensors).
        mean = rr.reshape(batch, 1, 1, length).mean(dim=(-2, -1), keepdim=True).reshape(batch, 1, 1)
        deviation = (rr - mean) / (RR_SCALE_S / 3)
        channels = [(rr - RR_CENTER_S) / RR_SCALE_S] if self.level else []
        channels.append(deviation)
        if self.smooth_samples:
            # The deviation averaged over a few breaths: respiratory sinus arrhythmia (3-6 s cycles)
            # averages out, the slower cyclic variation of apneas (30-90 s) stays.
            half = self.smooth_samples // 2
            smooth = nn.functional.avg_pool2d(deviation.reshape(batch, 1, 1, length), (1, 2 * half + 1),
                                              stride=1, padding=(0, half), count_include_pad=False)
            channels.append(smooth.reshape(batch, 1, length))
        return torch.cat(channels, dim=1) if len(channels) > 1 else deviation  # (B, channels, L)


class MaxPool1dAs2d(nn.Module):
    """`nn.MaxPool1d(pool)` computed as a 2-D max pool over (B, C, 1, L), with no indices.

    Exported, `MaxPool1d` becomes `max_pool2d_with_indices`, which the XNNPACK partitioner leaves
    to the portable kernels: the apnea .pte then ran in five pieces, 2.5x slower than eager
    PyTorch. As `max_pool2d` with an explicit stride the whole network is one XNNPACK subgraph.
    The same numbers, and no parameters: checkpoints load either way.
    """

    def __init__(self, pool: int):
        super().__init__()
        self.pool = pool

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # (B, C, L)
        batch, channels, length = inputs.shape
        window = (1, self.pool)
        pooled = nn.functional.max_pool2d(inputs.reshape(batch, channels, 1, length), window, window)
        return pooled.reshape(batch, channels, length // self.pool)


def _conv_block(c_in: int, c_out: int, kernel: int, pool: int) -> nn.Sequential:
    # Odd kernels with symmetric "same" padding: exported 1-D convolutions need explicit padding.
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm1d(c_out),
        nn.ReLU(),
        MaxPool1dAs2d(pool),
    )


class ApneaCNN(nn.Module):
    """1-D CNN over a minute's RR window with context; the output logits score the centre minute.

    The last feature map is flattened, not globally pooled, so the classifier knows which part of
    the window is the minute being scored and which is context.

    Args:
        length: input samples (window minutes * 60 * grid rate).
        widths: channels of the convolution stages.
        kernel: odd kernel size of every convolution.
        pool: max-pool factor after each stage.
        hidden: units of the hidden fully connected layer.
        dropout: dropout before the classifier.
        level_channel: feed the absolute RR level besides the deviation from the window's mean.
        smooth_samples: with > 0, one more channel: the deviation averaged over this many samples
            (`RRNormalise`). Off: it did not help in cross-validation (BENCHMARKS.md).
    """

    def __init__(
        self,
        length: int,
        widths: tuple[int, ...] = (16, 32, 32, 48),
        kernel: int = 7,
        pool: int = 4,
        hidden: int = 32,
        dropout: float = 0.3,
        level_channel: bool = True,
        smooth_samples: int = 0,
        num_classes: int = 2,
    ):
        super().__init__()
        self.normalise = RRNormalise(level=level_channel, smooth_samples=smooth_samples)
        stages, c_in, steps = [], self.normalise.channels, length
        for width in widths:
            stages.append(_conv_block(c_in, width, kernel, pool if steps >= pool * 2 else 1))
            steps = steps // pool if steps >= pool * 2 else steps
            c_in = width
        self.features = nn.Sequential(*stages)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(c_in * steps, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # (B, 1, L) RR seconds
        return self.classifier(self.features(self.normalise(inputs)))  # (B, num_classes)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    contract: InputContract
    description: str
    defaults: dict = field(default_factory=dict)


def rr_contract(spec: WindowSpec) -> InputContract:
    """The contract of an apnea model reading `spec`'s windows: its shape follows from the spec."""
    return InputContract(
        modality="rr-series",
        shape=(1, spec.length),
        units="s",
        labels=("normal", "apnea"),
        normalisation=f"inside the model: (rr - {RR_CENTER_S}) / {RR_SCALE_S} and window-mean deviation",
        grid_hz=spec.grid_hz,
        context_minutes=spec.context_minutes,
        night_relative=spec.night_relative,
    )


# The apnea models' window: 5 minutes of RR at 4 Hz, the scored minute with 2 minutes each side
# (4 each side did not help in cross-validation: benchmarks/notes/apnea-teacher.md). Changing the
# context is this one line: contracts, model widths, preprocessing and bundles follow from it.
APNEA_WINDOW = WindowSpec(grid_hz=4.0, context_minutes=2, night_relative=True)
APNEA_CONTRACT = rr_contract(APNEA_WINDOW)


def image_contract(
    shape: tuple[int, int, int],
    labels: tuple[str, ...],
    mean: tuple[float, ...],
    std: tuple[float, ...],
) -> InputContract:
    return InputContract(
        modality="image",
        shape=tuple(shape),
        units="pixel intensity in [0, 1]",
        labels=tuple(labels),
        normalisation=f"inside the model: (x - {tuple(mean)}) / {tuple(std)} per channel",
    )


MNIST_CONTRACT = image_contract((1, 28, 28), tuple(str(i) for i in range(10)), (0.1307,), (0.3081,))
# The AM paper's h1 and the students it is compared with (its section 4.1; widths in _image_models).
AM_H1 = {"widths": (32, 64), "hidden": (1024,)}
# The paper gives h1 no widths ("a small CNN"); at half of them a teacher pass costs a quarter of the
# multiply-adds, which is what synthesis spends its time on (BENCHMARKS.md, synthesis time).
AM_H1_HALF = {"widths": (16, 32), "hidden": (512,)}

REGISTRY: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in [
        ModelEntry(
            name="apnea_cnn",
            builder=ApneaCNN,
            contract=APNEA_CONTRACT,
            description="apnea teacher: 4-stage 1-D CNN over 5 minutes of RR at 4 Hz",
            defaults={"length": APNEA_WINDOW.length},
        ),
        ModelEntry(
            name="apnea_cnn_small",
            builder=ApneaCNN,
            contract=APNEA_CONTRACT,
            description="apnea student: apnea_cnn at half width (8, 16, 16, 24), 16 hidden units",
            defaults={"length": APNEA_WINDOW.length, "widths": (8, 16, 16, 24), "hidden": 16},
        ),
        ModelEntry(
            name="apnea_mlp",
            builder=ApneaCNN,
            contract=APNEA_CONTRACT,
            description="no convolutions: one hidden layer (64) over the whole window (a member of the audit's set S)",
            defaults={"length": APNEA_WINDOW.length, "widths": (), "hidden": 64},
        ),
        ModelEntry(
            name="unlearning_cnn",
            builder=UnlearningPaperCNN,
            contract=MNIST_CONTRACT,
            description="stochastic-teacher paper's model: 2 convolutions (32, 64) + 1 fully connected",
        ),
        ModelEntry(
            name="am_h1",
            builder=AMPaperCNN,
            contract=MNIST_CONTRACT,
            description="AM paper's teacher h1: conv-maxpool-conv-maxpool-fc1-dropout-fc2 (32, 64, 1024)",
            defaults=AM_H1,
        ),
        ModelEntry(
            name="am_h1_half",
            builder=AMPaperCNN,
            contract=MNIST_CONTRACT,
            description="h1 at half width (16, 32, 512): a quarter of h1's multiply-adds per synthesis step",
            defaults=AM_H1_HALF,
        ),
        ModelEntry(
            name="cnn_id",
            builder=AMPaperCNN,
            contract=MNIST_CONTRACT,
            description="AM paper's student CNN_ID: the same architecture as h1",
            defaults=AM_H1,
        ),
        ModelEntry(
            name="cnn_small",
            builder=AMPaperCNN,
            contract=MNIST_CONTRACT,
            description="AM paper's student CNN_S: h1 with half the channels and units (16, 32, 512)",
            defaults=AM_H1_HALF,
        ),
        ModelEntry(
            name="cnn_small_half",
            builder=AMPaperCNN,
            contract=MNIST_CONTRACT,
            description="CNN_S of am_h1_half: half its channels and units (8, 16, 256)",
            defaults={"widths": (8, 16), "hidden": (256,)},
        ),
        ModelEntry(
            name="cnn_large",
            builder=AMPaperCNN,
            contract=MNIST_CONTRACT,
            description="AM paper's student CNN_L: one more convolution and fc, average pooling, ELU",
            defaults={"widths": (32, 64, 128), "hidden": (1024, 256), "pooling": "avg", "activation": "elu"},
        ),
        ModelEntry(
            name="cnn_tiny",
            builder=AMPaperCNN,
            contract=MNIST_CONTRACT,
            description="AM paper's student CNN_s: fewer weights than CNN_S (8, 16, 64)",
            defaults={"widths": (8, 16), "hidden": (64,)},
        ),
        ModelEntry(
            name="mlp",
            builder=AMPaperCNN,
            contract=MNIST_CONTRACT,
            description="AM paper's MLP: no convolutions, three hidden ReLU layers (512, 256, 128)",
            defaults={"widths": (), "hidden": (512, 256, 128), "dropout": 0.2},
        ),
        ModelEntry(
            name="resnet9_narrow",
            builder=ResNet9,
            contract=image_contract((3, 32, 32), ("airplane", "automobile", "bird", "cat", "deer", "dog",
                                                  "frog", "horse", "ship", "truck"),
                                    (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
            description="stronger small CIFAR-10 network: ResNet-9 at width 16 (1/16 of its compute)",
        ),
    ]
}


def list_models(modality: str | None = None) -> list[str]:
    return [name for name, entry in REGISTRY.items() if modality in (None, entry.contract.modality)]


def get_entry(name: str) -> ModelEntry:
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def create_model(name: str, **overrides) -> nn.Module:
    """Build a registered model; `overrides` replace its default constructor arguments."""
    entry = get_entry(name)
    return entry.builder(**{**entry.defaults, **overrides})
