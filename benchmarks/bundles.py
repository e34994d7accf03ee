"""Bundles against the students they were exported from (issue 5).

Exports one student as fp32 and int8 bundles, then, in the same run: the .pte sizes; the real test
set through each bundle one input at a time in `executorch.runtime` (every minute of x01-x35 with
the bundle's decision rule, or the image test split) against the eager fp32 student; decision
agreement int8 vs fp32; per-input latency of each .pte against eager PyTorch (a ratio, same run,
same threads); and, for Apnea-ECG, the wall time of replaying all the nights as `edgekit replay`
does (reading the beats and preprocessing included).

    EDGEKIT_DATA=../shared/data uv run python benchmarks/bundles.py --runs runs/mnist --student ID
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

import edge_export
import teacher
import edgekit
from edgekit import ArtifactStore

LATENCY_CALLS = 300


def latency_ms(run, inputs: torch.Tensor) -> float:
    """Median milliseconds of one call on one input (after a warm-up pass over 20 inputs)."""
    for sample in inputs[:20]:
        run(sample)
    times = []
    for sample in inputs[:LATENCY_CALLS]:
        started = time.perf_counter()
        run(sample)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def image_figures(model, bundles: dict, dataset: str, data_dir) -> tuple[dict, torch.Tensor]:
    test = teacher.load_image_dataset(dataset, "test", data_dir, progress=False)
    inputs, labels = teacher.to_float(test.images), test.labels.numpy()
    with torch.no_grad():
        eager = model(inputs).argmax(1).numpy()
    figures = {"examples": len(labels), "eager_fp32_accuracy": float(np.mean(eager == labels))}
    for mode, bundle in bundles.items():
        predicted = np.array([bundle.logits(x).argmax() for x in tqdm(inputs, desc=mode, leave=False)])
        figures[f"{mode}_accuracy"] = float(np.mean(predicted == labels))
        figures[f"{mode}_agreement_with_eager"] = float(np.mean(predicted == eager))
    return figures, inputs


def apnea_figures(model, bundles: dict, records: list[str], data_dir) -> tuple[dict, torch.Tensor]:
    decision = bundles["int8"].decision
    flags, labels, all_windows = {"eager_fp32": [], **{mode: [] for mode in bundles}}, [], []
    no_signal = 0
    for record in tqdm(records, desc="nights", leave=False):
        night = teacher.read_night(record, data_dir)
        windows, scored, _ = teacher.night_windows(night, bundles["int8"].contract.window_spec())
        windows = torch.as_tensor(windows)
        all_windows.append(windows)
        labels.append(night.labels[: len(windows)].astype(bool)[scored])
        no_signal += int((~scored).sum())
        with torch.no_grad():
            probabilities = {"eager_fp32": torch.softmax(model(windows), 1)[:, 1].numpy()}
        for mode, bundle in bundles.items():
            probabilities[mode] = np.array([bundle.probabilities(w)[1] for w in windows], dtype=np.float32)
        for name, values in probabilities.items():
            flags[name].append(decision.apply(values.astype(np.float32), scored)["flags"][scored])
    labels = np.concatenate(labels)
    flags = {name: np.concatenate(values) for name, values in flags.items()}
    figures = {"minutes": int(len(labels)), "no_signal_minutes": no_signal, "nights": len(records)}
    for name, values in flags.items():
        figures[f"{name}_accuracy"] = float(np.mean(values == labels))
    figures["int8_agreement_with_eager_fp32"] = float(np.mean(flags["int8"] == flags["eager_fp32"]))
    figures["none_agreement_with_eager_fp32"] = float(np.mean(flags["none"] == flags["eager_fp32"]))
    started = time.perf_counter()
    for record in records:
        edge_export.replay_night(bundles["int8"], teacher.read_night(record, data_dir))
    figures["replay_all_nights_seconds_int8"] = round(time.perf_counter() - started, 2)
    return figures, torch.cat(all_windows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", required=True, help="student artifact id in --runs")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--records", default=",".join(teacher.TEST_RECORDS), help="apnea nights to score")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", help="default: benchmarks/results/bundles_<dataset>.json")
    args = parser.parse_args()

    store = ArtifactStore(args.runs)
    student = store.get(args.student)
    dataset = student.manifest["config"]["dataset"]
    model, _ = teacher.load_teacher(student.path)
    artifacts = {mode: edgekit.export(store, student.id, mode, progress=False) for mode in ("none", "int8")}
    bundles = {mode: edge_export.load_bundle(artifact.path) for mode, artifact in artifacts.items()}
    row = {"student": student.id, "dataset": dataset, "arch": student.manifest["config"]["arch"],
           "threads": torch.get_num_threads(),
           "bundles": {mode: {"id": a.id, "pte_bytes": a.manifest["bundle"]["pte_bytes"],
                              "verification": a.manifest["metrics"]["verification"]} for mode, a in artifacts.items()}}
    if dataset == "apnea-ecg":
        row["test"], inputs = apnea_figures(model, bundles, args.records.split(","), args.data_dir)
    else:
        row["test"], inputs = image_figures(model, bundles, dataset, args.data_dir)
    with torch.no_grad():
        eager_ms = latency_ms(lambda x: model(x[None]), inputs)
    row["latency_ms"] = {"eager_fp32": eager_ms,
                         **{mode: latency_ms(bundle.logits, inputs) for mode, bundle in bundles.items()}}
    row["latency_ratio_to_eager"] = {mode: row["latency_ms"][mode] / eager_ms for mode in bundles}
    print(json.dumps(row, indent=2))
    path = Path(args.json or f"benchmarks/results/bundles_{dataset}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
