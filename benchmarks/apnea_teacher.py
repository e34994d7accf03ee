"""Apnea teacher on the official split: train on all 35 learning nights, score x01-x35 once.

Runs the same pipeline as `edgekit teacher train --dataset apnea-ecg --no-validation` and
`edgekit teacher eval`, for several seeds, and prints mean and spread as a markdown table.

    EDGEKIT_DATA=../shared/data uv run python benchmarks/apnea_teacher.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import teacher
from edgekit import ArtifactStore, evaluate_teacher, train_teacher


NOISY_DETECTOR = teacher.BeatNoise(jitter_s=0.01, missed=0.02, extra=0.02, seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=teacher.TrainConfig.epochs)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--runs", default="runs/bench-apnea-teacher")
    parser.add_argument("--json", default="benchmarks/results/apnea_teacher.json")
    args = parser.parse_args()

    store = ArtifactStore(args.runs)
    split = teacher.official_split(validation_seed=None)
    rows = []
    for seed in args.seeds:
        config = teacher.TrainConfig(
            epochs=args.epochs, seed=seed, train_records=split["train"], test_records=split["test"]
        )
        started = time.perf_counter()
        artifact = train_teacher(store, config, args.data_dir, progress=False)
        train_wall = time.perf_counter() - started
        figures = evaluate_teacher(store, artifact.id, split["test"], args.data_dir, progress=False)
        minute, night = figures["minute"], figures["night"]
        # The same model on a noisier beat detector: 10 ms jitter, 2 % missed and 2 % false beats.
        model, _ = teacher.load_teacher(artifact.path)
        noisy = teacher.evaluate_apnea_teacher(
            model, teacher.model_contract(config.arch), split["test"], args.data_dir,
            rule=config.decision,
            beat_noise=NOISY_DETECTOR, progress=False,
        )
        rows.append(
            {
                "seed": seed,
                "artifact": artifact.id,
                "train_wall_s": round(train_wall, 1),
                "accuracy": minute["accuracy"],
                "sensitivity": minute["sensitivity"],
                "specificity": minute["specificity"],
                "roc_auc": minute["roc_auc"],
                "minutes": minute["minutes"],
                "nights_correct": night["nights_correct"],
                "nights": night["nights"],
                "ahi_correlation": night["ahi_correlation"],
                "noisy_beats_accuracy": noisy["minute"]["accuracy"],
                "noisy_beats_nights_correct": noisy["night"]["nights_correct"],
                "wrong_nights": [n["record"] for n in night["per_night"] if n["predicted_apneic"] != n["reference_apneic"]],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
        if seed == args.seeds[0]:
            teacher.plot_ahi(night, Path(args.json).with_name("apnea_teacher_ahi.png"))

    machine = f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    summary = {key: (float(np.mean([r[key] for r in rows])), float(np.std([r[key] for r in rows])))
               for key in ("accuracy", "sensitivity", "specificity", "roc_auc", "ahi_correlation", "train_wall_s",
                           "noisy_beats_accuracy")}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"machine": machine, "epochs": args.epochs, "runs": rows, "summary": summary}, indent=2))

    print(f"\nmachine: {machine}\n")
    print("| seed | accuracy | sensitivity | specificity | ROC AUC | nights | AHI r | train s | noisy beats: accuracy, nights |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {r['accuracy']:.2%} | {r['sensitivity']:.2%} | {r['specificity']:.2%} | "
              f"{r['roc_auc']:.4f} | {r['nights_correct']}/{r['nights']} | {r['ahi_correlation']:.3f} | "
              f"{r['train_wall_s']:.0f} | {r['noisy_beats_accuracy']:.2%}, {r['noisy_beats_nights_correct']}/{r['nights']} |")
    s = summary
    print(f"| mean ± sd | {s['accuracy'][0]:.2%} ± {s['accuracy'][1]:.2%} | {s['sensitivity'][0]:.2%} ± {s['sensitivity'][1]:.2%} | "
          f"{s['specificity'][0]:.2%} ± {s['specificity'][1]:.2%} | {s['roc_auc'][0]:.4f} ± {s['roc_auc'][1]:.4f} | | "
          f"{s['ahi_correlation'][0]:.3f} | {s['train_wall_s'][0]:.0f} | {s['noisy_beats_accuracy'][0]:.2%} ± {s['noisy_beats_accuracy'][1]:.2%} |")


if __name__ == "__main__":
    main()
