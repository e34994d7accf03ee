"""Artifact store: one sealed directory per pipeline stage, indexed in SQLite.

Every stage (teacher training, synthetic data, student, export, ...) works in a
staging directory and, once finished, seals it into an artifact directory
``root/{kind}-{hash}`` that holds a ``manifest.json``. Sealing is atomic (a
single ``os.rename``), so a run that is interrupted never leaves a
half-written artifact behind, only a staging directory it can resume from.

``root/index.sqlite`` indexes artifacts and their parents so runs can be
listed and traced. The manifests on disk are the source of truth: the index
can always be rebuilt from them with :meth:`ArtifactStore.reindex`. The
index carries a schema version (``PRAGMA user_version``), checked on open.

This module imports no torch (nor any room that does), so commands that only
read the store, and ``edgekit --help``, start at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pathlib
import re
import shutil
import sqlite3
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

MANIFEST_NAME = "manifest.json"
INDEX_NAME = "index.sqlite"
STAGING_NAME = ".staging"
# Removed artifacts are renamed in here, then deleted, so none is ever seen half-deleted.
TRASH_NAME = ".trash"

# Seconds a connection waits for another process's lock before giving up.
_BUSY_TIMEOUT_S = 30.0

# Kinds become part of directory names, so keep them to safe characters.
_KIND_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

# Manifest keys that define an artifact's identity or history; they must not
# change after commit, otherwise the id would no longer describe the content.
_SEALED_KEYS = frozenset({"kind", "id", "created", "config", "parents", "data", "files"})

# Metrics shown by format_table, in order of preference (the first two found).
_HEADLINE_METRICS = ("test_accuracy", "val_accuracy", "accuracy", "macro_f1", "val_loss", "loss")

# The version of the store, kept in `PRAGMA user_version`: its tables (the ledger's, edgekit._ledger,
# included) and the artifacts' config format. Version 2: a config carries its decision rule as one
# `decision` dict (`teacher.DecisionRule`), where versions 0-1 (before the version was recorded, and
# the first one recorded) had `smoothing_minutes` and `decision_threshold`; the tables are unchanged.
# An older store holding artifacts is refused with that reason (its ids hash the old configs, so it
# cannot be rewritten in place); an empty one is stamped. Whoever changes either bumps this.
SCHEMA_VERSION = 2
OLDER_STORE = ("made by an older edgekit (store version {version}): its artifacts' configs carry the "
               "decision rule as smoothing_minutes and decision_threshold, which this edgekit reads as one "
               "decision rule; make them again in a new runs folder (the old one is left as it is)")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS artifacts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    created TEXT NOT NULL,
    path TEXT NOT NULL,
    manifest_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS parents (
    child TEXT NOT NULL,
    parent TEXT NOT NULL,
    PRIMARY KEY (child, parent)
);
CREATE INDEX IF NOT EXISTS parents_by_parent ON parents (parent);
CREATE INDEX IF NOT EXISTS artifacts_by_kind ON artifacts (kind, created);
"""


class StoreError(Exception):
    """A reference the store cannot resolve (no such artifact, an ambiguous prefix) or a runs
    folder it cannot use (not a directory, an index that is not one, a newer schema)."""


@dataclass(frozen=True)
class Artifact:
    """A sealed artifact directory and its manifest.

    Attributes:
        id: ``f"{kind}-{first 12 hex digits of the content hash}"``.
        kind: Pipeline stage that produced it, e.g. ``"teacher"``.
        path: The artifact directory.
        manifest: Parsed ``manifest.json``.
    """

    id: str
    kind: str
    path: pathlib.Path
    manifest: dict


