"""How hard is a synthetic set to trace back to the real data? The measures of the AM paper
(Nikolaidis et al. 2019, sections 4.2-4.3) and a memorisation check, as plain functions.

- `nearest_neighbour_ratio`: how close synthetic samples sit to their nearest real training sample,
  against how close unseen real samples sit to theirs. A ratio near or above 1 means the synthetic
  set is no closer to the training data than new data would be; well below 1 means copied samples.
- `split_teams`: the two teams of patients of the paper's identifier test (the identifier itself is
  trained and scored in `edgekit._audit`, which re-runs the teacher and synth stages per team).
- `interpretation_rates`: the fooling-example and hidden-message rates (Definitions 4.1-4.2) of a
  set S of classifiers built differently from the teacher.
"""

from __future__ import annotations

import torch


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
