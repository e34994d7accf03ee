"""`edgekit explain`: a model artifact and a night from the data directory, through
`student.explain_minutes`; the re-label VAE is kept in the store."""

from __future__ import annotations

import torch

import student
import teacher
from edgekit._store import ArtifactStore, code_version

VAE_EPOCHS = 20


def relabel_vae(store: ArtifactStore, contract: teacher.InputContract, data_dir, progress: bool) -> student.VAE:
    """The VAE re-label distillation needs, trained once on the learning nights found in the data
    directory and kept in the store as a `vae` artifact."""
    folder = teacher.find_apnea_dir(data_dir)
    records = [record for record in teacher.LEARNING_RECORDS if (folder / f"{record}.hea").exists()]
    if not records:
        raise teacher.ApneaDataError("re-label distillation trains a VAE on learning-set nights (a01-c10); "
                                     "none found in the data directory")
    config = {"records": records, "contract": contract.to_dict(), "epochs": VAE_EPOCHS}
    for artifact in store.list("vae"):
        if artifact.manifest["config"] == config:
            state = torch.load(artifact.path / "vae.pt", map_location="cpu", weights_only=True)
            vae = student.VAE(tuple(contract.shape))
            vae.load_state_dict(state)
            return vae.eval()
    windows, provenance = teacher.load_windows(records, data_dir, contract.window_spec(), progress=progress)
    vae, history = student.train_vae(torch.from_numpy(windows.inputs).float(), epochs=VAE_EPOCHS, progress=progress)
    staging = store.staging_dir("vae", config)
    torch.save(vae.state_dict(), staging / "vae.pt")
    store.commit(staging, kind="vae", config=config, parents=[], data=provenance,
                 metrics={"final_loss": history[-1]["loss"]}, code_version=code_version())
    return vae


def explain_minutes(store: ArtifactStore, artifact_ref: str, record: str, minutes: list[int] | None, *,
                    method: str = "neuromask", target: str = "apnea", data_dir=None, progress: bool = False) -> dict:
    """Maps for `minutes` of `record` (None: every flagged minute) by the artifact's model, with its
    decision rule; `student.explain_minutes` says what the result holds."""
    artifact = store.get(artifact_ref)
    contract = teacher.InputContract.from_dict(artifact.manifest["contract"])
    model, checkpoint = teacher.load_teacher(artifact.path)
    rule = teacher.TrainConfig(**checkpoint["config"]).decision
    windows, scored, _ = teacher.night_windows(teacher.read_night(record, data_dir), contract.window_spec())
    vae = relabel_vae(store, contract, data_dir, progress) if method == "relabel" else None
    result = student.explain_minutes(model, contract, torch.from_numpy(windows).float(), rule, minutes,
                                     method=method, target=target, vae=vae, night=record, scored=scored)
    return {"artifact": artifact.id, "record": record, **result}
