"""Image teachers of issue 3: train each (dataset, architecture) with its recipe, score the test split once.

Each run holds out 5,000 training images (seeded) for the validation curve, trains on the rest, and
is scored once on the real test split; per-class accuracy and wall time per epoch are kept.

    EDGEKIT_DATA=../shared/data uv run python benchmarks/image_teachers.py [--runs mnist:am_h1 ...]

This is the same as, per run:
    edgekit teacher train --dataset D --arch A ; edgekit teacher eval ID --json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import teacher
import edgekit
from edgekit import ArtifactStore

RUNS = [
    "mnist:am_h1",
    "mnist:unlearning_cnn",
    "fashion-mnist:unlearning_cnn",
    "cifar10:unlearning_cnn",
    "cifar10:resnet9_narrow",
]
# The figures each run must reach (issue 3): the papers' teachers.
TARGETS = {
    "mnist:am_h1": 0.993,
    "mnist:unlearning_cnn": 0.992,
    "fashion-mnist:unlearning_cnn": 0.919,
    "cifar10:unlearning_cnn": 0.76,
    "cifar10:resnet9_narrow": 0.85,
}


def run(name: str, data_dir, out: Path, seed: int, epochs: int | None) -> dict:
    dataset, arch = name.split(":")
    config = teacher.image_train_config(dataset, arch, data_dir, seed=seed, epochs=epochs, validation_size=5000)
    store = ArtifactStore(out)
    started = time.perf_counter()
    artifact = edgekit.train_teacher(store, config, data_dir, resume=True)
    wall = time.perf_counter() - started
    figures = edgekit.evaluate_teacher(store, artifact.id, [], data_dir)
    history = artifact.manifest["history"]
    return {
        "run": name,
        "artifact": artifact.id,
        "source": figures["source"],
        "seed": seed,
        "epochs": config.epochs,
        "test_accuracy": figures["accuracy"],
        "target": TARGETS.get(name),
        "per_class_accuracy": figures["per_class_accuracy"],
        "val_accuracy": artifact.manifest["metrics"].get("val_accuracy"),
        "seconds_per_epoch": artifact.manifest["metrics"]["seconds_per_epoch"],
        "train_seconds": artifact.manifest["metrics"]["train_seconds"],
        "wall_seconds": round(wall, 1),
        "val_curve": [round(epoch.get("val_accuracy", float("nan")), 4) for epoch in history],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=RUNS, help="dataset:arch pairs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, help="override the recipe (quick checks only)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--runs", default="runs/bench-image-teachers")
    parser.add_argument("--json", default="benchmarks/results/image_teachers.json")
    args = parser.parse_args()

    path = Path(args.json)
    results = json.loads(path.read_text()) if path.exists() else []
    for name in args.runs:
        result = run(name, args.data_dir, Path(args.runs), args.seed, args.epochs)
        result["machine"] = f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
        print(json.dumps(result), flush=True)
        results = [r for r in results if (r["run"], r["seed"]) != (name, args.seed)] + [result]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2))

    print("\n| dataset:arch | source | test accuracy | target | val accuracy | s/epoch | epochs |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        target = f"{r['target']:.1%}" if r["target"] else ""
        print(f"| {r['run']} | {r['source']} | {r['test_accuracy']:.2%} | {target} | {r['val_accuracy']:.2%} "
              f"| {r['seconds_per_epoch']} | {r['epochs']} |")


if __name__ == "__main__":
    main()
