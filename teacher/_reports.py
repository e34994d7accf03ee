"""An evaluation's figures as a person reads them in a terminal."""

from __future__ import annotations


def format_apnea_figures(figures: dict) -> str:
    """An evaluation of an apnea model (`evaluate_apnea_teacher`), a line per minute figure and per night."""
    minute, night = figures["minute"], figures["night"]
    lines = [
        f"teacher {figures['artifact']} on {len(figures['records'])} night(s), {minute['minutes']} minutes scored, "
        f"{figures.get('no_signal_minutes', 0)} without signal",
        f"  per minute: accuracy {minute['accuracy']:.2%}  sensitivity {minute['sensitivity']:.2%}  "
        f"specificity {minute['specificity']:.2%}  ROC AUC {minute['roc_auc']:.3f}",
        f"  per night:  {night['nights_correct']}/{night['nights']} AHI>5 calls correct, "
        f"AHI correlation {night['ahi_correlation']:.3f}",
    ]
    for row in night["per_night"]:
        lines.append(
            f"    {row['record']}: AHI est {row['estimated_ahi']:5.1f} ref {row['reference_ahi']:5.1f}  "
            f"{'apneic' if row['predicted_apneic'] else 'normal'}"
            f"{'' if row['predicted_apneic'] == row['reference_apneic'] else ' (WRONG)'}  "
            f"minute accuracy {row['minute_accuracy']:.1%}"
        )
    return "\n".join(lines)


def format_image_figures(figures: dict) -> str:
    """An evaluation of an image model on its test split, with the accuracy per class."""
    lines = [
        f"teacher {figures['artifact']} on the {figures['source']} test split, {figures['examples']} images: "
        f"accuracy {figures['accuracy']:.2%}",
    ]
    lines += [f"    {name:>12}: {accuracy:.2%}" for name, accuracy in figures["per_class_accuracy"].items()]
    return "\n".join(lines)


def night_call_text(night: dict) -> str:
    """A night's call, marked when it is not the reference's."""
    right = night["predicted_apneic"] == night["reference_apneic"]
    return f"{'apneic' if night['predicted_apneic'] else 'normal'}{'' if right else ' (WRONG)'}"
