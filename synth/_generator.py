"""The generator G of Gen{h1}: transposed convolutions from uniform noise Z to bounded samples.

G is deliberately small and has no normalisation layers: many copies are optimised side by side
(`GeneratorBank`), each with only a handful of noise vectors, and each copy must stay independent of
the others. The output is bounded by a sigmoid (the paper's norm bound R, in the l-infinity norm),
scaled into the range of the teacher's raw input: pixels in [0, 1], or RR intervals within the
physiological limits the RR cleaning uses.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call, stack_module_state

from teacher import NIGHT_MEDIAN_RR_S

# RR limits of the cleaning step (teacher._rr): a synthetic window stays a plausible heart.
RR_RANGE_S = (0.3, 2.0)


def output_range(modality: str) -> tuple[float, float]:
    return RR_RANGE_S if modality == "rr-series" else (0.0, 1.0)


def neutral_input(modality: str) -> float:
    """Where a fresh generator's output starts: a black image (the MNIST background), or a steady
    heart at the night-median RR the apnea windows are scaled to. From mid-range grey (or a 1.15 s
    heart) AM stops at textures a few steps away; from the neutral input it must add structure."""
    return NIGHT_MEDIAN_RR_S if modality == "rr-series" else 0.0


def _start_offset(start: float | None, value_range: tuple[float, float]) -> float:
    """Logit that makes a fresh generator's sigmoid output sit near `start` (None: mid-range)."""
    if start is None:
        return 0.0
    low, high = value_range
    fraction = min(max((start - low) / (high - low), 0.02), 0.98)
    return math.log(fraction / (1 - fraction))


