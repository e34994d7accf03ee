"""Image classifiers of the papers the kit reproduces, plus one stronger CIFAR-10 network.

Every model takes float pixels in [0, 1], (B, C, H, W), and normalises them itself (`PixelNormalise`),
so a generator, a student or a phone feeds the same plain pixels the teacher saw. Channels and image
size are constructor arguments: the same architecture serves MNIST (1 x 28 x 28) and CIFAR-10
(3 x 32 x 32).

The AM paper (Nikolaidis et al. 2019, section 4) gives h1 as conv-maxpool-conv-maxpool-fc1-dropout-fc2
without widths; the widths here are those of the classic TensorFlow MNIST network it describes
(32 and 64 5x5 filters, 1024 hidden units). The unlearning paper (Zhang et al.) gives "two
convolution layers and a fully connected layer"; widths 32 and 64 with batch normalisation (64 and
128 trained 7x slower on 2 CPU cores).
"""

from __future__ import annotations

import torch
from torch import nn


class PixelNormalise(nn.Module):
    """(x - mean) / std per channel, with the statistics stored as buffers (they export with the model)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - self.mean) / self.std


def _default_stats(in_channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return (0.5,) * in_channels, (0.25,) * in_channels


class UnlearningPaperCNN(nn.Module):
    """The stochastic-teacher paper's model: two convolution layers and one fully connected layer."""

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
        widths: tuple[int, int] = (32, 64),
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
    ):
        super().__init__()
        default_mean, default_std = _default_stats(in_channels)
        self.normalise = PixelNormalise(mean or default_mean, std or default_std)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(widths[0], widths[1], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[1]),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(widths[1] * (image_size // 4) ** 2, num_classes))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.normalise(pixels)))


class AMPaperCNN(nn.Module):
    """h1 of the AM paper and its student relatives: conv-pool-conv-pool-fc1-dropout-fc2.

    Args:
        widths: filters of the convolutions (three entries add the third convolution of CNN_L).
        hidden: units of the fully connected layers before the classifier (two entries: CNN_L).
        pooling: "max" (h1) or "avg" (CNN_L).
        activation: "relu" (h1) or "elu" (CNN_L).
        kernel: odd kernel size of every convolution.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
        widths: tuple[int, ...] = (32, 64),
        hidden: tuple[int, ...] = (1024,),
        kernel: int = 5,
        pooling: str = "max",
        activation: str = "relu",
        dropout: float = 0.5,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
    ):
        super().__init__()
        default_mean, default_std = _default_stats(in_channels)
        self.normalise = PixelNormalise(mean or default_mean, std or default_std)
        act = {"relu": nn.ReLU, "elu": nn.ELU}[activation]
        pool = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}[pooling]
        layers, c_in, size = [], in_channels, image_size
        for width in widths:
            layers += [nn.Conv2d(c_in, width, kernel, padding=kernel // 2), act(), pool(2)]  # 28 -> 14 -> 7 -> 3
            size //= 2
            c_in = width
        self.features = nn.Sequential(*layers)
        head, features = [nn.Flatten()], c_in * size * size
        for units in hidden:
            head += [nn.Linear(features, units), act()]
            features = units
        head += [nn.Dropout(dropout), nn.Linear(features, num_classes)]
        self.classifier = nn.Sequential(*head)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.normalise(pixels)))


def _conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class _Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(channels, channels), _conv_bn(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet9(nn.Module):
    """The DAWNBench ResNet-9 (Page 2018) at a fraction of its width: fast to train on a CPU.

    prep -> [conv, pool, residual] -> [conv, pool] -> [conv, pool, residual] -> global max pool -> fc.
    `width` = 64 is the original; 16 keeps 1/16 of its multiply-adds and trains an epoch of
    CIFAR-10 in under a minute on 2 CPU cores.
    """

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 32,
        num_classes: int = 10,
        width: int = 16,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
    ):
        super().__init__()
        default_mean, default_std = _default_stats(in_channels)
        self.normalise = PixelNormalise(mean or default_mean, std or default_std)
        w = width
        self.features = nn.Sequential(
            _conv_bn(in_channels, w),
            _conv_bn(w, 2 * w), nn.MaxPool2d(2), _Residual(2 * w),
            _conv_bn(2 * w, 4 * w), nn.MaxPool2d(2),
            _conv_bn(4 * w, 8 * w), nn.MaxPool2d(2), _Residual(8 * w),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(8 * w, num_classes, bias=False)
        self.logit_scale = 0.125  # as the original: keeps early logits small

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.normalise(pixels))) * self.logit_scale
