"""Where the time of image synthesis goes: one Gen{h1} round with the shipped defaults, counted.

Every step of a round sends the noise vectors still running through the teacher, forward and
backward; that is most of the cost. This counts the teacher's sample-passes per harvested sample
and the share of the round's possible legs (noise vectors x relays) that were harvested: a noise
vector whose leg misses the stop rule within `max_steps` AM steps paid for them and ends its round.

It also gives the arithmetic floor: the multiply-adds of one pass (the forward and the input
gradient of every convolution and linear layer; the weights are frozen), and the minutes 60,000
samples would take at this round's passes per sample if every one of them ran at the rate of a
large matrix product on this machine (the best its BLAS does), with nothing else to pay for.

    EDGEKIT_DATA=../shared/data uv run python benchmarks/synth_round_cost.py --teacher teacher-f4b2f44c3f3c --runs runs/mnist
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn

import synth
import teacher
from edgekit import ArtifactStore
from synth import balanced_targets, run_round


class CountingTeacher(nn.Module):
    """The teacher, counting the samples that go through it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.passes, self.calls = model, 0, 0

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.passes += len(inputs)
        self.calls += 1
        return self.model(inputs)


def multiply_adds_per_pass(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Multiply-adds of one sample's forward pass and input gradient through the conv and linear layers."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Linear):
            total += module.in_features * module.out_features
        else:  # a convolution: each output element sums over its receptive field of every input channel
            total += output[0].numel() * (module.in_channels // module.groups) * int(np.prod(module.kernel_size))

    layers = [module for module in model.modules() if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    handles = [layer.register_forward_hook(count) for layer in layers]
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    for handle in handles:
        handle.remove()
    return 2 * total  # the input gradient of each layer costs what its forward does


def matmul_rate(size: int = 2048, repeats: int = 5) -> float:
    """Multiply-adds per second of the best of `repeats` float32 products of two size x size matrices."""
    a, b = torch.rand(size, size), torch.rand(size, size)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return size**3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, help="image teacher artifact id in --runs")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--synth", default="{}", help="SynthConfig fields as JSON")
    args = parser.parse_args()

    artifact = ArtifactStore(args.runs).get(args.teacher)
    contract = teacher.InputContract.from_dict(artifact.manifest["contract"])
    model, _ = teacher.load_teacher(artifact.path)
    model = model.eval().to(memory_format=torch.channels_last)  # as synth.generate runs it
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    config = synth.SynthConfig(**json.loads(args.synth)).for_modality(contract.modality)
    num_classes = len(contract.labels)
    targets = balanced_targets(torch.zeros(num_classes, dtype=torch.int64), config.size, config.generators,
                               torch.Generator().manual_seed(0))
    counting = CountingTeacher(model)
    started = time.perf_counter()
    harvest = run_round(counting, contract.modality, contract.shape, targets, config, round_seed=0)
    seconds = time.perf_counter() - started
    noise_vectors = config.generators * config.samples_per_generator
    figures = {
        "noise_vectors": noise_vectors, "legs_possible": noise_vectors * config.relays, "harvested": len(harvest),
        # less run_round's first call, one zero image that asks the teacher its class count; each
        # step calls the teacher once per chunk of at most synth._am.TEACHER_CHUNK samples
        "teacher_calls": counting.calls - 1, "teacher_sample_passes": counting.passes - 1,
        "passes_per_harvested_sample": round((counting.passes - 1) / max(len(harvest), 1), 1),
        "seconds": round(seconds, 1), "samples_per_second": round(len(harvest) / seconds, 1),
        "threads": torch.get_num_threads(),
    }
    figures["minutes_for_60000"] = round(60000 / figures["samples_per_second"] / 60, 1)
    per_pass, rate = multiply_adds_per_pass(model, contract.shape), matmul_rate()
    figures["passes_per_second"] = round((counting.passes - 1) / seconds)  # teacher passes over the round's wall time
    figures["multiply_adds_per_pass"] = per_pass
    figures["matmul_multiply_adds_per_second"] = round(rate)
    figures["floor_passes_per_second"] = round(rate / per_pass)
    figures["floor_minutes_for_60000"] = round(60000 * figures["passes_per_harvested_sample"] * per_pass / rate / 60, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
