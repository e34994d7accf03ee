"""`edgekit synth audit`: how traceable a synthetic set is to the real data behind its teacher.

Three measures (`synth`'s audit holds them): nearest neighbours, the interpretation rates of a set S
of classifiers built unlike the teacher, and for ECG the paper's team (and a per-patient) identifier,
for which this module re-runs the teacher and synth stages per team of patients. Every classifier
is trained on the server's real data with the student recipe; the report goes into the synthetic
set's manifest under `evaluations.audit`.
"""

from __future__ import annotations

import tempfile

import numpy as np
import torch

import synth
import teacher
from edgekit import _pipeline
from edgekit._store import ArtifactStore
from student import student_config


def audit_synthetic(store: ArtifactStore, synth_ref: str, data_dir, config: synth.AuditConfig = synth.AuditConfig(),
                    *, progress: bool = True) -> dict:
    """Run the three measures on a synthetic set artifact; returns the report (also in its manifest)."""
    synthetic_artifact = store.get(synth_ref)
    if synthetic_artifact.kind != "synth":
        raise ValueError(f"{synthetic_artifact.id} is a {synthetic_artifact.kind}, not a synthetic set")
    teacher_artifact = store.get(synthetic_artifact.manifest["parents"][0])
    teacher_config = teacher_artifact.manifest["config"]
    teacher_model, _ = teacher.load_teacher(teacher_artifact.path)
    modality = synthetic_artifact.manifest["contract"]["modality"]
    handler = teacher.dataset(teacher_config["dataset"])

    rng = np.random.default_rng(config.seed)
    synthetic = synth.load_synthetic(synthetic_artifact.path)["inputs"]
    synthetic = synthetic[_draw(rng, len(synthetic), config.samples)]
    real = handler.real_data(teacher.TrainConfig(**teacher_config), data_dir, progress)
    heldout = _draw(rng, len(real.heldout_inputs), config.samples)
    train_classifier = _classifier_trainer(teacher_config, config, progress)

    report = {
        "synth": synthetic_artifact.id,
        "teacher": teacher_artifact.id,
        "config": config.to_dict(),
        "nearest_neighbour": {
            "heldout_source": real.heldout_source,
            **synth.nearest_neighbour_ratio(synthetic, teacher.to_float(real.train_inputs),
                                            teacher.to_float(real.heldout_inputs[heldout])),
        },
        "interpretation": synth.interpretation(teacher_model, teacher_config["arch"], modality, real, synthetic,
                                               real.heldout_inputs[heldout], real.heldout_labels[heldout],
                                               train_classifier, config.seed),
    }
    if handler.has_patients:
        report["identification"] = _identification(store, teacher_config, synthetic_artifact.manifest["config"],
                                                   data_dir, config, train_classifier, progress)
    else:
        report["identification"] = {"skipped": f"{teacher_config['dataset']} has no patients to identify"}
    evaluations = dict(synthetic_artifact.manifest.get("evaluations", {}))
    evaluations["audit"] = report
    store.update_manifest(synthetic_artifact.id, evaluations=evaluations)
    return report


def _draw(rng: np.random.Generator, available: int, wanted: int) -> torch.Tensor:
    return torch.as_tensor(np.sort(rng.permutation(available)[:wanted]))


def _classifier_trainer(teacher_config: dict, config: synth.AuditConfig, progress: bool) -> synth.TrainClassifier:
    """The audit's classifiers: `arch` on real data with the student recipe, hard labels, for as many
    epochs as the teacher had on real data unless told, and no mixing (no teacher labels mixes here)."""
    def train_classifier(arch: str, inputs: torch.Tensor, labels: torch.Tensor, seed: int) -> torch.nn.Module:
        train_config = student_config(teacher_config, arch, labels="hard",
                                      epochs=config.epochs or teacher_config["epochs"], seed=seed, mixup=0.0)
        train_config.arch_options = {**train_config.arch_options, "num_classes": int(labels.max()) + 1}
        with tempfile.TemporaryDirectory() as work:
            model, _ = teacher.fit(train_config, inputs, labels, work, progress=progress)
        return model.eval()
    return train_classifier


def _identification(store: ArtifactStore, teacher_config: dict, synth_config: dict, data_dir,
                    config: synth.AuditConfig, train_classifier: synth.TrainClassifier, progress: bool) -> dict:
    """Each team's own teacher and synthetic set, made with this set's settings, then the team and
    patient identifiers (`synth.identification`) on the teams' real and synthetic windows."""
    teams = synth.split_teams(teacher_config["train_records"])
    team_sets = []
    for team in teams:
        team_config = teacher.TrainConfig(**{**teacher_config, "train_records": team, "val_records": [],
                                             "test_records": [],
                                             "epochs": config.epochs or teacher_config["epochs"]})
        team_teacher = _pipeline.train_teacher(store, team_config, data_dir, resume=True, reuse=True,
                                              progress=progress)
        team_synth_config = synth.SynthConfig(**{**synth_config, "size": config.team_size, "privacy_weight":
                                                 synth_config.get("privacy_weight", 0.0)})
        team_synth = _pipeline.synthesise(store, team_teacher.id, team_synth_config, data_dir, resume=True, progress=progress)
        team_sets.append({"records": team, "teacher": team_teacher.id, "synth": team_synth.id,
                          "inputs": synth.load_synthetic(team_synth.path)["inputs"]})

    spec = teacher.model_contract(teacher_config["arch"], teacher_config.get("arch_options")).window_spec()
    windows, _ = teacher.load_windows(teams[0] + teams[1], data_dir, spec, progress=progress)
    return synth.identification(windows, 2 * spec.context_minutes + 1, teams, team_sets, teacher_config["arch"],
                                train_classifier, config.seed)
