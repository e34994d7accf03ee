"""A student's figures next to its teacher's, as a person reads them in a terminal."""

from __future__ import annotations

from teacher import night_call_text


def format_student_figures(student: dict, teacher_figures: dict) -> str:
    """The student's figures on the held-out night(s), the teacher's in brackets."""
    minute, reference = student["minute"], teacher_figures["minute"]
    lines = [
        f"student {student['artifact']} ({student['arch']}, {student['epochs']} epochs on the synthetic set only, "
        f"{student['train_seconds']:.0f} s) on {','.join(student['records'])}, teacher in brackets",
        f"  per minute: accuracy {minute['accuracy']:.2%} ({reference['accuracy']:.2%})  "
        f"sensitivity {minute['sensitivity']:.2%} ({reference['sensitivity']:.2%})  "
        f"specificity {minute['specificity']:.2%} ({reference['specificity']:.2%})",
    ]
    teacher_nights = {row["record"]: row for row in teacher_figures["night"]["per_night"]}
    for row in student["night"]["per_night"]:
        other = teacher_nights[row["record"]]
        lines.append(f"  {row['record']}: AHI est {row['estimated_ahi']:.1f} ({other['estimated_ahi']:.1f}) "
                     f"ref {row['reference_ahi']:.1f}  called {night_call_text(row)} ({night_call_text(other)})")
    return "\n".join(lines)
