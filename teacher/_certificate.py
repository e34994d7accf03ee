"""An unlearning certificate as a person reads it: its headline for the ledger, a line of text, the
figure and the HTML page sealed with the new teacher."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np


def certificate_headline(certificate: dict) -> dict:
    """The figures the ledger keeps of a certificate."""
    models = certificate["models"]
    return {
        "verified": certificate["verified"],
        "forget_accuracy": {name: figures["forget_accuracy"] for name, figures in models.items()},
        "test_accuracy": {name: figures["test_accuracy"] for name, figures in models.items()},
        "threshold_attack_auc": {name: figures["threshold_attack_auc"] for name, figures in models.items()},
        "shadow_attack_auc": {name: figures["shadow_attack_auc"] for name, figures in models.items()},
        "time_ratio_to_retraining": certificate["time_ratio_to_retraining"],
        **({"forgetting_score": certificate["forgetting"]["score"]} if "forgetting" in certificate else {}),
    }


def format_certificate(certificate: dict) -> str:
    """The certificate's table, its gaps to retraining and (with several references) their spread."""
    models, gaps = certificate["models"], certificate["gaps_to_retrained"]
    lines = ["  model      forgotten acc  test acc  threshold AUC  shadow AUC"]
    for name, figures in models.items():
        lines.append(f"  {name:<10} {figures['forget_accuracy']:>13.2%} {figures['test_accuracy']:>9.2%} "
                     f"{figures['threshold_attack_auc']:>14.3f} {figures['shadow_attack_auc']:>11.3f}")
    lines.append(f"  gaps to retrained: forgotten accuracy {gaps['forget_accuracy_points']:.2f} points, attack AUC "
                 f"{max(gaps['threshold_attack_auc'], gaps['shadow_attack_auc']):.3f}, test accuracy "
                 f"{gaps['test_accuracy_points_below']:.2f} points below; time {gaps['time_ratio']:.1%} of retraining")
    if "reference_spread" in certificate:
        lines.append(f"  retrained{retrained_text(certificate)}")
    if "forgetting" in certificate:
        lines.append(f"  forgetting score over {certificate['forgetting']['references']} references: "
                     f"{certificate['forgetting']['score']:.3f}")
    return "\n".join(lines)


def guides_text(certificate: dict) -> str:
    if not certificate.get("guides"):
        return "a randomly initialised network (the stochastic teacher)"
    made = certificate["seconds"].get("guides", 0)
    trained_now = f" (trained for this request in {made:.0f} s, once per teacher)" if made else ""
    return (f"the mean outputs of guides {', '.join(certificate['guides'])}, models of the teacher's recipe each "
            f"trained without a fold of nights that holds the forgotten data{trained_now}")


def retrained_text(certificate: dict) -> str:
    """How many retrained models the "retrained" row stands for, and how far apart they are."""
    spread = certificate.get("reference_spread")  # present with two or more references
    if not spread:
        return ""
    return (f" (the mean of {certificate['references']} retrained models, which differ among themselves by up to "
            f"{100 * spread['forget_accuracy']:.2f} points on the forgotten data and "
            f"{max(spread['threshold_attack_auc'], spread['shadow_attack_auc']):.3f} in attack AUC)")


MODEL_COLOURS = {"original": "tab:red", "unlearned": "tab:blue", "retrained": "tab:green"}


