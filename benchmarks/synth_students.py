"""Students trained on synthetic data alone (issue 4), next to the same students on real images.

Synthesises one set from a teacher artifact (Gen{h1}), then trains each student on the first n
synthetic samples for each n, and, as the baseline of the AM paper's Table 2, the same student on
the first n real training images. Everything is scored on the real test split.

    EDGEKIT_DATA=../shared/data uv run python benchmarks/synth_students.py --teacher ID \\
        --runs runs/bench-image-teachers --size 60000 --students cnn_id cnn_small --sizes 4000 20000 60000

The same as: edgekit synth generate ID --size N ; edgekit student distill SYNTH --arch A --size n

`--synth ID` uses a set already made instead of synthesising one, and a student of that set already
trained with the same configuration is reused rather than trained again. Each run also draws the
curve of the AM paper's Table 2 (accuracy against n, synthetic next to real) beside its JSON;
`--plot-only` redraws it from the JSON without training anything.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torchvision.utils

import synth
import teacher
import edgekit
from edgekit import ArtifactStore
from student import student_config


# The AM paper names its students by their relation to h1: CNN_ID is h1's architecture, CNN_S h1 at
# half width. Which registered model plays which part depends on the teacher.
ROLES = {"am_h1": {"am_h1": "CNN_ID", "cnn_id": "CNN_ID", "cnn_small": "CNN_S"},
         "am_h1_half": {"am_h1_half": "CNN_ID", "cnn_small": "CNN_ID", "cnn_small_half": "CNN_S"}}
# The AM paper's students on 120k synthetic samples with soft labels (Table 7), and the issue's bars.
PAPER_SOFT_120K = {"CNN_ID": 0.9813, "CNN_S": 0.9784}
BARS = {"CNN_ID": 0.980, "CNN_S": 0.978}


def role(teacher_arch: str, student_arch: str) -> str | None:
    """The AM paper's name for `student_arch` as a student of an `teacher_arch` teacher, if it has one."""
    return ROLES.get(teacher_arch, {}).get(student_arch)


