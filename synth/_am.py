"""Gen{h1}: activation maximisation through generators (Nikolaidis et al. 2019, section 3.3).

One *round* optimises K fresh generators at once (a re-initialisation of G, section 3.3.1), each
with its own target class i and b noise vectors Z ~ U[-1, 1]. Each noise vector runs one or more
legs (relays), each with its own threshold T ~ U[0.90, 0.99]:

1. attraction-repulsion (section 3.3.2): for a random number of steps, the sample maximises the
   teacher's logits of a random subset of classes and minimises those of another subset, so that it
   enters the target class's region from a different side each time;
2. activation maximisation of the target class. A sample is harvested the first step it satisfies
   the stop rule (Eq. 2): the class wins and its softmax exceeds T. The noise vector then starts its
   next leg towards another class, or leaves the loss after its last; the round stops when (almost)
   all have, or the step budget is spent.

The AM objective is the log-softmax of class i (the raw logit plus a push-down of the others): it
reaches the stop rule in fewer steps than the raw logit and cannot diverge. The optional privacy
term (the paper's Loss_2, section 4.1.2) pushes the teacher's penultimate features of the samples
away from those of real training examples of the same class.

Each harvested sample keeps the teacher's logits, so a student can learn from hard labels or from
soft labels at any temperature.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from synth._generator import GeneratorBank, hrv_starts, make_generator, output_range, start_logits
from teacher import to_float


# Settings that differ by input kind, chosen on validation data (BENCHMARKS.md, settings study).
# Images: diversity is what students lack, so many generators with few noise vectors each, long
# attraction-repulsion pre-moves, and relays (CNN_ID on validation at 6k samples: 79 % with pre-moves
# of up to 20 steps, 87 % with 40; a generator of half the width, 93 % in 0.6x the time; 4 relays,
# 95 %). RR windows: long pre-moves carry the windows off the real heart-rate manifold (students then
# rank real minutes backwards), so they stay short; each noise vector starts from its own random
# heart, and as many random hearts again join the set with the teacher's labels (apnea student on
# validation nights, AUC: 0.881 from a steady heart, 0.894 from random hearts, 0.921 with the
# labelled hearts).
MODALITY_DEFAULTS = {
    "image": {"generators": 256, "samples_per_generator": 4, "latent_dim": 16, "premove_max_steps": 40,
              "relays": 4, "generator_width": 32, "start_variation": "flat", "labelled_starts": 0},
    "rr-series": {"generators": 64, "samples_per_generator": 16, "latent_dim": 64, "premove_max_steps": 3,
                  "relays": 1, "generator_width": 32, "start_variation": "hrv", "labelled_starts": 1024},
}

# Samples per teacher pass within a step. Small batches stay in the CPU's caches: on 2 cores the
# MNIST teacher's forward and input gradient run ~1.3x faster per sample in chunks of 256 than in
# one batch of 1,024 (BENCHMARKS.md, synthesis time).
TEACHER_CHUNK = 256


@dataclass
class SynthConfig:
    """Everything that defines a synthetic set; written, resolved for its modality, into its manifest.

    Fields left at None take the modality's value from MODALITY_DEFAULTS (`for_modality`)."""

    size: int = 60000
    labels: str = "soft"  # "soft": students learn from the teacher's softmax; "hard": from its argmax
    generators: int | None = None  # K generators optimised side by side in one round
    samples_per_generator: int | None = None  # b noise vectors Z per generator
    latent_dim: int | None = None
    start: float | None = None  # where G's output starts; None: the modality's neutral input
    start_variation: str | None = None  # "flat": every noise vector starts at `start`; "hrv": from its own random heart
    labelled_starts: int | None = None  # per round, this many more random hearts join the set as they are, teacher-labelled
    threshold_low: float = 0.90  # T ~ U[low, high] per leg (the paper's randomised T)
    threshold_high: float = 0.99
    premove_max_steps: int | None = None  # attraction-repulsion lasts U{0..this} steps per leg
    max_steps: int = 40  # AM steps a leg may take before its noise vector gives up
    relays: int | None = None  # legs (harvested samples) per noise vector and round
    generator_width: int | None = None  # channels of G's first feature map
    round_done_fraction: float = 0.95  # a round ends once this share of its noise vectors has retired
    lr: float = 0.01  # Adam on G; 0.05 and above saturate the output sigmoid and stall AM
    privacy_weight: float = 0.0  # weight of Loss_2; > 0 needs real features of the training data
    seed: int = 0

    def for_modality(self, modality: str) -> "SynthConfig":
        """This config with every unset field taken from the modality's defaults."""
        if modality not in MODALITY_DEFAULTS:
            raise ValueError(f"no synthesis defaults for modality {modality!r}")
        unset = {key: value for key, value in MODALITY_DEFAULTS[modality].items() if getattr(self, key) is None}
        resolved = replace(self, **unset)
        counts = ("size", "generators", "samples_per_generator", "latent_dim", "max_steps", "relays", "generator_width")
        for key in counts:
            if getattr(resolved, key) < 1:
                raise ValueError(f"synthesis setting {key} must be at least 1, got {getattr(resolved, key)}")
        if resolved.premove_max_steps < 0 or resolved.labelled_starts < 0:
            raise ValueError("synthesis settings premove_max_steps and labelled_starts cannot be negative")
        return resolved

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Harvest:
    """Samples of one round: inputs in the teacher's raw units, teacher logits, target class, T."""

    inputs: torch.Tensor
    logits: torch.Tensor
    targets: torch.Tensor
    thresholds: torch.Tensor

    def __len__(self) -> int:
        return len(self.targets)


