"""Why a model flagged minutes of a night, drawn over each minute's heart-rate series.

A minute's window is the RR series around it (the scored minute with its context), exactly as the
model reads it; the explained class is "apnea" unless asked otherwise, so a clinician sees the
stretch that pushed the call toward apnea. The figure shades the mask (or the positive part of a
baseline's attribution, scaled to [0, 1]) behind the series and names the decision: the model's
probability for the minute, and whether the night's decision rule (`teacher.DecisionRule`) flagged it.
"""

from __future__ import annotations

import base64
import html
import io
import os
import time

import numpy as np
import torch

import teacher
from student._explain import make_explainer

APNEA = teacher.LABEL_NAMES.index("apnea")


def night_decisions(model: torch.nn.Module, inputs: torch.Tensor, rule: teacher.DecisionRule,
                    scored: np.ndarray | None = None) -> dict:
    """The model's per-minute apnea probability over one night's windows `(minutes, 1, L)`, and
    the rule's smoothed probability, flags, estimated AHI and call (`scored`: minutes with signal)."""
    with torch.no_grad():
        probability = torch.softmax(model.eval()(inputs), dim=-1)[:, APNEA].numpy()
    return {"probability": probability, **rule.apply(probability, scored)}


def explain_minutes(model: torch.nn.Module, contract: teacher.InputContract, inputs: torch.Tensor,
                    rule: teacher.DecisionRule, minutes: list[int] | None, *, method: str = "neuromask",
                    target: str = "apnea", vae=None, night: str = "the night",
                    scored: np.ndarray | None = None) -> dict:
    """Maps for `minutes` of one night (`inputs`: every minute's window; None: every minute the rule
    flags), with what the figures need. `vae`: re-label distillation's, trained on real nights;
    `scored`: the minutes with signal (`teacher.night_windows`)."""
    if contract.modality != "rr-series":
        raise ValueError(f"explaining a night takes an apnea (rr-series) model; this one takes "
                         f"{contract.modality} inputs (use student.NeuroMask on images directly)")
    decided = night_decisions(model, inputs, rule, scored)
    total = len(inputs)
    if minutes is None:
        minutes = np.flatnonzero(decided["flags"]).tolist()
    for minute in minutes:
        if not 0 <= minute < total:
            raise ValueError(f"{night} has minutes 0-{total - 1}; minute {minute} does not exist")
    explainer = make_explainer(method, model, vae=vae)
    chosen = inputs[minutes]
    started = time.perf_counter()
    maps = explainer.explain(chosen, teacher.LABEL_NAMES.index(target)) if minutes else chosen[:, 0]
    return {
        "method": method, "target": target, "minutes": minutes, "night_minutes": total,
        "inputs": chosen[:, 0].numpy(), "maps": maps.numpy(),
        "probability": decided["probability"][minutes], "flagged": decided["flags"][minutes],
        "grid_hz": contract.grid_hz, "context_minutes": contract.context_minutes,
        "seconds": time.perf_counter() - started,
    }


def _shading(values: np.ndarray, method: str) -> np.ndarray:
    """A map as shading in [0, 1]: NeuroMask's mask as it is, attributions' positive part over its maximum."""
    if method.startswith("neuromask"):
        return values
    positive = np.clip(values, 0, None)
    return positive / max(float(positive.max()), 1e-12)


def plot_minute(result: dict, index: int, path: str | os.PathLike | io.BytesIO, *, small: bool = False) -> None:
    """The window's RR series (seconds from the scored minute's start) with the map shaded behind it."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    series, shade = result["inputs"][index], _shading(result["maps"][index], result["method"])
    seconds = np.arange(len(series)) / result["grid_hz"] - result["context_minutes"] * 60
    figure, axis = plt.subplots(figsize=(7, 2.4) if small else (11, 3.4))
    low, high = float(series.min()), float(series.max())
    pad = max(0.02, 0.1 * (high - low))
    axis.imshow(shade[None, :], aspect="auto", cmap="Reds", vmin=0, vmax=1, alpha=0.7,
                extent=(seconds[0], seconds[-1] + 1 / result["grid_hz"], low - pad, high + pad), origin="lower")
    axis.plot(seconds, series, color="black", linewidth=0.8, label="RR interval")
    axis.axvspan(0, 60, facecolor="none", edgecolor="tab:blue", linewidth=1.2, label="scored minute")
    minute, probability = result["minutes"][index], float(result["probability"][index])
    call = "flagged apnea" if result["flagged"][index] else "not flagged"
    axis.set(xlabel="seconds from the start of the scored minute", ylabel="RR (s, night-relative)",
             ylim=(low - pad, high + pad),
             title=f"{result['record']} minute {minute}: P(apnea) {probability:.2f}, {call}; "
                   f"{result['method']} evidence for {result['target']} shaded")
    axis.legend(loc="upper right", fontsize=7)
    if small:  # the night report's figures: at the default size the title ran past the right edge
        axis.title.set_fontsize(8)
        # Fixed margins: `tight_layout` draws the figure once more to measure it, a third of the
        # time of each of a night's figures (hundreds of them).
        figure.subplots_adjust(left=0.1, right=0.98, bottom=0.19, top=0.89)
    else:
        figure.tight_layout()
    figure.savefig(path, dpi=80 if small else 120, format="png")
    plt.close(figure)


def write_night_report(result: dict, path: str | os.PathLike) -> None:
    """One HTML page: every explained minute's figure, in order, with the night's summary."""
    parts = [
        "<!doctype html><meta charset='utf-8'>",
        f"<title>{html.escape(result['record'])}: why each minute was flagged</title>",
        "<style>body{font-family:sans-serif;max-width:900px;margin:auto}img{width:100%}</style>",
        f"<h1>{html.escape(result['record'])}: {len(result['minutes'])} of {result['night_minutes']} minutes flagged</h1>",
        f"<p>Model {html.escape(result['artifact'])}; method {html.escape(result['method'])}; shaded: the "
        f"evidence for {html.escape(result['target'])}; explained in {result['seconds']:.1f} s.</p>",
    ]
    for index, minute in enumerate(result["minutes"]):
        buffer = io.BytesIO()
        plot_minute(result, index, buffer, small=True)
        encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
        parts.append(f"<h3 id='m{minute}'>minute {minute}</h3><img alt='minute {minute}' "
                     f"src='data:image/png;base64,{encoded}'>")
    teacher.write_text_atomic(path, "\n".join(parts))
