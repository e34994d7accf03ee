"""`edgekit synth audit`: how traceable a synthetic set is to the real data behind its teacher.

Three measures (synth._audit holds the arithmetic):

1. nearest neighbours: synthetic -> closest real training sample, against unseen real -> training;
2. interpretation (the AM paper's section 4.2): a set S of classifiers built differently from the
   teacher, and h_s built like it, all trained on the real data; the fooling-example and
   hidden-message rates on the synthetic set, next to the same rates on unseen real data;
3. identification (section 4.3, ECG only): the teacher's nights are split into two teams of
   patients; each team gets its own teacher and synthetic set made with this set's settings; a
   classifier trained on real windows to tell the teams apart is scored on unseen real minutes and on
   the teams' synthetic windows. A per-patient identifier is scored the same way.

Every classifier here is trained on the server's real data; the audit's figures go into the
synthetic set's manifest under `evaluations.audit`.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass

import numpy as np
import torch

import synth
import teacher
from edgekit._store import ArtifactStore
from student import student_config
from synth._audit import interpretation_rates, nearest_neighbour_ratio, split_teams

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


@dataclass
class RealData:
    train_inputs: torch.Tensor
    train_labels: torch.Tensor
    heldout_inputs: torch.Tensor
    heldout_labels: torch.Tensor
    heldout_source: str


def audit_synthetic(store: ArtifactStore, synth_ref: str, data_dir: str | os.PathLike | None,
                    config: AuditConfig = AuditConfig(), *, progress: bool = True) -> dict:
    """Run the three measures on a synthetic set artifact; returns the report (also in its manifest)."""
    synthetic_artifact = store.get(synth_ref)
    if synthetic_artifact.kind != "synth":
        raise ValueError(f"{synthetic_artifact.id} is a {synthetic_artifact.kind}, not a synthetic set")
    teacher_artifact = store.get(synthetic_artifact.manifest["parents"][0])
    teacher_config = teacher_artifact.manifest["config"]
    teacher_model, _ = teacher.load_teacher(teacher_artifact.path)
    modality = synthetic_artifact.manifest["contract"]["modality"]

    rng = np.random.default_rng(config.seed)
    synthetic = synth.load_synthetic(synthetic_artifact.path)["inputs"]
    synthetic = synthetic[_draw(rng, len(synthetic), config.samples)]
    real = _real_data(teacher_config, data_dir, progress)
    heldout = _draw(rng, len(real.heldout_inputs), config.samples)

    report = {
        "synth": synthetic_artifact.id,
        "teacher": teacher_artifact.id,
        "config": config.to_dict(),
        "nearest_neighbour": {
            "heldout_source": real.heldout_source,
            **nearest_neighbour_ratio(synthetic, teacher.to_float(real.train_inputs),
                                      teacher.to_float(real.heldout_inputs[heldout])),
        },
        "interpretation": _interpretation(teacher_model, teacher_config, modality, real, synthetic,
                                          real.heldout_inputs[heldout], real.heldout_labels[heldout], config,
                                          progress),
    }
    if teacher_config["dataset"] == "apnea-ecg":
        report["identification"] = _identification(store, teacher_config, synthetic_artifact.manifest["config"],
                                                   data_dir, config, progress)
    else:
        report["identification"] = {"skipped": f"{teacher_config['dataset']} has no patients to identify"}
    evaluations = dict(synthetic_artifact.manifest.get("evaluations", {}))
    evaluations["audit"] = report
    store.update_manifest(synthetic_artifact.id, evaluations=evaluations)
    return report


def _draw(rng: np.random.Generator, available: int, wanted: int) -> torch.Tensor:
    return torch.as_tensor(np.sort(rng.permutation(available)[:wanted]))


def _real_data(teacher_config: dict, data_dir, progress: bool) -> RealData:
    """The teacher's real training data and unseen real data of the same kind."""
    if teacher_config["dataset"] == "apnea-ecg":
        spec = teacher.window_spec(teacher.model_contract(teacher_config["arch"], teacher_config.get("arch_options")))
        train, _ = teacher.load_windows(teacher_config["train_records"], data_dir, spec, progress=progress)
        # Unseen nights: the teacher's validation nights, else its test nights (the demo's data holds
        # one test night, not all of x01-x35).
        if teacher_config.get("val_records"):
            heldout_records, heldout_source = teacher_config["val_records"], "validation nights"
        else:
            heldout_records = teacher_config.get("test_records") or list(teacher.TEST_RECORDS)
            heldout_source = ("test nights x01-x35" if list(heldout_records) == list(teacher.TEST_RECORDS)
                              else f"test nights {','.join(heldout_records)}")
        heldout, _ = teacher.load_windows(heldout_records, data_dir, spec, progress=progress)
        train_rows, heldout_rows = train.labels >= 0, heldout.labels >= 0
        return RealData(
            torch.as_tensor(train.inputs[train_rows]), torch.as_tensor(train.labels[train_rows]),
            torch.as_tensor(heldout.inputs[heldout_rows]), torch.as_tensor(heldout.labels[heldout_rows]),
            heldout_source=heldout_source,
        )
    train = teacher.load_image_dataset(teacher_config["dataset"], "train", data_dir, progress=progress)
    test = teacher.load_image_dataset(teacher_config["dataset"], "test", data_dir, progress=progress)
    return RealData(train.images, train.labels, test.images, test.labels, heldout_source=f"{test.source} test split")


