"""How hard is a synthetic set to trace back to the real data? The measures of the AM paper
(Nikolaidis et al. 2019, sections 4.2-4.3) and a memorisation check, as plain functions.

- `nearest_neighbour_ratio`: how close synthetic samples sit to their nearest real training sample,
  against how close unseen real samples sit to theirs. A ratio near or above 1 means the synthetic
  set is no closer to the training data than new data would be; well below 1 means copied samples.
- `split_teams`: the two teams of patients of the paper's identifier test; `identification` trains
  and scores the team and patient identifiers once `edgekit synth audit` has re-run the teacher and
  synth stages per team.
- `interpretation_rates`: the fooling-example and hidden-message rates (Definitions 4.1-4.2) of a
  set S of classifiers built differently from the teacher; `interpretation` trains S and h_s.

The audit's classifiers are trained on the server's real data by a `train_classifier(arch, inputs,
labels, seed)` the caller gives (the student recipe, `edgekit._audit`): this room sits below the
students and does not choose their recipe.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

import teacher


def nearest_neighbour_distances(queries: torch.Tensor, references: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """l2 distance from each query to its nearest reference, both flattened to vectors."""
    queries, references = queries.flatten(1).float(), references.flatten(1).float()
    if queries.shape[1] != references.shape[1]:
        raise ValueError(f"queries have {queries.shape[1]} values each, references {references.shape[1]}")
    return torch.cat([torch.cdist(part, references).min(dim=1).values for part in queries.split(chunk)])


def nearest_neighbour_ratio(synthetic: torch.Tensor, train: torch.Tensor, heldout: torch.Tensor) -> dict:
    """Median distance synthetic -> nearest training sample over median held-out -> nearest training
    sample (a ratio below 1 means the synthetic set sits closer to the training data than new data)."""
    synthetic_distance = nearest_neighbour_distances(synthetic, train)
    heldout_distance = nearest_neighbour_distances(heldout, train)
    return {
        "synthetic_to_train_median": float(synthetic_distance.median()),
        "heldout_to_train_median": float(heldout_distance.median()),
        "ratio": float(synthetic_distance.median() / heldout_distance.median().clamp_min(1e-12)),
        # Share of synthetic samples closer to the training data than 99 % of unseen real samples.
        "synthetic_closer_than_heldout_p1": float(
            (synthetic_distance < torch.quantile(heldout_distance, 0.01)).float().mean()
        ),
        "synthetic_samples": len(synthetic_distance),
        "heldout_samples": len(heldout_distance),
        "train_samples": len(train),
    }


def interpretation_rates(teacher_labels: torch.Tensor, similar_labels: torch.Tensor,
                         set_labels: torch.Tensor) -> dict:
    """Fooling-example and hidden-message rates of Definitions 4.1-4.2.

    teacher_labels: (M,) the class h (the teacher) gives each example.
    similar_labels: (M,) the class h_s (a classifier like the teacher) gives each example.
    set_labels: (N, M) the classes the N classifiers of S give.

    A fooling example is one where more than N/2 members of S choose one class other than h's (the
    paper's |S_c| > N/2 with a single c); a hidden message is a fooling example on which h and h_s agree.
    """
    if set_labels.ndim != 2 or set_labels.shape[1] != len(teacher_labels) or len(similar_labels) != len(teacher_labels):
        raise ValueError("set_labels must be (N, M) with M the number of examples of teacher_labels and similar_labels")
    members = set_labels.shape[0]
    num_classes = int(max(set_labels.max(), teacher_labels.max(), similar_labels.max())) + 1
    votes = torch.nn.functional.one_hot(set_labels.long(), num_classes).sum(dim=0)  # (M, classes)
    votes[torch.arange(len(teacher_labels)), teacher_labels.long()] = 0  # only classes other than h's count
    fooling = votes.max(dim=1).values > members / 2
    hidden = fooling & (teacher_labels == similar_labels)
    return {
        "examples": len(teacher_labels),
        "set_size": members,
        "fooling_rate": float(fooling.float().mean()),
        "hidden_message_rate": float(hidden.float().mean()),
        "set_agreement_with_teacher": [float((row == teacher_labels).float().mean()) for row in set_labels],
    }


def split_teams(records: list[str]) -> tuple[list[str], list[str]]:
    """Two teams of patients as the paper's section 4.3, alternating through the sorted records so
    that each team gets a share of every kind of night (a, b, c)."""
    ordered = sorted(records)
    if len(ordered) < 4:
        raise ValueError(f"two teams need at least 4 records, got {len(ordered)}")
    return ordered[0::2], ordered[1::2]


# The set S per input kind: built differently from the teacher (other widths, pooling, no
# convolutions). The teacher's own architecture is left out of S; it is h_s's.
INTERPRETATION_SETS = {
    "image": ("cnn_large", "cnn_tiny", "mlp"),
    "rr-series": ("apnea_cnn", "apnea_cnn_small", "apnea_mlp"),
}
# Unseen real minutes of each team night: its last quarter, after a gap as wide as a window so that
# no held-out window shares a second with a training window.
IDENTIFIER_HELDOUT_FRACTION = 0.25


@dataclass
class AuditConfig:
    """What the audit trains and scores; written into the report."""

    samples: int = 2000  # synthetic and unseen real samples scored (drawn at random, seeded)
    epochs: int | None = None  # epochs of every classifier the audit trains; None: the teacher's
    team_size: int = 4000  # synthetic samples per team (ECG identification)
    seed: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)




# A classifier of the audit: `train_classifier(arch, inputs, labels, seed) -> model` (eval mode).
TrainClassifier = Callable[[str, torch.Tensor, torch.Tensor, int], torch.nn.Module]


def predict_labels(model, inputs: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(teacher.predict_proba(model, inputs).argmax(1))


def interpretation(teacher_model, teacher_arch: str, modality: str, real: teacher.RealData,
                   synthetic: torch.Tensor, heldout: torch.Tensor, heldout_labels: torch.Tensor,
                   train_classifier: TrainClassifier, seed: int) -> dict:
    """Fooling-example and hidden-message rates on the synthetic set and on unseen real data."""
    members = [arch for arch in INTERPRETATION_SETS[modality] if arch != teacher_arch]
    similar = train_classifier(teacher_arch, real.train_inputs, real.train_labels, seed + 1)
    trained = {arch: train_classifier(arch, real.train_inputs, real.train_labels, seed) for arch in members}
    result = {"h": teacher_arch, "h_s": teacher_arch + " (another seed)", "S": members}
    for name, inputs in (("synthetic", synthetic), ("real_heldout", heldout)):
        result[name] = interpretation_rates(
            predict_labels(teacher_model, inputs), predict_labels(similar, inputs),
            torch.stack([predict_labels(model, inputs) for model in trained.values()]),
        )
    # Definition 4.1 asks that every member of S handles real data acceptably: their accuracy.
    result["real_heldout_accuracy"] = {
        name: float((predict_labels(model, heldout) == heldout_labels).float().mean())
        for name, model in {"h": teacher_model, "h_s": similar, **trained}.items()
    }
    return result




def identification(windows: teacher.ApneaWindows, window_minutes: int, teams: tuple[list[str], list[str]],
                   team_sets: list[dict], arch: str, train_classifier: TrainClassifier, seed: int) -> dict:
    """The paper's team identifier (and a per-patient one) on real and synthetic windows.

    `windows`: every minute of the teams' nights, each window `window_minutes` long (held-out minutes
    sit that far from training ones, so that no window shares a second); `team_sets`: per team, its `records`, `teacher`
    and `synth` ids and the synthetic `inputs` its teacher made; `arch`: the identifiers' model.
    """
    records = teams[0] + teams[1]
    train_rows, heldout_rows = split_minutes(windows, gap=window_minutes)
    team_of = {name: index for index, team in enumerate(teams) for name in team}
    team_labels = torch.as_tensor([team_of[name] for name in windows.records])
    patient_labels = torch.as_tensor([records.index(name) for name in windows.records])
    inputs = torch.as_tensor(windows.inputs)

    synthetic_inputs = torch.cat([team["inputs"] for team in team_sets])
    synthetic_teams = torch.cat([torch.full((len(team["inputs"]),), index) for index, team in enumerate(team_sets)])

    team_model = train_classifier(arch, inputs[train_rows], team_labels[train_rows], seed)
    patient_model = train_classifier(arch, inputs[train_rows], patient_labels[train_rows], seed)
    real_team = predict_labels(team_model, inputs[heldout_rows])
    synthetic_team = predict_labels(team_model, synthetic_inputs)
    real_patient = predict_labels(patient_model, inputs[heldout_rows])
    synthetic_patient = predict_labels(patient_model, synthetic_inputs)
    patient_team = torch.as_tensor([team_of[name] for name in records])
    heldout_teams = team_labels[heldout_rows]
    return {
        "teams": [{key: value for key, value in team.items() if key != "inputs"} for team in team_sets],
        "team": {
            "real_heldout_accuracy": float((real_team == heldout_teams).float().mean()),
            "real_heldout_chance": float(torch.bincount(heldout_teams).max() / len(heldout_teams)),
            "synthetic_accuracy": float((synthetic_team == synthetic_teams).float().mean()),
            "synthetic_chance": float(torch.bincount(synthetic_teams).max() / len(synthetic_teams)),
            "real_heldout_minutes": int(heldout_rows.sum()),
            "synthetic_windows": len(synthetic_teams),
        },
        "patient": {
            "patients": len(records),
            "real_heldout_accuracy": float((real_patient == patient_labels[heldout_rows]).float().mean()),
            "real_heldout_chance": float(torch.bincount(patient_labels[heldout_rows]).max() / int(heldout_rows.sum())),
            # The synthetic windows carry no patient; their team does: is the patient the identifier
            # names on the generating team? Chance is 0.5 for equal teams.
            "synthetic_team_of_named_patient_accuracy": float((patient_team[synthetic_patient] == synthetic_teams)
                                                              .float().mean()),
            "synthetic_largest_patient_share": float(torch.bincount(synthetic_patient).max() / len(synthetic_patient)),
        },
    }




def split_minutes(windows: teacher.ApneaWindows, gap: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per night: the first minutes to train on, the last quarter held out, `gap` minutes between."""
    train = np.zeros(len(windows), dtype=bool)
    heldout = np.zeros(len(windows), dtype=bool)
    for name in np.unique(windows.records):
        rows = np.flatnonzero(windows.records == name)
        cut = int(len(rows) * (1 - IDENTIFIER_HELDOUT_FRACTION))
        train[rows[: max(cut - gap, 0)]] = True
        heldout[rows[cut:]] = True
    return torch.as_tensor(train), torch.as_tensor(heldout)