class ImageGenerator(nn.Module):
    """z (latent) -> fc -> (64, s/4, s/4) -> 2 x [transposed conv, stride 2] -> (C, s, s) in [low, high]."""

    def __init__(self, shape: tuple[int, int, int], latent_dim: int = 64, width: int = 64,
                 value_range: tuple[float, float] = (0.0, 1.0), start: float | None = None):
        super().__init__()
        channels, size, _ = shape
        if size % 4:
            raise ValueError(f"image generator needs a side divisible by 4, got {size}")
        self.first_map = (width, size // 4, size // 4)
        self.project = nn.Linear(latent_dim, width * (size // 4) ** 2)
        self.body = nn.Sequential(
            nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(width // 2, channels, 4, stride=2, padding=1),
        )
        self.low, self.high = value_range
        self.offset = _start_offset(start, value_range)

    def forward(self, z: torch.Tensor, start_logits: torch.Tensor | None = None) -> torch.Tensor:
        """`start_logits` (one per sample, output-shaped) replaces the constant start offset."""
        x = self.project(z).view(-1, *self.first_map)
        offset = self.offset if start_logits is None else start_logits
        return self.low + (self.high - self.low) * torch.sigmoid(self.body(x) + offset)


class SeriesGenerator(nn.Module):
    """z -> fc -> (32, L/8) -> 3 x [transposed conv, stride 2] -> (1, L) in [low, high] (1-D windows)."""

    def __init__(self, shape: tuple[int, int], latent_dim: int = 64, width: int = 32,
                 value_range: tuple[float, float] = RR_RANGE_S, start: float | None = None):
        super().__init__()
        channels, length = shape
        if length % 8:
            raise ValueError(f"series generator needs a length divisible by 8, got {length}")
        self.first_map = (width, length // 8)
        self.project = nn.Linear(latent_dim, width * (length // 8))
        self.body = nn.Sequential(
            nn.LeakyReLU(0.2),
            nn.ConvTranspose1d(width, width // 2, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.ConvTranspose1d(width // 2, width // 4, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.ConvTranspose1d(width // 4, channels, 4, stride=2, padding=1),
        )
        self.low, self.high = value_range
        self.offset = _start_offset(start, value_range)

    def forward(self, z: torch.Tensor, start_logits: torch.Tensor | None = None) -> torch.Tensor:
        """`start_logits` (one per sample, output-shaped) replaces the constant start offset."""
        x = self.project(z).view(-1, *self.first_map)
        offset = self.offset if start_logits is None else start_logits
        return self.low + (self.high - self.low) * torch.sigmoid(self.body(x) + offset)


def hrv_starts(count: int, length: int, grid_hz: float, rng: torch.Generator) -> torch.Tensor:
    """`count` random RR series (count, 1, length) in seconds, from textbook physiology, not data.

    A flat start gives AM windows with almost no heart-rate variability, unlike any real minute, and
    a student trained on them extrapolates on real nights. Each series here has a level around the
    night median, respiratory sinus arrhythmia (0.15-0.4 Hz), slow drifts (0.005-0.05 Hz), in half
    of them the cyclic variation apneas cause (`_apnea_cycles`; AM then decides which class the
    window ends in), and beat-to-beat noise.
    """
    seconds = torch.arange(length) / grid_hz

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(count, *shape, generator=rng)

    def waves(amplitude, frequency) -> torch.Tensor:  # (count, k) each -> (count, length)
        phase = uniform(0, 2 * math.pi, amplitude.shape[1])
        return (amplitude[..., None] * torch.sin(2 * math.pi * frequency[..., None] * seconds + phase[..., None])).sum(1)

    rr = uniform(0.85, 1.05, 1) * NIGHT_MEDIAN_RR_S / 0.95
    rr = rr + waves(uniform(0.0, 0.05, 1), uniform(0.15, 0.4, 1))
    rr = rr + waves(uniform(0.0, 0.06, 3), uniform(0.005, 0.05, 3))
    cyclic = (torch.rand(count, 1, generator=rng) < 0.5).float()
    rr = rr + cyclic * _apnea_cycles(seconds, uniform)
    rr = rr + 0.003 * torch.randn(count, length, generator=rng)
    return rr.clamp(RR_RANGE_S[0] + 0.05, RR_RANGE_S[1] - 0.05)[:, None, :]


def _apnea_cycles(seconds: torch.Tensor, uniform) -> torch.Tensor:
    """Cyclic variation of heart rate as apneas cause it (count, length): RR lengthens slowly through
    each event and shortens within a few seconds when breathing resumes (an asymmetric triangle, 25-100
    s periods, 0.03-0.12 s amplitude). In half of the series it lasts only for an episode that begins
    or ends inside the window, so that the centre minute and its context can disagree. `uniform(low,
    high, *shape)` draws (count, *shape) values, one row per series."""
    rise = uniform(0.7, 0.9, 1)  # share of each cycle spent lengthening
    cycle = torch.frac(seconds / uniform(25.0, 100.0, 1) + uniform(0.0, 1.0, 1))
    triangle = torch.where(cycle < rise, cycle / rise, (1 - cycle) / (1 - rise)) * 2 - 1
    duration = float(seconds[-1])
    begin = uniform(-0.5, 0.9, 1) * duration
    end = begin + uniform(0.3, 1.0, 1) * duration
    episode = torch.sigmoid((seconds - begin) / 5.0) * torch.sigmoid((end - seconds) / 5.0)
    partial = (uniform(0.0, 1.0, 1) < 0.5).float()
    envelope = partial * episode + (1 - partial)
    return uniform(0.03, 0.12, 1) * triangle * envelope


def start_logits(values: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """Logits that make a generator's sigmoid output start at `values` (inside the range)."""
    low, high = value_range
    fraction = ((values - low) / (high - low)).clamp(0.02, 0.98)
    return torch.log(fraction / (1 - fraction))


def make_generator(modality: str, shape: tuple[int, ...], latent_dim: int, start: float | None = None,
                   width: int | None = None) -> nn.Module:
    """A fresh G whose output starts near `start` (default: the modality's neutral input); `width`
    (default: the class's own) is the channel count of G's first feature map."""
    start = neutral_input(modality) if start is None else start
    sizes = {} if width is None else {"width": width}
    if modality == "image":
        return ImageGenerator(tuple(shape), latent_dim, value_range=output_range(modality), start=start, **sizes)
    if modality == "rr-series":
        return SeriesGenerator(tuple(shape), latent_dim, value_range=output_range(modality), start=start, **sizes)
    raise ValueError(f"no generator for modality {modality!r}")


class GeneratorBank:
    """K independent generators held as stacked parameters and run with `torch.vmap`.

    One optimiser over the stacked tensors is K independent optimisers (Adam's statistics are per
    element and the loss is a sum over generators), and one batched call replaces K small ones.
    """

    def __init__(self, factory, count: int, seed: int):
        """`factory()` builds one generator; copy i gets PyTorch's default init under seed + i."""
        copies = []
        for index in range(count):
            with torch.random.fork_rng():
                torch.manual_seed(seed + index)
                copies.append(factory())
        self.params, self.buffers = stack_module_state(copies)
        self.base = copies[0].to("meta")
        self.count = count

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def __call__(self, z: torch.Tensor, start_logits: torch.Tensor | None = None) -> torch.Tensor:
        """z: (K, b, latent) -> (K, b, *sample shape); `start_logits`: (K, b, *sample shape) or None."""
        if start_logits is None:
            def run(params, buffers, noise):
                return functional_call(self.base, (params, buffers), (noise,))

            return torch.vmap(run)(self.params, self.buffers, z)

        def run_from(params, buffers, noise, starts):
            return functional_call(self.base, (params, buffers), (noise, starts))

        return torch.vmap(run_from)(self.params, self.buffers, z, start_logits)