# --------------------------------------------------------------------------
# Module-level helpers
# --------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file: `teacher._files.sha256_file`, imported when first needed (sealing an
    artifact) since importing the teacher room loads torch, which reading a store does not need."""
    from teacher._files import sha256_file as digest

    return digest(path)


def canonical_json(obj) -> str:
    """Serialise ``obj`` deterministically so equal content always hashes the same."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _fsync_dir(path: str | os.PathLike) -> None:
    """Flush a directory entry to disk so a rename or replace survives a crash.

    Best effort: some platforms and filesystems cannot fsync directories.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    """Write JSON so readers see either the old file or the new one, never a partial one.

    The data goes to a temporary file in the same directory (so ``os.replace``
    is a rename within one filesystem), is flushed and fsynced, then replaces
    ``path``.
    """
    path = pathlib.Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates files readable by the owner only; manifests are meant to be shared.
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)


def _git(*args: str) -> str | None:
    """Run a git command next to this source file; None on any failure."""
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=pathlib.Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip()


def code_version() -> str:
    """Describe the code that produced an artifact, so results can be traced to a commit.

    Returns e.g. ``"edgekit 0.1.0+git 3f2a9c1-dirty"``. The git part is only
    present inside a git checkout; this function never raises.
    """
    import importlib.metadata  # 30 ms of imports: only when sealing, not for `edgekit --help`

    try:
        version = importlib.metadata.version("edgekit")
    except Exception:
        version = "0+unknown"
    text = f"edgekit {version}"
    try:
        sha = _git("rev-parse", "--short", "HEAD")
        if sha:
            text += f"+git {sha}"
            # Untracked files are ignored, as with `git describe --dirty`.
            status = _git("status", "--porcelain", "--untracked-files=no")
            if status:
                text += "-dirty"
    except Exception:
        pass
    return text


def _format_metric(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def format_table(artifacts: list[Artifact], notes: dict[str, str] | None = None) -> str:
    """Render artifacts as a plain-text table for the ``edgekit runs`` command.

    Args:
        notes: A remark per artifact id (e.g. the ledger's "stale, rebuilt as ..."), shown in a
            last NOTES column when any listed artifact has one.
    """
    if not artifacts:
        return "(no artifacts)"
    notes = {art.id: notes[art.id] for art in artifacts if art.id in (notes or {})}
    header = ("ID", "KIND", "CREATED (UTC)", "PARENTS", "METRICS") + (("NOTES",) if notes else ())
    rows = []
    for art in artifacts:
        manifest = art.manifest
        created = str(manifest.get("created", ""))[:19].replace("T", " ")
        parents = ", ".join(manifest.get("parents") or []) or "-"
        metrics = manifest.get("metrics") or {}
        headline = [name for name in _HEADLINE_METRICS if name in metrics][:2]
        metric_text = "  ".join(f"{name}={_format_metric(metrics[name])}" for name in headline) or "-"
        rows.append((art.id, art.kind, created, parents, metric_text) + ((notes.get(art.id, "-"),) if notes else ()))
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in table]
    return "\n".join(lines)


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _content_files(directory: pathlib.Path) -> dict[str, str]:
    """Map every file under ``directory`` (sorted POSIX relative paths) to its SHA-256.

    The top-level manifest and its temporary files are skipped: the manifest is
    written after hashing and must not feed into its own hash.
    """
    files = {}
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        for name in filenames:
            full = pathlib.Path(dirpath, name)
            rel = full.relative_to(directory).as_posix()
            if rel == MANIFEST_NAME or (rel.startswith(f".{MANIFEST_NAME}.") and rel.endswith(".tmp")):
                continue
            files[rel] = sha256_file(full)
    return dict(sorted(files.items()))


def _read_manifest(directory: pathlib.Path) -> dict:
    with open(directory / MANIFEST_NAME, encoding="utf-8") as f:
        manifest = json.load(f)
    if not isinstance(manifest, dict) or "id" not in manifest or "kind" not in manifest:
        raise ValueError(f"{directory / MANIFEST_NAME} is not an artifact manifest (needs 'id' and 'kind')")
    return manifest


def _check_kind(kind: str) -> None:
    if not isinstance(kind, str) or not _KIND_RE.match(kind):
        raise ValueError(f"invalid artifact kind {kind!r}: use letters, digits, '_' and '-'")


# --------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------


class ArtifactStore:
    """Artifacts under one runs directory, with a SQLite index of kinds and parents.

    The database is opened per operation with a busy timeout, so several
    processes (e.g. a training run and ``edgekit runs``) can share it.
    """

    def __init__(self, root: str | os.PathLike):
        """Open (or create) the store at ``root``.

        If ``index.sqlite`` is missing or empty, the index is rebuilt from the
        artifact manifests on disk. An index made before schema versions were
        recorded is stamped with the current one (its tables are the same).

        Raises:
            StoreError: ``root`` is not a directory, ``index.sqlite`` is not an
                SQLite database, or its schema is newer than this edgekit reads.
        """
        self.root = pathlib.Path(root).resolve()
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"runs folder {self.root} is not a directory")
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / INDEX_NAME
        had_index = self.db_path.is_file() and self.db_path.stat().st_size > 0
        self._open_index()
        if not had_index:
            self.reindex()

    @classmethod
    def for_reference(cls, ref: str | os.PathLike | None, default_root: str | os.PathLike) -> "ArtifactStore":
        """The store that owns ``ref``, as MLflow and DVC resolve a path in its own store.

        The path of an artifact directory sitting in a runs folder (see :func:`owning_root`) opens
        that folder; anything else (an id, a prefix, an artifact copied somewhere on its own, None)
        opens ``default_root``.
        """
        return cls(owning_root(ref) or default_root)

    def _open_index(self) -> None:
        """Create the tables if missing and check (or stamp) the schema version, in one write
        transaction so two processes opening a new store do not race."""
        try:
            with self._connect() as conn:
                conn.execute("BEGIN IMMEDIATE")
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.db_path} has schema version {version}, newer than the {SCHEMA_VERSION} this "
                        "edgekit reads: it was written by a newer edgekit; use that one (or a copy of the "
                        "runs folder without index.sqlite, which is rebuilt from the manifests)"
                    )
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                if version < SCHEMA_VERSION:  # a new index, or one an older kit wrote
                    if conn.execute("SELECT COUNT(*) FROM artifacts").fetchone()[0]:
                        raise StoreError(f"{self.root}: " + OLDER_STORE.format(version=version))
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.OperationalError:
            raise  # e.g. locked beyond the busy timeout: not a bad store
        except sqlite3.DatabaseError as error:
            raise StoreError(
                f"{self.db_path} is not an edgekit index ({error}); move it aside and edgekit rebuilds "
                "it from the artifacts' manifests"
            ) from error

    def schema_version(self) -> int:
        """The schema version recorded in ``index.sqlite``."""
        with self._connect() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def __repr__(self) -> str:
        return f"ArtifactStore({str(self.root)!r})"

    # -- database plumbing -------------------------------------------------

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One connection and one transaction per operation; committed on success."""
        conn = sqlite3.connect(self.db_path, timeout=_BUSY_TIMEOUT_S)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
            with conn:
                yield conn
        finally:
            conn.close()

    def _artifact_from_row(self, row) -> Artifact:
        artifact_id, kind, path, manifest_json = row
        # Paths are stored relative to root so a runs directory can be moved or copied.
        return Artifact(id=artifact_id, kind=kind, path=self.root / path, manifest=json.loads(manifest_json))

    def _upsert(self, conn: sqlite3.Connection, artifact: Artifact) -> None:
        manifest = artifact.manifest
        conn.execute(
            "INSERT OR REPLACE INTO artifacts (id, kind, created, path, manifest_json) VALUES (?, ?, ?, ?, ?)",
            (
                artifact.id,
                artifact.kind,
                str(manifest.get("created", "")),
                artifact.path.relative_to(self.root).as_posix(),
                json.dumps(manifest, default=str),
            ),
        )
        conn.execute("DELETE FROM parents WHERE child = ?", (artifact.id,))
        conn.executemany(
            "INSERT OR IGNORE INTO parents (child, parent) VALUES (?, ?)",
            [(artifact.id, parent) for parent in manifest.get("parents") or []],
        )

    def _lookup(self, conn: sqlite3.Connection, artifact_id: str) -> Artifact | None:
        row = conn.execute(
            "SELECT id, kind, path, manifest_json FROM artifacts WHERE id = ?", (artifact_id,)
        ).fetchone()
        return self._artifact_from_row(row) if row else None

    # -- staging and committing --------------------------------------------

    def staging_dir(
        self, kind: str, config: dict, parents: list[str] = (), resume: bool = False
    ) -> pathlib.Path:
        """Work directory for a run not yet finished.

        The name depends only on kind, config and parents, so rerunning the same
        stage finds the same directory. With ``resume=False`` an existing
        staging dir is removed first (fresh start); with ``resume=True`` it is
        kept so the trainer can pick up its checkpoint.

        Returns:
            ``root/.staging/{kind}-{sha256(canonical json of kind+config+parents)[:12]}``,
            which exists on return.
        """
        _check_kind(kind)
        key = canonical_json({"kind": kind, "config": config, "parents": list(parents)})
        path = self.root / STAGING_NAME / f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
        if not resume and path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @contextlib.contextmanager
    def working_alone(self, staging: pathlib.Path) -> Iterator[None]:
        """Hold `staging`'s lock (a file beside it) for the block: processes about to make the same
        artifact take turns instead of training into one directory at once (the first to commit
        would take the directory from under the other). The lock goes with the process that holds
        it, so a run killed midway leaves nothing to clear."""
        with open(staging.with_name(staging.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def commit(
        self,
        staging: pathlib.Path,
        *,
        kind: str,
        config: dict,
        parents: list[str],
        data: list[dict] | str,
        metrics: dict,
        code_version: str,
        extra: dict | None = None,
    ) -> Artifact:
        """Seal a staging dir into an artifact ``root/{id}``.

        The id comes from a content hash over kind, config, parents, data and
        every file in the staging dir, so identical results share one
        directory: if ``root/{id}`` already exists, the staging dir is dropped
        and the existing artifact is returned. The manifest is written
        atomically before a single ``os.rename`` makes the artifact visible.

        Raises:
            StoreError: A parent id is not in the index.
            ValueError: Bad kind, or ``extra`` tries to override a manifest key.
            FileNotFoundError: ``staging`` is not a directory.
        """
        _check_kind(kind)
        staging = pathlib.Path(staging)
        if not staging.is_dir():
            raise FileNotFoundError(f"staging directory {staging} does not exist")
        parents = list(parents)
        extra = dict(extra or {})
        reserved = _SEALED_KEYS | {"metrics", "code_version"}
        clashes = sorted(reserved & extra.keys())
        if clashes:
            raise ValueError(f"extra must not override manifest keys: {', '.join(clashes)}")

        with self._connect() as conn:
            for parent in parents:
                if self._lookup(conn, parent) is None:
                    raise StoreError(
                        f'parent artifact "{parent}" of new {kind} is not in the index at {self.root} '
                        "(commit parents first; parents are referenced by exact id)"
                    )

        files = _content_files(staging)
        digest = hashlib.sha256()
        digest.update(canonical_json([kind, config, parents, data]).encode())
        for rel, file_hash in files.items():
            digest.update(f"\n{rel}\0{file_hash}".encode())
        artifact_id = f"{kind}-{digest.hexdigest()[:12]}"
        final = self.root / artifact_id

        if (final / MANIFEST_NAME).is_file():
            shutil.rmtree(staging)
            return self._adopt_existing(final)

        manifest = {
            "kind": kind,
            "id": artifact_id,
            "created": _now_iso(),
            "config": config,
            "parents": parents,
            "data": data,
            "metrics": metrics,
            "code_version": code_version,
            "files": files,
            **extra,
        }
        write_json_atomic(staging / MANIFEST_NAME, manifest)
        _fsync_dir(staging)
        try:
            os.rename(staging, final)
        except OSError:
            # Another process sealed the same content between our check and rename.
            if (final / MANIFEST_NAME).is_file():
                shutil.rmtree(staging)
                return self._adopt_existing(final)
            raise
        _fsync_dir(self.root)

        # Re-read so the returned manifest matches what was written (e.g. str() of Paths).
        artifact = Artifact(id=artifact_id, kind=kind, path=final, manifest=_read_manifest(final))
        with self._connect() as conn:
            self._upsert(conn, artifact)
        return artifact

    def _adopt_existing(self, directory: pathlib.Path) -> Artifact:
        """Return an already sealed artifact, making sure the index knows it."""
        manifest = _read_manifest(directory)
        artifact = Artifact(id=manifest["id"], kind=manifest["kind"], path=directory, manifest=manifest)
        with self._connect() as conn:
            self._upsert(conn, artifact)
        return artifact

    # -- queries -----------------------------------------------------------

    def get(self, ref: str | os.PathLike) -> Artifact:
        """Find an artifact by exact id, unique id prefix, or artifact directory path.

        A path may point outside the root (e.g. an artifact copied to another
        machine); it only needs a ``manifest.json``. A directory of the root
        that the index does not know yet (copied in) is indexed.

        Raises:
            StoreError: Unknown reference, or a prefix matching several ids.
        """
        text = os.fspath(ref)
        if text:
            with self._connect() as conn:
                found = self._lookup(conn, text)
            if found is not None:
                return found
            directory = pathlib.Path(text)
            if (directory / MANIFEST_NAME).is_file():
                directory = directory.resolve()
                manifest = _read_manifest(directory)
                if directory.parent == self.root:
                    with self._connect() as conn:
                        indexed = self._lookup(conn, manifest["id"])
                    return indexed if indexed is not None and indexed.path == directory else self._adopt_existing(directory)
                return Artifact(id=manifest["id"], kind=manifest["kind"], path=directory, manifest=manifest)
            with self._connect() as conn:
                rows = conn.execute(
                    "SELECT id, kind, path, manifest_json FROM artifacts WHERE substr(id, 1, ?) = ? ORDER BY id",
                    (len(text), text),
                ).fetchall()
            if len(rows) == 1:
                return self._artifact_from_row(rows[0])
            if len(rows) > 1:
                matches = ", ".join(row[0] for row in rows)
                raise StoreError(f'artifact prefix "{text}" is ambiguous in {self.root}: matches {matches}')
        raise StoreError(f'no artifact "{text}" in {self.root}')

    def find(self, kind: str, config: dict, parents: list[str] = (), data=None) -> Artifact | None:
        """The newest sealed artifact made by the same stage from the same inputs, or None.

        An artifact's id hashes its files too (a run that is not bit-reproducible seals another id),
        so it cannot be computed before the work; this finds a match on what the work was given:
        ``kind``, ``config`` (compared as canonical JSON, as :meth:`staging_dir` names it, so tuples
        match lists) and ``parents`` (in order), and on ``data`` too when given (e.g. the file
        hashes of the real data a teacher read, which its config does not name). Call it before
        :meth:`staging_dir` to reuse a stage already run instead of running it again.
        """
        _check_kind(kind)
        wanted = canonical_json({"config": config, "parents": list(parents)})
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, kind, path, manifest_json FROM artifacts WHERE kind = ? ORDER BY created DESC, id DESC",
                (kind,),
            ).fetchall()
        for row in rows:
            artifact = self._artifact_from_row(row)
            manifest = artifact.manifest
            if canonical_json({"config": manifest.get("config"), "parents": manifest.get("parents") or []}) != wanted:
                continue
            if data is not None and canonical_json(manifest.get("data")) != canonical_json(data):
                continue
            if (artifact.path / MANIFEST_NAME).is_file():  # not deleted behind the index's back
                return artifact
        return None

    def list(self, kind: str | None = None) -> list[Artifact]:
        """All indexed artifacts (optionally of one kind), oldest first."""
        query = "SELECT id, kind, path, manifest_json FROM artifacts"
        params: tuple = ()
        if kind is not None:
            query += " WHERE kind = ?"
            params = (kind,)
        query += " ORDER BY created, id"
        with self._connect() as conn:
            rows = conn.execute(query, params).fetchall()
        return [self._artifact_from_row(row) for row in rows]

    def children(self, artifact_id: str) -> list[Artifact]:
        """Artifacts made directly from ``artifact_id`` (id, prefix or path), oldest first."""
        parent_id = self.get(artifact_id).id
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT a.id, a.kind, a.path, a.manifest_json FROM artifacts a "
                "JOIN parents p ON p.child = a.id WHERE p.parent = ? ORDER BY a.created, a.id",
                (parent_id,),
            ).fetchall()
        return [self._artifact_from_row(row) for row in rows]

    def lineage(self, artifact_id: str) -> list[Artifact]:
        """Ancestors of an artifact, nearest first (breadth-first over manifest parents).

        Ancestors that are no longer in the index are skipped, so a deleted
        run does not make the rest of the history unreadable.
        """
        start = self.get(artifact_id)
        ancestors: list[Artifact] = []
        seen = {start.id}
        frontier = [start]
        with self._connect() as conn:
            while frontier:
                next_frontier = []
                for artifact in frontier:
                    for parent_id in artifact.manifest.get("parents") or []:
                        if parent_id in seen:
                            continue
                        seen.add(parent_id)
                        parent = self._lookup(conn, parent_id)
                        if parent is not None:
                            ancestors.append(parent)
                            next_frontier.append(parent)
                frontier = next_frontier
        return ancestors

    # -- maintenance -------------------------------------------------------

    def update_manifest(self, artifact_id: str, **fields) -> Artifact:
        """Add or replace manifest fields after the fact, e.g. a later ``evaluation``.

        The id stays the same: fields that define the artifact (kind, id,
        created, config, parents, data, files) cannot be changed. An
        ``updated`` timestamp is recorded. The manifest is rewritten
        atomically and the index row updated.

        Raises:
            StoreError: Unknown artifact.
            ValueError: A sealed field was given.
        """
        sealed = sorted(_SEALED_KEYS & fields.keys())
        if sealed:
            raise ValueError(f"cannot change sealed manifest fields: {', '.join(sealed)}")
        artifact = self.get(artifact_id)
        indexed = artifact.path.resolve() == (self.root / artifact.id).resolve()
        with self._connect() as conn:
            # Take the write lock before reading, so concurrent updaters in other
            # processes apply their changes one after another instead of losing one.
            conn.execute("BEGIN IMMEDIATE")
            manifest = _read_manifest(artifact.path)
            manifest.update(fields)
            manifest["updated"] = _now_iso()
            write_json_atomic(artifact.path / MANIFEST_NAME, manifest)
            manifest = _read_manifest(artifact.path)
            updated = Artifact(id=artifact.id, kind=artifact.kind, path=artifact.path, manifest=manifest)
            if indexed:
                self._upsert(conn, updated)
        return updated

    def reindex(self) -> int:
        """Rebuild the index from ``root/*/manifest.json``; returns the number of artifacts.

        Staging dirs are not artifacts and are ignored. Unreadable manifests are
        skipped with a warning rather than aborting the whole rebuild.
        """
        artifacts = []
        for directory in sorted(self.root.iterdir()):
            if directory.name.startswith(".") or not (directory / MANIFEST_NAME).is_file():
                continue
            try:
                manifest = _read_manifest(directory)
            except (OSError, ValueError) as exc:
                warnings.warn(f"skipping {directory}: {exc}", stacklevel=2)
                continue
            artifacts.append(
                Artifact(id=manifest["id"], kind=manifest["kind"], path=directory, manifest=manifest)
            )
        with self._connect() as conn:
            conn.execute("DELETE FROM parents")
            conn.execute("DELETE FROM artifacts")
            for artifact in artifacts:
                self._upsert(conn, artifact)
        return len(artifacts)

    def remove(self, artifact_id: str) -> Artifact:
        """Delete an artifact of this store, directory and index rows together; returns it.

        The directory is renamed into ``root/.trash`` in the same transaction that drops its rows,
        so readers see the artifact whole or not at all, then deleted. An artifact that another in
        the index names as a parent is refused: remove the children first.

        Raises:
            StoreError: Unknown artifact, one outside the root, or one with children.
        """
        artifact = self.get(artifact_id)
        if artifact.path.parent != self.root:
            raise StoreError(f"{artifact.id} at {artifact.path} is not a directory of {self.root}")
        trash = self.root / TRASH_NAME
        self._empty_trash()
        trash.mkdir(exist_ok=True)
        binned = trash / f"{artifact.id}.{os.getpid()}.{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}"
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")  # no child can be committed between the check and the removal
            children = [row[0] for row in conn.execute("SELECT child FROM parents WHERE parent = ? ORDER BY child",
                                                       (artifact.id,))]
            if children:
                raise StoreError(f"{artifact.id} is a parent of {', '.join(children)}: remove those first")
            conn.execute("DELETE FROM parents WHERE child = ?", (artifact.id,))
            conn.execute("DELETE FROM artifacts WHERE id = ?", (artifact.id,))
            os.rename(artifact.path, binned)  # if this fails, the rows come back with the rollback
            try:
                conn.commit()
            except BaseException:
                os.rename(binned, artifact.path)
                raise
        _fsync_dir(self.root)
        shutil.rmtree(binned, ignore_errors=True)
        return artifact

    def _empty_trash(self) -> None:
        """Delete what an earlier removal left in the trash (it was killed before its rmtree)."""
        trash = self.root / TRASH_NAME
        if trash.is_dir():
            for leftover in trash.iterdir():
                shutil.rmtree(leftover, ignore_errors=True)


def owning_root(ref: str | os.PathLike | None) -> pathlib.Path | None:
    """The runs folder an artifact directory given by path belongs to, or None.

    ``ref`` names an artifact directory when it holds a ``manifest.json``; its parent is a runs
    folder when it holds ``index.sqlite`` or other artifact directories. An id or a prefix, and an
    artifact copied somewhere on its own, belong to no folder of their own (None).
    """
    if ref is None or not os.fspath(ref):
        return None
    directory = pathlib.Path(ref)
    if not (directory / MANIFEST_NAME).is_file():
        return None
    directory = directory.resolve()
    parent = directory.parent
    if (parent / INDEX_NAME).is_file():
        return parent
    for sibling in parent.iterdir():
        if sibling != directory and not sibling.name.startswith(".") and (sibling / MANIFEST_NAME).is_file():
            return parent
    return None
