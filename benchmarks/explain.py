"""Explanations of a student's decisions, scored on the model (issue 7): NeuroMask (the kit's
default and the paper's own cost), re-label distillation and the Captum baselines, on the same
inputs in one run.

Apnea: minutes of x01-x35 the product flags (the student's decision rule over each night; a random
`--minutes` of them), each explained for "apnea". A "normal" minute is not scored: the neutral reference every method removes
toward is a steady heart, itself a normal minute, so removing evidence cannot lower "normal".
MNIST: `--images` test images, each explained for the student's decision.

Per method: deletion and insertion AUC (mean and standard error), Gini sparsity, time per input
(batched) and for one input alone, and the model-randomisation check on the first `--check`
inputs. For apnea, also the time to explain every flagged minute of the night with most of them,
batched. Results: a JSON file and a PNG of the mean deletion and insertion curves.

    EDGEKIT_DATA=../shared/data uv run python benchmarks/explain.py --runs runs/apnea --student student-d10e802690b5
    EDGEKIT_DATA=../shared/data uv run python benchmarks/explain.py --runs runs/mnist --student student-2080ff9ec2c7 \\
        --out benchmarks/results/explain_mnist.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import edgekit  # noqa: E402
import student  # noqa: E402
import teacher  # noqa: E402
from _results import write_json  # noqa: E402
from edgekit import ArtifactStore  # noqa: E402


def load_explained(runs: str, ref: str):
    """(artifact, model, input contract, decision rule) of the student or teacher to explain."""
    artifact = ArtifactStore(runs).get(ref)
    model, checkpoint = teacher.load_teacher(artifact.path)
    rule = teacher.TrainConfig(**checkpoint["config"]).decision
    return artifact, model, teacher.InputContract.from_dict(artifact.manifest["contract"]), rule


def flagged_minutes(model, contract, rule: teacher.DecisionRule, records: list[str]) -> tuple[torch.Tensor, np.ndarray]:
    """Every minute of `records` the product flags (the model's decision rule over each night, as
    `edgekit explain --night` and the phone flag them), and the night each comes from."""
    windows, _ = teacher.load_windows(records, None, contract.window_spec(), progress=False)
    inputs = torch.from_numpy(windows.inputs).float()
    flagged = np.zeros(len(inputs), dtype=bool)
    for record in records:
        rows = np.flatnonzero(windows.records == record)
        rows = rows[np.argsort(windows.minutes[rows], kind="stable")]
        flagged[rows] = student.night_decisions(model, inputs[rows], rule)["flags"]
    return inputs[flagged], windows.records[flagged]


def sample(count: int, available: int, seed: int) -> np.ndarray:
    """`count` sorted random indices out of `available` (all of them when fewer)."""
    return np.sort(np.random.default_rng(seed).choice(available, size=min(count, available), replace=False))


def image_inputs(model, dataset: str, count: int, seed: int) -> torch.Tensor:
    test = teacher.load_image_dataset(dataset, "test", progress=False)
    chosen = np.random.default_rng(seed).choice(len(test), size=count, replace=False)
    return teacher.to_float(test.images[torch.from_numpy(chosen)])


def vae_for(contract, dataset: str, records: list[str], progress: bool, runs: str, product: bool):
    """The VAE re-label distillation perturbs, trained on learning data (never the scored inputs):
    the product's own (`edgekit explain`'s, kept in the runs folder) when scoring x01-x35; one on the
    learning nights less the validation ones when choosing settings, or on the training images."""
    started = time.perf_counter()
    if product:
        vae = edgekit.relabel_vae(ArtifactStore(runs), contract, None, progress)
        return vae, {"source": "edgekit explain's VAE (every learning night in the data directory)",
                     "seconds": round(time.perf_counter() - started, 1)}
    if contract.modality == "rr-series":
        windows, _ = teacher.load_windows(records, None, contract.window_spec(), progress=False)
        inputs = torch.from_numpy(windows.inputs).float()
    else:
        inputs = teacher.to_float(teacher.load_image_dataset(dataset, "train", progress=False).images)
    vae, history = student.train_vae(inputs, epochs=20 if contract.modality == "rr-series" else 10, progress=progress)
    return vae, {"inputs": int(inputs.shape[0]), "final_loss": history[-1]["loss"],
                 "seconds": round(time.perf_counter() - started, 1)}


def score_method(method: str, model, vae, inputs: torch.Tensor, target: torch.Tensor, check: int) -> dict:
    explainer = student.make_explainer(method, model, vae=vae)
    started = time.perf_counter()
    maps = explainer.explain(inputs, target)
    batched = time.perf_counter() - started
    single = []
    for index in range(3):
        started = time.perf_counter()
        explainer.explain(inputs[index:index + 1], target[index:index + 1])
        single.append(time.perf_counter() - started)
    scores = student.deletion_insertion(model, inputs, maps, target)
    sanity = student.randomisation_check(
        lambda net, x, y, seed: student.make_explainer(method, net, vae=vae, seed=seed).explain(x, y),
        model, inputs[:check], target[:check], stochastic=method in student.STOCHASTIC)
    n = len(inputs)
    return {
        "method": method,
        "deletion_auc": float(scores["deletion"].mean()),
        "deletion_se": float(scores["deletion"].std() / np.sqrt(n)),
        "insertion_auc": float(scores["insertion"].mean()),
        "insertion_se": float(scores["insertion"].std() / np.sqrt(n)),
        "gini": float(student.gini(maps).mean()),
        "seconds_per_input_batched": batched / n,
        "seconds_one_input": float(np.median(single)),
        "randomisation": sanity,
        "deletion_curve": scores["deletion_curve"].round(4).tolist(),
        "insertion_curve": scores["insertion_curve"].round(4).tolist(),
        "per_input_deletion": scores["deletion"].round(4).tolist(),
    }


def night_time(model, flagged: torch.Tensor, nights: np.ndarray) -> dict:
    """NeuroMask over every flagged minute of the night with most of them, in one batch."""
    names, counts = np.unique(nights, return_counts=True)
    record = str(names[counts.argmax()])
    minutes = flagged[torch.from_numpy(nights == record)]
    started = time.perf_counter()
    student.NeuroMask(model).explain(minutes, 1)
    return {"record": record, "flagged_minutes": int(len(minutes)), "seconds": round(time.perf_counter() - started, 1)}


def plot_curves(rows: list[dict], path: Path, title: str) -> None:
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for row in rows:
        fraction = np.linspace(0, 1, len(row["deletion_curve"]))
        axes[0].plot(fraction, row["deletion_curve"], label=f"{row['method']} ({row['deletion_auc']:.3f})")
        axes[1].plot(fraction, row["insertion_curve"], label=f"{row['method']} ({row['insertion_auc']:.3f})")
    for axis, name in zip(axes, ("deletion (lower is better)", "insertion (higher is better)")):
        axis.set_title(name)
        axis.set_xlabel("fraction of the input moved to the reference")
        axis.legend(fontsize=8)
    axes[0].set_ylabel("probability of the explained decision")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True, help="runs directory holding the student")
    parser.add_argument("--student", required=True, help="student (or teacher) artifact id")
    parser.add_argument("--records", help="apnea: comma-separated nights (default x01-x35)")
    parser.add_argument("--validation", action="store_true",
                        help="apnea: score the learning set's validation nights instead (for choosing settings)")
    parser.add_argument("--minutes", type=int, default=500, help="apnea: flagged minutes scored")
    parser.add_argument("--images", type=int, default=500, help="images: test images scored")
    parser.add_argument("--check", type=int, default=100, help="inputs in the randomisation check")
    parser.add_argument("--methods", default=",".join(student.METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/explain_apnea.json")
    args = parser.parse_args()
    torch.set_num_threads(2)

    artifact, model, contract, rule = load_explained(args.runs, args.student)
    dataset = artifact.manifest["config"]["dataset"]
    result = {"student": artifact.id, "dataset": dataset, "seed": args.seed,
              "neuromask": student.NeuroMaskConfig().to_dict(), "neuromask_paper": student.PAPER_NEUROMASK.to_dict(),
              "relabel": student.RelabelConfig().to_dict()}
    if contract.modality == "rr-series":
        split = teacher.official_split(0)
        if args.validation:
            scored, vae_records = split["val"], split["train"]
        else:
            scored, vae_records = (args.records.split(",") if args.records else list(teacher.TEST_RECORDS),
                                   list(teacher.LEARNING_RECORDS))
        flagged, nights = flagged_minutes(model, contract, rule, scored)
        inputs = flagged[sample(args.minutes, len(flagged), args.seed)]
        result["inputs"] = {"records": scored, "minutes_flagged": len(flagged), "minutes_scored": len(inputs)}
        target = torch.ones(len(inputs), dtype=torch.long)
    else:
        vae_records = []
        inputs = image_inputs(model, dataset, args.images, args.seed)
        target, _ = student.decisions(model, inputs)
        result["inputs"] = {"split": "test", "images": len(inputs)}
    methods = args.methods.split(",")
    vae = None
    if "relabel" in methods:
        vae, result["vae"] = vae_for(contract, dataset, vae_records, progress=True, runs=args.runs,
                                     product=contract.modality == "rr-series" and not args.validation)
    rows = []
    for method in methods:
        row = score_method(method, model, vae, inputs, target, args.check)
        rows.append(row)
        print(f"{method:16s} deletion {row['deletion_auc']:.4f} ± {row['deletion_se']:.4f}  insertion "
              f"{row['insertion_auc']:.4f} ± {row['insertion_se']:.4f}  gini {row['gini']:.3f}  "
              f"{row['seconds_one_input']:.2f} s one input, {row['seconds_per_input_batched'] * 1000:.0f} ms/input "
              f"batched  randomisation check {'passes' if row['randomisation']['passes'] else 'FAILS'} "
              f"({row['randomisation']['similarity_to_randomised_median']:.2f} vs rerun "
              f"{row['randomisation']['similarity_to_rerun_median']:.2f})", flush=True)
    result["methods"] = rows
    if contract.modality == "rr-series" and not args.validation:
        result["night"] = night_time(model, flagged, nights)
        print(f"night {result['night']['record']}: {result['night']['flagged_minutes']} flagged minutes explained "
              f"in {result['night']['seconds']} s", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, result)
    plot_curves(rows, out.with_suffix(".png"), f"{artifact.id} on {len(inputs)} {'minutes' if contract.modality == 'rr-series' else 'images'}")
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
