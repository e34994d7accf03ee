"""The stochastic-teacher paper's class protocol (Tables 2-3), first measurement (issue 6).

Trains the original model M_d on every training image with the dataset's recipe, then for each
request (forget one class = 10 %, two classes = 20 %) compares, on the real test split:
Original (M_d), Scratch (after the erasure epoch only), Retrained (the same recipe on D_r alone,
from scratch: the gold standard) and Ours (erasure + reconstruction, one epoch each), with the
baselines fine-tune, NegGrad+ and bad teaching (`teacher.finetune`, `teacher.neggrad_plus`, `teacher.bad_teacher`). Wall time is
reported as the ratio ours / retraining, measured in the same run.

    EDGEKIT_DATA=../shared/data uv run python benchmarks/unlearn_classes.py --dataset mnist --forget 3 --forget 3,8
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

import teacher


def class_accuracies(model, images: torch.Tensor, labels: torch.Tensor, forgotten: list[int]) -> dict:
    predicted = torch.as_tensor(teacher.predict_proba(model, images).argmax(1))
    forget = torch.isin(labels, torch.tensor(forgotten))
    right = predicted == labels
    return {"remaining": float(right[~forget].float().mean()), "forgotten": float(right[forget].float().mean()),
            "per_class": [float(right[labels == label].float().mean()) for label in range(int(labels.max()) + 1)]}


def erasure_only(original, untrained, config: teacher.UnlearnConfig, forget_inputs: torch.Tensor):
    """The paper's Scratch model: the unlearner's erasure stage alone (the same seed, so the same
    erasure that its full run starts with)."""
    model, _ = teacher.StochasticTeacherUnlearner(original, untrained, replace(config, reconstruct_epochs=0)).unlearn(
        forget_inputs, forget_inputs[:0], torch.zeros(0, dtype=torch.long), progress=False)
    return model


def epochs_of(config, unlearn_config, baseline) -> dict:
    """Passes over data each model took (bad teaching: one over D_f and a share of D_r)."""
    return {"original": config.epochs, "scratch": unlearn_config.erase_epochs, "retrained": config.epochs,
            "ours": unlearn_config.erase_epochs + unlearn_config.reconstruct_epochs,
            "finetune": baseline.finetune_epochs, "neggrad+": baseline.neggrad_epochs, "bad_teacher": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--arch", default="unlearning_cnn", help="the paper's two-convolution network")
    parser.add_argument("--forget", action="append", required=True, help="comma-separated classes, repeatable")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None, help="default: benchmarks/results/unlearn_classes_<dataset>.json")
    args = parser.parse_args()

    config = teacher.image_train_config(args.dataset, args.arch, args.data_dir, validation_size=0, progress=False)
    train = teacher.load_image_dataset(args.dataset, "train", args.data_dir, progress=False)
    test = teacher.load_image_dataset(args.dataset, "test", args.data_dir, progress=False)

    def untrained():
        return teacher.create_model(config.arch, **config.arch_options)

    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        original, _ = teacher.fit(config, train.images, train.labels, Path(work) / "original")
        original_seconds = time.perf_counter() - started
        rows = []
        for request in args.forget:
            forgotten = [int(label) for label in request.split(",")]
            forget = torch.isin(train.labels, torch.tensor(forgotten))
            unlearn_config = teacher.UnlearnConfig()
            scratch = erasure_only(original, untrained, unlearn_config, train.images[forget])
            started = time.perf_counter()
            ours, history = teacher.StochasticTeacherUnlearner(original, untrained, unlearn_config).unlearn(
                train.images[forget], train.images[~forget], train.labels[~forget], forget_classes=forgotten)
            ours_seconds = time.perf_counter() - started
            started = time.perf_counter()
            retrained, _ = teacher.fit(config, train.images[~forget], train.labels[~forget],
                                       Path(work) / f"retrained-{request}")
            retrain_seconds = time.perf_counter() - started
            baseline = teacher.BaselineConfig()
            tuned, tuned_seconds = teacher.finetune(original, train.images[~forget], train.labels[~forget], baseline)
            negated, negated_seconds = teacher.neggrad_plus(original, train.images[forget], train.labels[forget],
                                                            train.images[~forget], train.labels[~forget], baseline)
            taught, taught_seconds = teacher.bad_teacher(original, untrained, train.images[forget],
                                                         train.images[~forget], baseline)
            models = {"original": original, "scratch": scratch, "retrained": retrained, "ours": ours,
                      "finetune": tuned, "neggrad+": negated, "bad_teacher": taught}
            seconds = {"ours": ours_seconds, "retrained": retrain_seconds, "finetune": tuned_seconds,
                       "neggrad+": negated_seconds, "bad_teacher": taught_seconds}
            row = {
                "forgotten_classes": forgotten,
                "forgotten_share_of_training": float(forget.float().mean()),
                "test": {name: class_accuracies(model, test.images, test.labels, forgotten)
                         for name, model in models.items()},
                "epochs": epochs_of(config, unlearn_config, baseline),
                "seconds": {name: round(value, 1) for name, value in seconds.items()},
                "time_ratio_to_retraining": {name: value / retrain_seconds for name, value in seconds.items()},
                "time_ratio_ours_to_retraining": ours_seconds / retrain_seconds,
                "history": history,
            }
            rows.append(row)
            print(json.dumps({key: row[key] for key in ("forgotten_classes", "test", "time_ratio_ours_to_retraining")}),
                  flush=True)
    result = {"dataset": args.dataset, "arch": args.arch, "train_config": config.to_dict(),
              "unlearn_config": teacher.UnlearnConfig().to_dict(), "baseline_config": teacher.BaselineConfig().to_dict(), "original_seconds": round(original_seconds, 1),
              "threads": torch.get_num_threads(), "requests": rows}
    path = Path(args.json or f"benchmarks/results/unlearn_classes_{args.dataset}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print("\n| forgotten | model | epochs | remaining classes | forgotten classes | time / retraining |\n"
          "|---|---|---|---|---|---|")
    for row in rows:
        for name, figures in row["test"].items():
            ratio = row["time_ratio_to_retraining"].get(name)
            print(f"| {row['forgotten_classes']} | {name} | {row['epochs'][name]} | {figures['remaining']:.2%} "
                  f"| {figures['forgotten']:.2%} | {'' if ratio is None else f'{ratio:.3f}'} |")
    print("\nPer class (the paper's Table 1):\n\n| forgotten | class | "
          + " | ".join(rows[0]["test"]) + " |\n|---|---|" + "---|" * len(rows[0]["test"]))
    for row in rows:
        for label in range(len(row["test"]["original"]["per_class"])):
            print(f"| {row['forgotten_classes']} | {label} | "
                  + " | ".join(f"{figures['per_class'][label]:.2%}" for figures in row["test"].values()) + " |")


if __name__ == "__main__":
    main()
