"""Time to draw one figure of `edgekit explain --night`'s report, as drawn now (fixed margins)
against `tight_layout` (how it was drawn before 2026-11-30), in alternating rounds of the same run.

The figures are of made-up windows of the real shape (11 minutes at 4 Hz) and map: drawing does not
depend on what the model said, only on how much there is to draw.

    uv run python benchmarks/night_report_figures.py --figures 20 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
from unittest import mock

import numpy as np
from matplotlib.figure import Figure

import student


def seconds_per_figure(result: dict, tight: bool) -> float:
    """Mean seconds to draw each of `result`'s minutes as the report does; `tight`: with
    `tight_layout` instead of the fixed margins (subplots_adjust becomes tight_layout)."""
    fixed_margins = Figure.subplots_adjust

    def tight_instead(figure, *args, **kwargs):
        with mock.patch.object(Figure, "subplots_adjust", fixed_margins):  # tight_layout sets margins with it
            figure.tight_layout()

    with mock.patch.object(Figure, "subplots_adjust", tight_instead) if tight else contextlib.nullcontext():
        started = time.perf_counter()
        for index in range(len(result["minutes"])):
            student.plot_minute(result, index, io.BytesIO(), small=True)
        return (time.perf_counter() - started) / len(result["minutes"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--figures", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    samples = 11 * 60 * 4
    result = {"inputs": (0.1 * rng.normal(size=(args.figures, samples))).astype(np.float32),
              "maps": rng.random((args.figures, samples)), "method": "occlusion", "grid_hz": 4.0,
              "context_minutes": 5, "minutes": list(range(args.figures)), "probability": rng.random(args.figures),
              "flagged": [True] * args.figures, "record": "x01", "target": "apnea"}
    print("| round | tight_layout, ms per figure | fixed margins (now) | ratio |\n|---|---|---|---|")
    for round_ in range(args.rounds):
        tight, fixed = seconds_per_figure(result, True), seconds_per_figure(result, False)
        print(f"| {round_ + 1} | {1000 * tight:.0f} | {1000 * fixed:.0f} | {fixed / tight:.2f} |")


if __name__ == "__main__":
    main()