def _train(teacher_config: dict, arch: str, inputs, labels, config: AuditConfig, seed: int, progress: bool):
    """One of the audit's classifiers: `arch` on real data with the student recipe, hard labels, for
    as many epochs as the teacher had on real data unless told, and no mixing (no teacher labels
    mixes here)."""
    train_config = student_config(teacher_config, arch, labels="hard", epochs=config.epochs or teacher_config["epochs"],
                                  seed=seed, mixup=0.0)
    train_config.arch_options = {**train_config.arch_options, "num_classes": int(labels.max()) + 1}
    with tempfile.TemporaryDirectory() as work:
        model, _ = teacher.fit(train_config, inputs, labels, work, progress=progress)
    return model.eval()


def _predict(model, inputs: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(teacher.predict_proba(model, inputs).argmax(1))


def _interpretation(teacher_model, teacher_config: dict, modality: str, real: RealData,
                    synthetic: torch.Tensor, heldout: torch.Tensor, heldout_labels: torch.Tensor,
                    config: AuditConfig, progress: bool) -> dict:
    """Fooling-example and hidden-message rates on the synthetic set and on unseen real data."""
    members = [arch for arch in INTERPRETATION_SETS[modality] if arch != teacher_config["arch"]]
    similar = _train(teacher_config, teacher_config["arch"], real.train_inputs, real.train_labels, config,
                     seed=config.seed + 1, progress=progress)
    trained = {arch: _train(teacher_config, arch, real.train_inputs, real.train_labels, config,
                            seed=config.seed, progress=progress) for arch in members}
    result = {"h": teacher_config["arch"], "h_s": teacher_config["arch"] + " (another seed)", "S": members}
    for name, inputs in (("synthetic", synthetic), ("real_heldout", heldout)):
        result[name] = interpretation_rates(
            _predict(teacher_model, inputs), _predict(similar, inputs),
            torch.stack([_predict(model, inputs) for model in trained.values()]),
        )
    # Definition 4.1 asks that every member of S handles real data acceptably: their accuracy.
    result["real_heldout_accuracy"] = {
        name: float((_predict(model, heldout) == heldout_labels).float().mean())
        for name, model in {"h": teacher_model, "h_s": similar, **trained}.items()
    }
    return result


def _identification(store: ArtifactStore, teacher_config: dict, synth_config: dict, data_dir,
                    config: AuditConfig, progress: bool) -> dict:
    """The paper's team identifier (and a per-patient one) on real and synthetic windows."""
    from edgekit._pipeline import synthesise, train_teacher  # the audit re-runs those stages per team

    teams = split_teams(teacher_config["train_records"])
    team_sets = []
    for team in teams:
        team_config = teacher.TrainConfig(**{**teacher_config, "train_records": team, "val_records": [],
                                             "test_records": [],
                                             "epochs": config.epochs or teacher_config["epochs"]})
        team_teacher = train_teacher(store, team_config, data_dir, resume=True, progress=progress)
        team_synth_config = synth.SynthConfig(**{**synth_config, "size": config.team_size, "privacy_weight":
                                                 synth_config.get("privacy_weight", 0.0)})
        team_synth = synthesise(store, team_teacher.id, team_synth_config, data_dir, resume=True, progress=progress)
        team_sets.append({"records": team, "teacher": team_teacher.id, "synth": team_synth.id,
                          "inputs": synth.load_synthetic(team_synth.path)["inputs"]})

    spec = teacher.window_spec(teacher.model_contract(teacher_config["arch"], teacher_config.get("arch_options")))
    records = teams[0] + teams[1]
    windows, _ = teacher.load_windows(records, data_dir, spec, progress=progress)
    train_rows, heldout_rows = _split_minutes(windows, gap=spec.context_minutes * 2 + 1)
    team_of = {name: index for index, team in enumerate(teams) for name in team}
    team_labels = torch.as_tensor([team_of[name] for name in windows.records])
    patient_labels = torch.as_tensor([records.index(name) for name in windows.records])
    inputs = torch.as_tensor(windows.inputs)

    synthetic_inputs = torch.cat([team["inputs"] for team in team_sets])
    synthetic_teams = torch.cat([torch.full((len(team["inputs"]),), index) for index, team in enumerate(team_sets)])

    team_model = _train(teacher_config, teacher_config["arch"], inputs[train_rows], team_labels[train_rows],
                        config, seed=config.seed, progress=progress)
    patient_model = _train(teacher_config, teacher_config["arch"], inputs[train_rows], patient_labels[train_rows],
                           config, seed=config.seed, progress=progress)
    real_team = _predict(team_model, inputs[heldout_rows])
    synthetic_team = _predict(team_model, synthetic_inputs)
    real_patient = _predict(patient_model, inputs[heldout_rows])
    synthetic_patient = _predict(patient_model, synthetic_inputs)
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


def _split_minutes(windows: teacher.ApneaWindows, gap: int) -> tuple[torch.Tensor, torch.Tensor]:
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