def plot_curve(result: dict, path: Path) -> None:
    """Test accuracy against training-set size, one panel per student: synthetic only, real images,
    the teacher, the paper's synthetic figure and the issue's bar."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    students = sorted({row["student"] for row in result["students"]})
    figure, axes = plt.subplots(1, len(students), figsize=(6 * len(students), 4.2), squeeze=False)
    for axis, arch in zip(axes[0], students):
        part = role(result.get("teacher_arch", "am_h1"), arch)  # results of before the field: all of am_h1
        rows = sorted((row for row in result["students"] if row["student"] == arch), key=lambda row: row["samples"])
        sizes = [row["samples"] for row in rows]
        axis.plot(sizes, [100 * row["synthetic_accuracy"] for row in rows], "o-", label="synthetic only")
        real = [row for row in rows if "real_accuracy" in row]
        if real:
            axis.plot([row["real_samples"] for row in real], [100 * row["real_accuracy"] for row in real], "s--",
                      label="real images (MNIST has 60,000)")
        axis.axhline(100 * rows[0]["teacher_accuracy"], color="grey", linestyle=":", label="teacher")
        if part:
            axis.axhline(100 * BARS[part], color="tab:red", linewidth=0.8, label="issue's bar")
            axis.plot([120000], [100 * PAPER_SOFT_120K[part]], "k*", markersize=10, label="AM paper (soft, 120k)")
        axis.set_xscale("log")
        axis.set_xticks(sizes, [f"{size // 1000}k" for size in sizes])
        axis.minorticks_off()
        axis.set_ylim(max(0.0, min(100 * row["synthetic_accuracy"] for row in rows) - 2), 100)
        axis.set_xlabel("training samples")
        axis.set_ylabel("MNIST test accuracy (%)")
        axis.set_title(f"{arch} ({part})" if part else arch)
        axis.legend(fontsize=8, loc="lower right")
    figure.suptitle(f"students of {result['synth']} (teacher {result['teacher']})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def real_baseline(teacher_config: dict, arch: str, size: int, data_dir, work: Path, known: dict) -> tuple[int, float]:
    """The same student and recipe on the first `size` real training images (hard labels), or all of
    them where there are fewer: (images used, test accuracy). Results already in `known` (keyed by
    the student's exact config and the image count) are reused, and new ones added to it."""
    config = student_config(teacher_config, arch, labels="hard")
    train = teacher.load_image_dataset(config.dataset, "train", data_dir, progress=False)
    used = min(size, len(train.labels))
    key = f"{used}:{json.dumps(config.to_dict(), sort_keys=True)}"
    if key not in known:
        test = teacher.load_image_dataset(config.dataset, "test", data_dir, progress=False)
        model, _ = teacher.fit(config, train.images[:used], train.labels[:used], work, progress=False)
        known[key] = float(np.mean(teacher.predict_proba(model, test.images).argmax(1) == test.labels.numpy()))
    return used, known[key]


def trained_student(store: ArtifactStore, synth_id: str, arch: str, size: int, labels: str,
                    temperature: float | None):
    """A student of `synth_id` already in the store with exactly the configuration `distill` would
    use, or None."""
    teacher_config = store.get(store.get(synth_id).manifest["parents"][0]).manifest["config"]
    config = student_config(teacher_config, arch, labels=labels, temperature=temperature)
    identity = {**config.to_dict(), "labels": labels, "synthetic_samples": size}
    for child in store.children(synth_id):
        if child.kind == "student" and with_defaults(child.manifest["config"]) == identity:
            return child
    return None


def with_defaults(student_identity: dict) -> dict:
    """A student's recorded configuration with the TrainConfig fields added since at their defaults."""
    extra = {key: student_identity[key] for key in ("labels", "synthetic_samples")}
    training = {key: value for key, value in student_identity.items() if key not in extra}
    return {**teacher.TrainConfig(**training).to_dict(), **extra}


def save_grid(synth_dir, path: Path, per_class: int = 10) -> None:
    """A PNG of `per_class` samples of each class (a row each), spread over the whole set so that
    neighbouring images come from different generators."""
    synthetic = synth.load_synthetic(synth_dir)
    rows = []
    for label in synthetic["targets"].unique().tolist():
        members = (synthetic["targets"] == label).nonzero().flatten()
        rows.append(members[np.linspace(0, len(members) - 1, per_class).round().astype(int)])
    path.parent.mkdir(parents=True, exist_ok=True)
    torchvision.utils.save_image(synthetic["inputs"][np.concatenate(rows)], path, nrow=per_class, padding=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", help="teacher artifact id in --runs (needed unless --plot-only)")
    parser.add_argument("--runs", default="runs/bench-image-teachers")
    parser.add_argument("--size", type=int, default=60000, help="synthetic samples to generate")
    parser.add_argument("--synth", help="use this synthetic set (id in --runs) instead of generating one")
    parser.add_argument("--synth-config", default="{}", help="other SynthConfig fields as JSON (default: the product's)")
    parser.add_argument("--labels", choices=("soft", "hard"), default="soft")
    parser.add_argument("--temperature", type=float, help="default: the student recipe's")
    parser.add_argument("--students", nargs="+", default=["cnn_id", "cnn_small"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[60000], help="training-set sizes to compare")
    parser.add_argument("--real-baseline", action="store_true", help="also train each student on n real images")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default="benchmarks/results/synth_students.json")
    parser.add_argument("--grid", default="benchmarks/results/synth_mnist_grid.png", help="sample grid PNG")
    parser.add_argument("--plot-only", action="store_true", help="redraw the curve from --json; train nothing")
    args = parser.parse_args()
    curve = Path(args.json).with_name(Path(args.json).stem + "_curve.png")
    if args.plot_only:
        plot_curve(json.loads(Path(args.json).read_text()), curve)
        print(curve)
        return
    if not args.teacher:
        parser.error("--teacher is needed to train students")

    store = ArtifactStore(args.runs)
    previous = json.loads(Path(args.json).read_text()) if Path(args.json).exists() else {}
    known_baselines = previous.get("real_baselines", {})
    started = time.perf_counter()
    if args.synth:
        synthetic = store.get(args.synth)
    else:
        synthetic = edgekit.synthesise(store, args.teacher, synth.SynthConfig(size=args.size, labels=args.labels,
                                                                           **json.loads(args.synth_config)),
                                         resume=True)
    synth_seconds = synthetic.manifest["metrics"]["seconds"]
    print(f"synthetic set {synthetic.id}: {synthetic.manifest['metrics']} ({time.perf_counter() - started:.0f} s)")
    save_grid(synthetic.path, Path(args.grid))
    teacher_config = store.get(args.teacher).manifest["config"]
    rows = []
    for arch in args.students:
        for size in args.sizes:
            whole_set = size >= synthetic.manifest["config"]["size"]  # trained as `distill` without --size
            used = None if whole_set else size
            artifact = trained_student(store, synthetic.id, arch, used, args.labels, args.temperature)
            if artifact is None:
                artifact = edgekit.distill(store, synthetic.id, arch, args.data_dir, labels=args.labels,
                                             temperature=args.temperature, size=used, resume=True)
            row = {
                "student": arch,
                "samples": size,
                "labels": args.labels,
                "temperature": artifact.manifest["config"]["temperature"],
                "synthetic_accuracy": artifact.manifest["metrics"]["test"]["accuracy"],
                "teacher_accuracy": artifact.manifest["metrics"]["teacher_test"]["accuracy"],
                "artifact": artifact.id,
            }
            if args.real_baseline:
                row["real_samples"], row["real_accuracy"] = real_baseline(
                    teacher_config, arch, size, args.data_dir, Path(args.runs) / ".baseline", known_baselines)
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {"teacher": args.teacher, "teacher_arch": teacher_config["arch"], "synth": synthetic.id,
              "synth_metrics": synthetic.manifest["metrics"], "synth_seconds": synth_seconds, "students": rows,
              "real_baselines": known_baselines}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    plot_curve(result, curve)
    print("\n| student | samples | synthetic only | real images | teacher |\n|---|---|---|---|---|")
    for row in rows:
        real = f"{row['real_accuracy']:.2%} ({row['real_samples']})" if "real_accuracy" in row else ""
        print(f"| {row['student']} | {row['samples']} | {row['synthetic_accuracy']:.2%} | {real} "
              f"| {row['teacher_accuracy']:.2%} |")


if __name__ == "__main__":
    main()