def penultimate_features(model: nn.Module):
    """A context that records the input of the model's last Linear layer (its penultimate features)."""
    last = [module for module in model.modules() if isinstance(module, nn.Linear)][-1]
    store: dict[str, torch.Tensor] = {}

    def hook(_module, inputs, _output):
        store["features"] = inputs[0]

    class Recorder:
        def __enter__(self):
            self.handle = last.register_forward_hook(hook)
            return store

        def __exit__(self, *exc):
            self.handle.remove()

    return Recorder()


def class_features(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor,
                   per_class: int = 256) -> dict[int, torch.Tensor]:
    """Penultimate-layer features of up to `per_class` real training examples of each class: what
    the privacy term (Loss_2) pushes synthetic samples away from."""
    features = {}
    with torch.no_grad(), penultimate_features(model.eval()) as recorded:
        for label in labels[labels >= 0].unique().tolist():
            chosen = (labels == label).nonzero().flatten()[:per_class]
            model(to_float(inputs[chosen]))
            features[label] = recorded["features"].clone()
    return features


def run_round(
    teacher_model: nn.Module,
    modality: str,
    shape: tuple[int, ...],
    targets: torch.Tensor,
    config: SynthConfig,
    round_seed: int,
    real_features: dict[int, torch.Tensor] | None = None,
    grid_hz: float | None = None,
) -> Harvest:
    """One round of Gen{h1} with len(targets) fresh generators; returns the harvested samples.

    Each noise vector runs legs until it has harvested `config.relays` samples. A leg is an
    attraction-repulsion pre-move followed by AM of one class: generator g's class targets[g] for the
    first leg, then another class drawn at random, starting where the previous leg was harvested
    (diversity: the class is entered from the side of a different one each time). A leg that does not
    meet the stop rule within `config.max_steps` AM steps ends the noise vector's round."""
    config = config.for_modality(modality)
    count, per = len(targets), config.samples_per_generator
    rng = torch.Generator().manual_seed(round_seed)
    # Seeds round_seed * count + i: disjoint between rounds, so no round repeats another's generators.
    bank = GeneratorBank(
        lambda: make_generator(modality, shape, config.latent_dim, config.start, config.generator_width), count,
        seed=round_seed * count)
    noise = torch.rand(count, per, config.latent_dim, generator=rng) * 2 - 1
    starts = _start_logits(modality, shape, config, count * per, grid_hz, rng)
    starts = None if starts is None else starts.view(count, per, *shape)
    num_classes = int(teacher_model(torch.zeros(1, *shape)).shape[1])
    legs = _Legs(config, num_classes, targets[:, None].repeat(1, per), rng)

    optimizer = torch.optim.Adam(bank.parameters(), lr=config.lr)
    privacy = (config.privacy_weight, real_features) if config.privacy_weight and real_features else None
    kept: list[Harvest] = []
    for _ in range(config.relays * (config.premove_max_steps + config.max_steps)):
        samples = bank(noise, starts)  # (K, b, *shape)
        # Only noise vectors still running go through the teacher: late in a round that is few.
        rows = (~legs.retired).nonzero(as_tuple=True)
        inputs = samples[rows]
        targets_now, thresholds_now, signs_now = legs.target[rows], legs.threshold[rows], legs.signs[rows]
        premoving = legs.premove_left[rows] > 0
        # The teacher's part of the graph runs chunk by chunk into the gradient of a detached copy
        # of the inputs; one backward pass through the generators follows.
        detached = inputs.detach().requires_grad_(True)
        per_chunk = [_teacher_chunk(teacher_model, *chunk, privacy) for chunk in zip(
            *(part.split(TEACHER_CHUNK) for part in (detached, targets_now, premoving, thresholds_now, signs_now)))]
        logits = torch.cat([chunk_logits for chunk_logits, _ in per_chunk])
        done = torch.cat([chunk_done for _, chunk_done in per_chunk])
        kept.append(Harvest(detached[done].detach(), logits[done], targets_now[done], thresholds_now[done]))
        legs.advance(rows, premoving, done)
        if legs.retired.float().mean() >= config.round_done_fraction or legs.retired.all():
            break
        optimizer.zero_grad(set_to_none=True)
        inputs.backward(detached.grad)
        optimizer.step()

    return Harvest(*(torch.cat([getattr(h, key) for h in kept]) for key in ("inputs", "logits", "targets", "thresholds")))


