"""A night replayed on the host exactly as the phone runs it: minute by minute through the .pte.

The windows come from the same preprocessing as training (`teacher.night_windows`, which the
bundle's manifest names), each minute goes through `executorch.runtime` alone, and the bundle's
decision rule (smoothing, threshold, AHI > 5) turns the probabilities into flags and the night's call.
"""

from __future__ import annotations

import os
import time

import numpy as np
from tqdm.auto import tqdm

import teacher
from edge_export._bundle import BundleError, BundleModel


def replay_night(bundle: BundleModel, night: teacher.Night, *, progress: bool = False) -> dict:
    """Per-minute probabilities and flags, the estimated AHI and the night's call for one night,
    whatever its beats came from (`teacher.read_night`, `read_ecg`, `read_rr`), with the reference
    figures where the night has labels. Minutes without signal are neither flagged nor counted."""
    if bundle.contract.modality != "rr-series":
        raise BundleError(f"{bundle.path}: replay takes an apnea (rr-series) bundle, this one takes "
                          f"{bundle.contract.modality} inputs")
    windows, scored, report = teacher.night_windows(night, bundle.contract.window_spec())
    started = time.perf_counter()
    raw = np.array([bundle.probabilities(window)[-1]
                    for window in tqdm(windows, desc=f"replaying {night.name}", unit="min", disable=not progress)])
    seconds = time.perf_counter() - started
    rule = bundle.decision
    decided = rule.apply(raw.astype(np.float32), scored)
    smoothed, flags = decided["smoothed"], decided["flags"]
    result = {
        "record": night.name,
        "bundle": bundle.manifest["id"],
        "minutes": int(len(flags)),
        "probability": raw.round(5).tolist(),
        "smoothed": smoothed.round(5).tolist(),
        "flags": flags.astype(int).tolist(),
        "signal": scored.astype(int).tolist(),
        "no_signal_minutes": int((~scored).sum()),
        "estimated_ahi": decided["estimated_ahi"],
        "apneic": decided["apneic"],
        "severity": bundle.severity.of(decided["estimated_ahi"]),
        "runtime_seconds": round(seconds, 4),
        "rr_cleaning": report,
        "beat_source": night.beat_source,
        "rejected_beats": night.rejected_beats,
    }
    if night.labels is not None:
        labels = night.labels[: len(flags)].astype(bool)
        reference = teacher.estimated_ahi(labels)
        result.update({
            "reference": labels.astype(int).tolist(),
            "reference_ahi": reference,
            "reference_apneic": rule.is_apneic(reference),
            "minute_accuracy": float(np.mean(flags[scored] == labels[scored])) if scored.any() else float("nan"),
        })
    return result


def write_minutes_csv(result: dict, path: str | os.PathLike) -> None:
    """One row per minute: minute, probability, smoothed, flag, signal (and reference where known)."""
    has_reference = "reference" in result
    lines = ["minute,probability,smoothed,flag,signal" + (",reference" if has_reference else "")]
    for minute in range(result["minutes"]):
        row = [str(minute), f"{result['probability'][minute]:.5f}", f"{result['smoothed'][minute]:.5f}",
               str(result["flags"][minute]), str(result["signal"][minute])]
        if has_reference:
            row.append(str(result["reference"][minute]))
        lines.append(",".join(row))
    teacher.write_text_atomic(path, "\n".join(lines) + "\n")


def plot_night(result: dict, threshold: float, path: str | os.PathLike) -> None:
    """The night at a glance: the smoothed apnea probability per minute, the threshold, flagged
    minutes shaded (minutes without signal in grey), and the reference apnea minutes beneath."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    hours = np.arange(result["minutes"]) / 60.0
    figure, axis = plt.subplots(figsize=(11, 3.2))
    axis.plot(hours, result["smoothed"], color="tab:blue", linewidth=0.9, label="apnea probability (smoothed)")
    axis.axhline(threshold, color="grey", linestyle="--", linewidth=0.8, label=f"threshold {threshold:.2f}")
    flags = np.asarray(result["flags"], dtype=bool)
    axis.fill_between(hours, 0, 1, where=flags, step="mid", color="tab:red", alpha=0.25, linewidth=0,
                      label="flagged minutes")
    no_signal = np.asarray(result["signal"]) == 0
    if no_signal.any():
        axis.fill_between(hours, 0, 1, where=no_signal, step="mid", color="grey", alpha=0.3, linewidth=0,
                          label="no signal (not scored)")
    if "reference" in result:
        reference = np.asarray(result["reference"], dtype=bool)
        axis.fill_between(hours, -0.12, -0.04, where=reference, step="mid", color="black", linewidth=0,
                          label="reference apnea minutes")
    title = f"{result['record']}: estimated AHI {result['estimated_ahi']:.1f}"
    title += " (apneic)" if result["apneic"] else " (not apneic)"
    if "reference_ahi" in result:
        title += f", reference {result['reference_ahi']:.1f}; minutes agree {result['minute_accuracy']:.1%}"
    axis.set(title=title, xlabel="hours into the night", ylim=(-0.15, 1.02), xlim=(0, max(hours[-1], 1 / 60)))
    axis.set_yticks([0, 0.5, 1])
    axis.legend(loc="upper right", fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
