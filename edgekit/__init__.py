"""edgekit: the one CLI, the pipeline that chains the stages, and the artifact store."""

import importlib

# Where each public name lives. They are imported on first use (PEP 562), so `import edgekit`
# (and `edgekit --help`, which imports edgekit.cli) does not load torch through the pipeline.
_EXPORTS = {
    "Artifact": "edgekit._store",
    "ArtifactStore": "edgekit._store",
    "code_version": "edgekit._store",
    "evaluate_teacher": "edgekit._pipeline",
    "run_demo": "edgekit._pipeline",
    "train_teacher": "edgekit._pipeline",
}

__all__ = ["Artifact", "ArtifactStore", "code_version", "evaluate_teacher", "run_demo", "train_teacher"]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups find it without coming here
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
