"""edgekit: the one CLI, the pipeline that chains the stages, and the artifact store."""

from edgekit._pipeline import evaluate_teacher, run_demo, train_teacher
from edgekit._store import Artifact, ArtifactStore, code_version

__all__ = ["Artifact", "ArtifactStore", "code_version", "evaluate_teacher", "run_demo", "train_teacher"]
