"""Choosing the unlearner's settings on validation images (never the test split), issue 6.

Trains the original model once on the training images minus a seeded validation draw (cached in
--cache), then, for each UnlearnConfig variant, unlearns the given classes and reports the
validation accuracy of the remaining and of the forgotten classes after the erasure alone
(Scratch) and after reconstruction (Ours). One JSON line per variant is appended to --json.

    EDGEKIT_DATA=../shared/data uv run python benchmarks/unlearn_settings.py --forget 3 \\
        --variants '[{}, {"alpha": 0.0}, {"temperature": 4.0}]' [--no-class-mask]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

import teacher
from _results import append_json_line
from teacher import split_validation
from unlearn_classes import class_accuracies, erasure_only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--arch", default="unlearning_cnn")
    parser.add_argument("--forget", default="3", help="comma-separated classes")
    parser.add_argument("--variants", default="[{}]", help="JSON list of UnlearnConfig overrides")
    parser.add_argument("--no-class-mask", action="store_true", help="keep the forgotten classes in M_d's outputs")
    parser.add_argument("--validation-size", type=int, default=5000)
    parser.add_argument("--cache", default="runs/unlearn-settings", help="where the original model is kept")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default="benchmarks/results/unlearn_settings.jsonl")
    args = parser.parse_args()

    config = teacher.image_train_config(args.dataset, args.arch, args.data_dir, validation_size=args.validation_size,
                                        progress=False)
    train, validation = split_validation(teacher.load_image_dataset(args.dataset, "train", args.data_dir, progress=False),
                                         config.validation_size, config.seed)
    cached = Path(args.cache) / f"{args.dataset}-{args.arch}-original.pt"
    if cached.exists():
        original = teacher.create_model(config.arch, **config.arch_options)
        original.load_state_dict(torch.load(cached))
    else:
        original, _ = teacher.fit(config, train.images, train.labels, Path(args.cache) / "work")
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.save(original.state_dict(), cached)
    original.eval()

    forgotten = [int(label) for label in args.forget.split(",")]
    forget = torch.isin(train.labels, torch.tensor(forgotten))

    def accuracies(model) -> dict:
        figures = class_accuracies(model, validation.images, validation.labels, forgotten)
        return {name: round(value, 4) for name, value in figures.items()}

    def untrained():
        return teacher.create_model(config.arch, **config.arch_options)

    print(json.dumps({"original": accuracies(original)}), flush=True)
    for overrides in json.loads(args.variants):
        unlearn_config = replace(teacher.UnlearnConfig(), **overrides)
        scratch = erasure_only(original, untrained, unlearn_config, train.images[forget])
        started = time.perf_counter()
        ours, _ = teacher.StochasticTeacherUnlearner(original, untrained, unlearn_config).unlearn(
            train.images[forget], train.images[~forget], train.labels[~forget],
            forget_classes=() if args.no_class_mask else forgotten, progress=False)
        row = {"dataset": args.dataset, "arch": args.arch, "forgotten_classes": forgotten, "overrides": overrides,
               "class_mask": not args.no_class_mask, "original": accuracies(original), "scratch": accuracies(scratch),
               "ours": accuracies(ours), "unlearn_seconds": round(time.perf_counter() - started, 1)}
        append_json_line(args.json, row)


if __name__ == "__main__":
    main()
