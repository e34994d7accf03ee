"""Figures people would rather see than read: estimated vs reference AHI of every scored night."""

from __future__ import annotations

import os

from teacher._decision import AHI_THRESHOLD


def plot_ahi(night_figures: dict, path: str | os.PathLike, title: str = "") -> None:
    """Scatter of estimated vs reference AHI, one point per night, the AHI > 5 cut-offs drawn."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = night_figures["per_night"]
    reference = [row["reference_ahi"] for row in rows]
    estimated = [row["estimated_ahi"] for row in rows]
    wrong = [row["predicted_apneic"] != row["reference_apneic"] for row in rows]
    top = max(reference + estimated + [10.0]) * 1.05
    figure, axes = plt.subplots(figsize=(5.5, 5.0), dpi=120)
    axes.plot([0, top], [0, top], color="0.7", linewidth=1, label="estimated = reference")
    axes.axhline(AHI_THRESHOLD, color="tab:red", linewidth=0.8, linestyle="--")
    axes.axvline(AHI_THRESHOLD, color="tab:red", linewidth=0.8, linestyle="--", label=f"AHI = {AHI_THRESHOLD:g}")
    colours = ["tab:red" if is_wrong else "tab:blue" for is_wrong in wrong]
    axes.scatter(reference, estimated, c=colours, s=22, zorder=3)
    for row, is_wrong in zip(rows, wrong):
        if is_wrong or len(rows) <= 12:
            axes.annotate(row["record"], (row["reference_ahi"], row["estimated_ahi"]), fontsize=7,
                          xytext=(3, 3), textcoords="offset points")
    axes.set_xlabel("reference AHI (labelled apnea minutes per hour)")
    axes.set_ylabel("estimated AHI (flagged minutes per hour)")
    axes.set_title(title or f"{night_figures['nights_correct']}/{night_figures['nights']} nights called right, "
                   f"r = {night_figures['ahi_correlation']:.3f}", fontsize=10)
    axes.set_xlim(0, top)
    axes.set_ylim(0, top)
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    temporary = f"{path}.tmp.png"
    figure.savefig(temporary)
    plt.close(figure)
    os.replace(temporary, path)