def _teacher_chunk(teacher_model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, premoving: torch.Tensor,
                   thresholds: torch.Tensor, signs: torch.Tensor,
                   privacy: tuple[float, dict[int, torch.Tensor]] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One chunk of a step: the teacher's logits, the stop rule (Eq. 2), and the backward pass of the
    chunk's loss into `inputs.grad`. Returns the (detached) logits and which samples are harvested:
    those in the AM phase that meet the stop rule before this step's update. `privacy`: Loss_2's
    weight and the real features per class, or None."""
    if privacy:
        with penultimate_features(teacher_model) as recorded:
            logits = teacher_model(inputs)
    else:
        logits = teacher_model(inputs)
    with torch.no_grad():
        probabilities = logits.softmax(-1)
        target_probability = probabilities.gather(1, targets[:, None]).squeeze(1)
        done = ~premoving & (probabilities.argmax(-1) == targets) & (target_probability > thresholds)
    amming = ~premoving & ~done
    am_loss = -(logits.log_softmax(-1).gather(1, targets[:, None]).squeeze(1) * amming).sum()
    premove_loss = -((logits * signs).sum(-1) * premoving).sum()
    loss = am_loss + premove_loss
    if privacy:
        weight, real_features = privacy
        loss = loss - weight * _distance_to_real(recorded["features"], targets, real_features, amming)
    loss.backward()
    return logits.detach(), done


def _start_logits(modality: str, shape: tuple[int, ...], config: SynthConfig, count: int, grid_hz: float | None,
                  rng: torch.Generator) -> torch.Tensor | None:
    """Per-noise-vector start of G's output, or None for the constant start (`config.start`)."""
    if config.start_variation in (None, "flat"):
        return None
    if config.start_variation != "hrv" or modality != "rr-series":
        raise ValueError(f"start_variation {config.start_variation!r} does not apply to {modality} inputs "
                         "(only 'hrv', for rr-series)")
    if grid_hz is None:
        raise ValueError("start_variation 'hrv' needs the series' grid rate (grid_hz)")
    return start_logits(hrv_starts(count, shape[-1], grid_hz, rng), output_range(modality))


def labelled_starts(teacher_model: nn.Module, modality: str, shape: tuple[int, ...], config: SynthConfig,
                    grid_hz: float | None, rng: torch.Generator) -> Harvest:
    """`config.labelled_starts` random hearts as they are, with the teacher's logits and call (T = 0:
    no stop rule). AM samples all sit where the teacher is sure; these show the student its answers
    on ordinary hearts too, uncertain ones included."""
    if config.start_variation != "hrv" or modality != "rr-series" or grid_hz is None:
        raise ValueError("labelled_starts needs rr-series inputs, start_variation 'hrv' and the grid rate")
    inputs = hrv_starts(config.labelled_starts, shape[-1], grid_hz, rng)
    with torch.no_grad():
        logits = teacher_model(inputs)
    return Harvest(inputs, logits, logits.argmax(-1), torch.zeros(len(inputs)))


class _Legs:
    """Where each of a round's (K, b) noise vectors is: its target class, its T, the pre-move steps
    left and their class signs, its AM steps so far, and whether it has retired from the round."""

    def __init__(self, config: SynthConfig, num_classes: int, first_targets: torch.Tensor, rng: torch.Generator):
        self.config, self.num_classes, self.rng = config, num_classes, rng
        shape = first_targets.shape
        self.target = first_targets.clone()
        self.threshold = torch.zeros(shape)
        self.premove_left = torch.zeros(shape, dtype=torch.int64)
        self.signs = torch.zeros(*shape, num_classes)
        self.am_steps = torch.zeros(shape, dtype=torch.int64)
        self.legs_done = torch.zeros(shape, dtype=torch.int64)
        self.retired = torch.zeros(shape, dtype=torch.bool)
        self._start(torch.ones(shape, dtype=torch.bool).nonzero(as_tuple=True))

    def _start(self, rows: tuple[torch.Tensor, ...]) -> None:
        """A fresh leg for these rows: T ~ U[low, high], and a pre-move of U{0..max} steps with its signs."""
        n, config = len(rows[0]), self.config
        self.threshold[rows] = config.threshold_low + (config.threshold_high - config.threshold_low) * torch.rand(
            n, generator=self.rng)
        self.premove_left[rows] = torch.randint(0, config.premove_max_steps + 1, (n,), generator=self.rng)
        # Attraction-repulsion: +1 maximise, -1 minimise, 0 leave; a random half of the classes move.
        signs = torch.randint(0, 2, (n, self.num_classes), generator=self.rng).float() * 2 - 1
        self.signs[rows] = signs * (torch.rand(n, self.num_classes, generator=self.rng) < 0.5)
        self.am_steps[rows] = 0

    def advance(self, rows: tuple[torch.Tensor, ...], premoving: torch.Tensor, done: torch.Tensor) -> None:
        """Count this step for the running `rows`. A harvested leg starts the noise vector's next leg,
        unless that was its last; a leg whose AM runs out of steps retires it (a later leg would
        start from a sample the teacher would not call anything with confidence)."""
        self.premove_left[rows] -= premoving.long()
        self.am_steps[rows] += (~premoving & ~done).long()
        self.legs_done[rows] += done.long()
        retiring = (self.legs_done[rows] >= self.config.relays) | (self.am_steps[rows] >= self.config.max_steps)
        self.retired[_select(rows, retiring)] = True
        relay = _select(rows, done & ~retiring)
        if len(relay[0]):
            # Another class than the one just harvested, pre-moved to and entered from there.
            step = torch.randint(1, self.num_classes, (len(relay[0]),), generator=self.rng)
            self.target[relay] = (self.target[relay] + step) % self.num_classes
            self._start(relay)


def _select(rows: tuple[torch.Tensor, ...], mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return tuple(index[mask] for index in rows)


def _distance_to_real(features: torch.Tensor, targets: torch.Tensor, real: dict[int, torch.Tensor],
                      active: torch.Tensor) -> torch.Tensor:
    """Sum over active samples of the mean l2 distance to real penultimate features of their class."""
    total = features.new_zeros(())
    for target in targets[active].unique().tolist():
        if target in real:
            chosen = features[active & (targets == target)]
            total = total + torch.cdist(chosen, real[target]).mean(dim=1).sum()
    return total


def balanced_targets(counts: torch.Tensor, quota: int, generators: int, rng: torch.Generator) -> torch.Tensor:
    """Target classes for the next round's generators: only classes still under their quota, the
    least-filled first (ties broken at random), cycling until every generator has one."""
    open_classes = (counts < quota).nonzero().flatten()
    if len(open_classes) == 0:
        raise ValueError("every class has reached its quota")
    shuffled = open_classes[torch.randperm(len(open_classes), generator=rng)]
    order = shuffled[torch.argsort(counts[shuffled], stable=True)]
    return order.repeat(-(-generators // len(order)))[:generators]