def format_report(report: dict) -> str:
    """The headline figures of an audit, one line each."""
    neighbour, interpretation = report["nearest_neighbour"], report["interpretation"]
    lines = [
        f"audit of {report['synth']} (teacher {report['teacher']})",
        f"  nearest neighbour: synthetic -> train {neighbour['synthetic_to_train_median']:.3f}, "
        f"unseen real -> train {neighbour['heldout_to_train_median']:.3f} (median l2; ratio {neighbour['ratio']:.2f}, "
        f"unseen real: {neighbour['heldout_source']})",
    ]
    for name in ("synthetic", "real_heldout"):
        rates = interpretation[name]
        lines.append(f"  {name}: fooling {rates['fooling_rate']:.1%}, hidden message {rates['hidden_message_rate']:.1%} "
                     f"(S = {', '.join(interpretation['S'])})")
    identification = report["identification"]
    if "skipped" in identification:
        lines.append(f"  identification: skipped ({identification['skipped']})")
    else:
        team, patient = identification["team"], identification["patient"]
        lines.append(f"  team identifier: real {team['real_heldout_accuracy']:.1%} (chance {team['real_heldout_chance']:.1%}), "
                     f"synthetic {team['synthetic_accuracy']:.1%} (chance {team['synthetic_chance']:.1%})")
        lines.append(f"  patient identifier ({patient['patients']} patients): real {patient['real_heldout_accuracy']:.1%} "
                     f"(chance {patient['real_heldout_chance']:.1%}); synthetic windows named a patient of their own "
                     f"team {patient['synthetic_team_of_named_patient_accuracy']:.1%}")
    return "\n".join(lines)
