"""How NeuroMask's settings were chosen: on validation nights only (the learning set's carved-out
nights; x01-x35 are scored once, by benchmarks/explain.py).

Each row explains the same flagged validation minutes with one NeuroMask setting (with
`--relabel`: one latent noise of re-label distillation, its VAE trained on the other learning
nights) and reports its
deletion and insertion AUC next to Occlusion's (the strongest baseline on deletion), the difference
per minute with its standard error. One JSON line per setting in
benchmarks/results/explain_settings.jsonl.

    EDGEKIT_DATA=../shared/data uv run python benchmarks/explain_settings.py --runs runs/apnea --student student-d10e802690b5
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import student  # noqa: E402
import teacher  # noqa: E402
from _results import append_json_line  # noqa: E402
from explain import flagged_minutes, load_explained, sample  # noqa: E402

# (what changes from the paper's cost, the overrides). The paper's cost is the first row.
SETTINGS = [
    ("paper cost", dict(init_range=20.0, lambda_delete=0.0, block=1)),
    ("start in (-2, 2)", dict(init_range=2.0, lambda_delete=0.0, block=1)),
    ("+ a weight per 1 s", dict(init_range=2.0, lambda_delete=0.0, block=4)),
    ("+ deletion term, 0.25 s", dict(init_range=2.0, lambda_delete=1.0, block=1)),
    ("+ deletion term, 0.5 s", dict(init_range=2.0, lambda_delete=1.0, block=2)),
    ("+ deletion term, 1 s", dict(init_range=2.0, lambda_delete=1.0, block=4)),
    ("+ deletion term, 2 s", dict(init_range=2.0, lambda_delete=1.0, block=8)),
    ("deletion term, 0.5 s, start in (-20, 20)", dict(init_range=20.0, lambda_delete=1.0, block=2)),
    ("deletion term, 0.5 s, sparsity x3", dict(init_range=2.0, lambda_delete=1.0, block=2, lambda_sparse=3e-3)),
    ("deletion term, 0.5 s, smoothness x10", dict(init_range=2.0, lambda_delete=1.0, block=2, lambda_smooth=1e-2)),
    ("deletion term, 0.5 s, 300 steps", dict(init_range=2.0, lambda_delete=1.0, block=2, steps=300)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True)
    parser.add_argument("--student", required=True)
    parser.add_argument("--minutes", type=int, default=300)
    parser.add_argument("--relabel", action="store_true",
                        help="sweep re-label distillation's latent noise instead of NeuroMask's settings")
    parser.add_argument("--out", default="benchmarks/results/explain_settings.jsonl")
    args = parser.parse_args()
    torch.set_num_threads(2)
    artifact, model, contract = load_explained(args.runs, args.student)
    flagged, _ = flagged_minutes(model, contract, teacher.official_split(0)["val"])
    inputs = flagged[sample(args.minutes, len(flagged), seed=0)]
    target = torch.ones(len(inputs), dtype=torch.long)
    occlusion = student.deletion_insertion(model, inputs, student.CaptumBaseline(model, "occlusion").explain(inputs, target), target)
    if args.relabel:
        windows, _ = teacher.load_windows(teacher.official_split(0)["train"], None, contract.window_spec(),
                                          progress=False)
        vae, _ = student.train_vae(torch.from_numpy(windows.inputs).float())
        explainers = [(f"relabel, latent noise {noise}",
                       student.RelabelDistillation(model, vae, student.RelabelConfig(latent_noise=noise)))
                      for noise in (1.0, 3.0, 6.0)]
    else:
        explainers = [(name, student.NeuroMask(model, dataclasses.replace(student.NeuroMaskConfig(), **overrides)))
                      for name, overrides in SETTINGS]
    for name, explainer in explainers:
        config = explainer.config
        started = time.perf_counter()
        maps = explainer.explain(inputs, target)
        seconds = time.perf_counter() - started
        scores = student.deletion_insertion(model, inputs, maps, target)
        difference = scores["deletion"] - occlusion["deletion"]
        append_json_line(args.out, {
            "student": artifact.id, "minutes": len(inputs), "setting": name, "config": config.to_dict(),
            "deletion_auc": round(float(scores["deletion"].mean()), 4),
            "insertion_auc": round(float(scores["insertion"].mean()), 4),
            "occlusion_deletion_auc": round(float(occlusion["deletion"].mean()), 4),
            "occlusion_insertion_auc": round(float(occlusion["insertion"].mean()), 4),
            "deletion_minus_occlusion": round(float(difference.mean()), 4),
            "deletion_minus_occlusion_se": round(float(difference.std() / np.sqrt(len(difference))), 4),
            "gini": round(float(student.gini(maps).mean()), 3),
            "seconds": round(seconds, 1),
        })


if __name__ == "__main__":
    main()
