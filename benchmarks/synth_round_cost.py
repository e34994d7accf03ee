"""Where the time of image synthesis goes: one Gen{h1} round with the shipped defaults, counted.

Every step of a round sends the noise vectors still running through the teacher, forward and
backward; that is most of the cost. This counts the teacher's sample-passes per harvested sample
and the share of the round's possible legs (noise vectors x relays) that were harvested: a noise
vector whose leg misses the stop rule within `max_steps` AM steps paid for them and ends its round.

    EDGEKIT_DATA=../shared/data uv run python benchmarks/synth_round_cost.py --teacher teacher-f4b2f44c3f3c --out runs/mnist
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn

import synth
import teacher
from edgekit._pipeline import _teacher_contract
from edgekit._store import ArtifactStore
from synth._am import balanced_targets, run_round


class CountingTeacher(nn.Module):
    """The teacher, counting the samples that go through it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.passes, self.calls = model, 0, 0

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.passes += len(inputs)
        self.calls += 1
        return self.model(inputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, help="image teacher artifact id in --out")
    parser.add_argument("--out", default="runs")
    parser.add_argument("--synth", default="{}", help="SynthConfig fields as JSON")
    args = parser.parse_args()

    artifact = ArtifactStore(args.out).get(args.teacher)
    contract = _teacher_contract(artifact)
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
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
