"""An image samples request, end to end as `edgekit unlearn --samples` runs it (issue 6).

Draws `--count` random images of an image teacher's training split (seeded), asks the kit to forget
them (`edgekit.unlearn`, one retrained reference, its certificate), and appends the
certificate's figures to a JSON-lines file. The request goes to a copy of the runs directory, so
that the teacher's own ledger is left as it was and the same samples can be asked again with other
settings (`--unlearn`: JSON overrides of `teacher.SAMPLES_UNLEARN`).

    EDGEKIT_DATA=../shared/data uv run edgekit teacher train --dataset mnist --arch unlearning_cnn --runs runs/mnist-s
    EDGEKIT_DATA=../shared/data uv run python benchmarks/unlearn_samples.py --runs runs/mnist-s --teacher ID \\
        --count 100 --unlearn '{"erase_epochs": 10}'
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

import teacher
from _results import append_json_line
import edgekit
from edgekit import ArtifactStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True, help="runs directory holding the teacher")
    parser.add_argument("--teacher", required=True, help="image teacher artifact id")
    parser.add_argument("--count", type=int, default=100, help="training images to forget, drawn at random")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw")
    parser.add_argument("--unlearn", default="{}", help="JSON overrides of teacher.SAMPLES_UNLEARN")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--append", default="benchmarks/results/unlearn_samples.jsonl")
    args = parser.parse_args()

    config = teacher.TrainConfig(**ArtifactStore(args.runs).get(args.teacher).manifest["config"])
    keys = edgekit.teacher_data(config, args.data_dir, progress=False).keys
    samples = sorted(np.random.default_rng(args.seed).choice(keys, args.count, replace=False).tolist())
    unlearn_config = replace(teacher.SAMPLES_UNLEARN, **json.loads(args.unlearn))
    with tempfile.TemporaryDirectory() as scratch:
        runs = Path(scratch) / "runs"
        shutil.copytree(args.runs, runs, ignore=shutil.ignore_patterns(".staging"))
        result = edgekit.unlearn(ArtifactStore(runs), args.teacher, "samples", samples, "benchmark",
                                  data_dir=args.data_dir, unlearn_config=unlearn_config, progress=False)
    certificate = result["certificate"]
    append_json_line(args.append, {
        "teacher": args.teacher, "dataset": config.dataset, "count": args.count, "seed": args.seed,
        "unlearn": json.loads(args.unlearn), "unlearn_config": unlearn_config.to_dict(),
        "verified": certificate["verified"], "gaps_to_retrained": certificate["gaps_to_retrained"],
        "models": certificate["models"],
        "seconds": certificate["seconds"]})


if __name__ == "__main__":
    main()
