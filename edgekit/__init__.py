"""edgekit: the one CLI, the stage table that chains the rooms below, the artifact store and the ledger."""

import importlib

# Where each public name lives. They are imported on first use (PEP 562), so `import edgekit`
# (and `edgekit --help`, which imports edgekit.cli) does not load torch through the pipeline.
_EXPORTS = {
    **{name: "edgekit._store" for name in ("Artifact", "ArtifactStore", "StoreError", "code_version")},
    **{name: "edgekit._pipeline" for name in ("STAGES", "Stage", "distill", "evaluate_teacher", "export", "rebuild",
                                               "synthesise", "train_teacher")},
    **{name: "edgekit._unlearn" for name in ("prepare_guides", "teacher_data", "unlearn")},
    "Ledger": "edgekit._ledger",
    "audit_synthetic": "edgekit._audit",
    **{name: "edgekit._explain" for name in ("explain_minutes", "relabel_vae")},
    "run_demo": "edgekit._demo",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups find it without coming here
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