def plot_certificate(certificate: dict, losses: dict, path: Path) -> None:
    """Accuracies, attack AUCs and the forgotten data's loss under each model, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    models, references = certificate["models"], certificate.get("references", 1)
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    groups = [("forget_accuracy", "forgotten"), ("retain_accuracy", "kept"), ("test_accuracy", "test")]
    for offset, (name, figures) in enumerate(models.items()):
        legend = f"retrained (mean of {references})" if name == "retrained" and references > 1 else name
        axes[0].bar(np.arange(3) + 0.27 * (offset - 1), [figures[key] for key, _ in groups], 0.27, label=legend,
                    color=MODEL_COLOURS[name])
        axes[1].bar(np.arange(2) + 0.27 * (offset - 1), [figures["threshold_attack_auc"],
                    figures["shadow_attack_auc"]], 0.27, label=legend, color=MODEL_COLOURS[name])
        axes[2].hist(np.minimum(losses[name], 10), bins=40, histtype="step", linewidth=1.6, label=legend,
                     color=MODEL_COLOURS[name])
    axes[0].set_xticks(range(3), [label for _, label in groups])
    axes[0].set_ylabel("accuracy")
    axes[0].set_ylim(0, 1)
    axes[1].set_xticks(range(2), ["loss threshold", "shadow model"])
    axes[1].axhline(0.5, color="grey", linestyle=":")
    axes[1].set_ylabel("membership attack AUC (forgotten vs unseen)")
    axes[1].set_ylim(0, 1)
    axes[2].set_xlabel("loss on the forgotten data (clipped at 10)")
    axes[2].set_ylabel("examples")
    for axis in axes:
        axis.legend(fontsize=8)
    request = certificate["request"]
    figure.suptitle(f"request {request['id']}: forget {request['kind']} {', '.join(request['targets'][:5])} - "
                    f"{'VERIFIED' if certificate['verified'] else 'NOT VERIFIED'} against retraining")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_certificate_html(certificate: dict, png: Path, path: Path) -> None:
    request, gaps = certificate["request"], certificate["gaps_to_retrained"]
    rows = "".join(
        f"<tr><td>{name}</td>" + "".join(f"<td>{figures[key]:.4f}</td>" for key in (
            "forget_accuracy", "retain_accuracy", "test_accuracy", "threshold_attack_auc", "shadow_attack_auc",
            "forget_distance_to_retrained", "test_distance_to_retrained")) + "</tr>"
        for name, figures in certificate["models"].items())
    checks = "".join(f"<li>{html.escape(name)}: {'holds' if ok else 'FAILS'}</li>"
                     for name, ok in certificate["checks"]["passed"].items())
    forgetting = certificate.get("forgetting")
    image = base64.b64encode(png.read_bytes()).decode()
    path.write_text(f"""<!doctype html><meta charset="utf-8"><title>Unlearning certificate {request['id']}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}td,th{{padding:4px 10px;text-align:right}}
table{{border-collapse:collapse}}tr:nth-child(even){{background:#f3f3f3}}</style>
<h1>Unlearning certificate: request {request['id']}</h1>
<p>Forget {html.escape(request['kind'])} <b>{html.escape(', '.join(request['targets']))}</b> from teacher
{html.escape(request['base_teacher'])}. Reason: {html.escape(request['reason'])}.</p>
<p><b>{'Verified' if certificate['verified'] else 'Not verified'}</b>: the unlearned model is compared with the
teacher's recipe retrained without the data, in the same run{retrained_text(certificate)}.</p>
<table><tr><th>model</th><th>forgotten acc.</th><th>kept acc.</th><th>test acc.</th><th>threshold attack AUC</th>
<th>shadow attack AUC</th><th>JS to retrained (forgotten)</th><th>JS to retrained (test)</th></tr>{rows}</table>
<ul>{checks}</ul>
<p>Gaps to retrained: forgotten accuracy {gaps['forget_accuracy_points']:.2f} points, attack AUC
{max(gaps['threshold_attack_auc'], gaps['shadow_attack_auc']):.3f}, test accuracy
{gaps['test_accuracy_points_below']:.2f} points below; wall time {certificate['time_ratio_to_retraining']:.1%} of
retraining ({certificate['seconds']['unlearn']:.1f} s against {certificate['seconds']['retrain']:.1f} s).
{f"Forgetting score over {forgetting['references']} references: {forgetting['score']:.3f}." if forgetting else ""}</p>
<p>Targets for the forgotten data: {html.escape(guides_text(certificate))}.</p>
<img src="data:image/png;base64,{image}" style="width:100%">
""")
