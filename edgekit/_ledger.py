"""The unlearning ledger: every request with who, why, when and what, the teacher version it made
and its certificate's figures, and the artifacts it made stale. It lives in the runs directory's
SQLite database beside the artifact index.

A teacher and the teachers unlearned from it form one lineage (named by its first teacher). Within a
lineage requests run one at a time: a second request waits until the first has finished and then
starts from the teacher the first produced, so no request can bring back data another removed. The
teacher in service is the lineage's last verified one: a new teacher replaces the old only once its
certificate holds. Each step is one `BEGIN IMMEDIATE` transaction, so two processes see the same
ledger.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
from datetime import datetime, timezone
from typing import Iterator

from edgekit._store import Artifact, ArtifactStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS unlearning_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    requested TEXT NOT NULL,
    who TEXT NOT NULL,
    reason TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    targets TEXT NOT NULL,
    lineage TEXT NOT NULL,
    status TEXT NOT NULL,
    base_teacher TEXT,
    produced TEXT,
    figures TEXT,
    started TEXT,
    finished TEXT,
    error TEXT,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS stale_artifacts (
    artifact TEXT PRIMARY KEY,
    request INTEGER NOT NULL,
    marked TEXT NOT NULL,
    rebuilt_as TEXT
);
"""

TARGET_KINDS = ("patient", "class", "samples")
WAITING, RUNNING, VERIFIED, FAILED = "waiting", "running", "verified", "failed"


def lineage_of(artifact: Artifact) -> str:
    """The first teacher of the lineage `artifact` belongs to."""
    return artifact.manifest.get("unlearning", {}).get("lineage", artifact.id)


class LedgerError(RuntimeError):
    """A request the ledger cannot take (a target already forgotten, a wait that timed out)."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _alive(host: str, pid: int) -> bool:
    """Whether the process that holds a request still runs (only knowable on this host)."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Ledger:
    def __init__(self, store: ArtifactStore):
        self.store = store
        conn = sqlite3.connect(store.db_path, timeout=30.0)
        try:
            conn.executescript(_SCHEMA)  # idempotent; executescript manages its own transaction
        finally:
            conn.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write-locked transaction (`BEGIN IMMEDIATE`): readers in it see a settled ledger."""
        conn = sqlite3.connect(self.store.db_path, timeout=30.0, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    # -- reading -----------------------------------------------------------

    def requests(self, lineage: str | None = None) -> list[dict]:
        """Every request (of one lineage), oldest first, figures parsed."""
        with self._transaction() as conn:
            query = "SELECT * FROM unlearning_requests" + (" WHERE lineage = ?" if lineage else "") + " ORDER BY id"
            rows = conn.execute(query, (lineage,) if lineage else ()).fetchall()
        return [self._parsed(row) for row in rows]

    def request(self, request_id: int) -> dict:
        with self._transaction() as conn:
            return self._parsed(conn.execute("SELECT * FROM unlearning_requests WHERE id = ?", (request_id,)).fetchone())

    @staticmethod
    def _parsed(row: sqlite3.Row) -> dict:
        entry = dict(row)
        entry["targets"] = json.loads(entry["targets"])
        entry["figures"] = json.loads(entry["figures"]) if entry["figures"] else None
        return entry

    def serving_teacher(self, lineage: str) -> str:
        with self._transaction() as conn:
            return self._serving(conn, lineage)

    @staticmethod
    def _serving(conn: sqlite3.Connection, lineage: str) -> str:
        row = conn.execute("SELECT produced FROM unlearning_requests WHERE lineage = ? AND status = ? "
                           "ORDER BY id DESC LIMIT 1", (lineage, VERIFIED)).fetchone()
        return row["produced"] if row else lineage

    def forgotten(self, lineage: str) -> dict[str, list]:
        """Every target removed so far from this lineage, by kind: what no later teacher may train on."""
        with self._transaction() as conn:
            return self._forgotten(conn, lineage)

    @staticmethod
    def _forgotten(conn: sqlite3.Connection, lineage: str) -> dict[str, list]:
        removed = {kind: [] for kind in TARGET_KINDS}
        for row in conn.execute("SELECT target_kind, targets FROM unlearning_requests WHERE lineage = ? AND "
                                "status = ? ORDER BY id", (lineage, VERIFIED)):
            removed[row["target_kind"]] += [t for t in json.loads(row["targets"]) if t not in removed[row["target_kind"]]]
        return removed

    def stale(self, include_rebuilt: bool = False) -> list[dict]:
        with self._transaction() as conn:
            rows = conn.execute("SELECT * FROM stale_artifacts" + ("" if include_rebuilt else
                                " WHERE rebuilt_as IS NULL") + " ORDER BY rowid").fetchall()  # parents first
        return [dict(row) for row in rows]

    # -- the life of a request ---------------------------------------------

    def open(self, lineage: str, target_kind: str, targets: list, who: str, reason: str) -> int:
        """Record a request (status waiting); refuses a target this lineage has already forgotten."""
        if target_kind not in TARGET_KINDS:
            raise ValueError(f"unknown target kind {target_kind!r}; known: {', '.join(TARGET_KINDS)}")
        if not reason.strip():
            raise ValueError("an unlearning request needs a reason")
        with self._transaction() as conn:  # checked and recorded under one lock
            already = set(map(str, self._forgotten(conn, lineage)[target_kind])) & set(map(str, targets))
            if already:
                raise LedgerError(f"{target_kind} {sorted(already)} already removed from lineage {lineage}")
            cursor = conn.execute(
                "INSERT INTO unlearning_requests (requested, who, reason, target_kind, targets, lineage, status, "
                "host, pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_now(), who, reason, target_kind, json.dumps(targets), lineage, WAITING, socket.gethostname(),
                 os.getpid()))
            return int(cursor.lastrowid)

    def start(self, request_id: int, timeout_s: float = 4 * 3600, poll_s: float = 0.5) -> str:
        """Wait for the lineage to be free, then mark the request running and return the teacher it
        starts from (the lineage's teacher in service at that moment)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._transaction() as conn:
                lineage = conn.execute("SELECT lineage FROM unlearning_requests WHERE id = ?",
                                       (request_id,)).fetchone()["lineage"]
                running = conn.execute("SELECT id, host, pid FROM unlearning_requests WHERE lineage = ? AND "
                                       "status = ? AND id != ?", (lineage, RUNNING, request_id)).fetchall()
                for row in running:
                    if not _alive(row["host"], row["pid"]):
                        conn.execute("UPDATE unlearning_requests SET status = ?, finished = ?, error = ? WHERE id = ?",
                                     (FAILED, _now(), "interrupted: its process ended (rerun the request with "
                                      "--resume)", row["id"]))
                if all(not _alive(row["host"], row["pid"]) for row in running):
                    base = self._serving(conn, lineage)
                    conn.execute("UPDATE unlearning_requests SET status = ?, base_teacher = ?, started = ? "
                                 "WHERE id = ?", (RUNNING, base, _now(), request_id))
                    return base
            if time.monotonic() > deadline:
                raise LedgerError(f"request {request_id}: lineage {lineage} stayed busy for {timeout_s:.0f} s")
            time.sleep(poll_s)

    def finish(self, request_id: int, produced: str, figures: dict, verified: bool) -> list[str]:
        """Record the outcome. A verified request puts `produced` in service and marks every artifact
        derived from the teacher it replaced stale; returns those artifacts' ids."""
        stale: list[str] = []
        with self._transaction() as conn:
            entry = conn.execute("SELECT * FROM unlearning_requests WHERE id = ?", (request_id,)).fetchone()
            status = VERIFIED if verified else FAILED
            error = None if verified else "certificate did not hold: the old teacher stays in service"
            conn.execute("UPDATE unlearning_requests SET status = ?, produced = ?, figures = ?, finished = ?, "
                         "error = ? WHERE id = ?", (status, produced, json.dumps(figures), _now(), error, request_id))
            if verified:
                stale = [artifact for artifact in self._descendants(conn, entry["base_teacher"]) if artifact != produced]
                conn.executemany("INSERT OR IGNORE INTO stale_artifacts (artifact, request, marked) VALUES (?, ?, ?)",
                                 [(artifact, request_id, _now()) for artifact in stale])
        return stale

    def fail(self, request_id: int, error: str) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE unlearning_requests SET status = ?, finished = ?, error = ? WHERE id = ?",
                         (FAILED, _now(), error, request_id))

    def rebuilt(self, artifact: str, replacement: str) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE stale_artifacts SET rebuilt_as = ? WHERE artifact = ?", (replacement, artifact))

    @staticmethod
    def _descendants(conn: sqlite3.Connection, artifact: str) -> list[str]:
        """Everything made from `artifact`, at any depth, parents before children."""
        found, frontier = [], [artifact]
        while frontier:
            children = [row["child"] for row in conn.execute(
                f"SELECT p.child FROM parents p JOIN artifacts a ON a.id = p.child WHERE p.parent IN "
                f"({','.join('?' * len(frontier))}) ORDER BY a.created", frontier)]
            frontier = [child for child in children if child not in found]
            found += frontier
        return found

    # -- what the runs listing and prune show ----------------------------------

    def notes(self) -> dict[str, str]:
        """A remark per artifact the ledger knows something about, for `edgekit runs`: stale ones
        ("stale (request 1)", "stale, rebuilt as synth-...") and teachers an unlearning request
        replaced, which still hold the forgotten data."""
        notes: dict[str, str] = {}
        with self._transaction() as conn:
            verified = conn.execute("SELECT id, lineage, base_teacher, produced FROM unlearning_requests "
                                    "WHERE status = ? ORDER BY id", (VERIFIED,)).fetchall()
            for row in verified:
                notes[row["base_teacher"]] = (f"contains forgotten data (request {row['id']}); in service: "
                                              f"{self._serving(conn, row['lineage'])}")
            for row in verified:
                if row["produced"] == self._serving(conn, row["lineage"]):
                    notes[row["produced"]] = f"in service (request {row['id']})"
            for row in conn.execute("SELECT artifact, request, rebuilt_as FROM stale_artifacts ORDER BY rowid"):
                notes[row["artifact"]] = _stale_note(row["request"], row["rebuilt_as"])
        return notes

    def prune_plan(self, *, stale: bool = False, unreferenced: bool = False) -> tuple[list[tuple[Artifact, str]],
                                                                                       list[tuple[Artifact, str]]]:
        """What `edgekit prune` may remove, children before parents, and what it keeps of the rest
        it was asked about; each with its reason.

        stale: artifacts an unlearning request marked stale, once `edgekit rebuild` has remade them
        (before, the rebuild still needs their recipe). unreferenced: artifacts not made from a
        teacher in service, nor one such an artifact was made from (a teacher whose request was not
        verified, an artifact whose parent is gone, a cache such as the explainer's VAE). Never
        removed: a teacher in service, and an artifact a kept one was made from.
        """
        artifacts = {artifact.id: artifact for artifact in self.store.list()}
        children: dict[str, list[str]] = {artifact_id: [] for artifact_id in artifacts}
        for artifact in artifacts.values():
            for parent in artifact.manifest.get("parents") or []:
                if parent in children:
                    children[parent].append(artifact.id)
        with self._transaction() as conn:
            stale_rows = {row["artifact"]: (row["request"], row["rebuilt_as"])
                          for row in conn.execute("SELECT artifact, request, rebuilt_as FROM stale_artifacts")}
            serving = {self._serving(conn, lineage_of(artifact)) for artifact in artifacts.values()
                       if artifact.kind == "teacher"}
        reasons: dict[str, str] = {}
        kept: dict[str, str] = {}
        if stale:
            for artifact_id, (request, rebuilt_as) in stale_rows.items():
                if artifact_id not in artifacts:
                    continue
                if rebuilt_as is None:
                    kept[artifact_id] = f"stale (request {request}), not rebuilt yet: edgekit rebuild needs its recipe"
                else:
                    reasons[artifact_id] = _stale_note(request, rebuilt_as)
        if unreferenced:
            live, frontier = set(), [artifact_id for artifact_id in serving if artifact_id in artifacts]
            while frontier:  # made from a teacher in service, at any depth (a teacher unlearned from it
                live.update(frontier)  # is live only in service itself)
                frontier = [child for artifact_id in frontier for child in children[artifact_id]
                            if child not in live and child not in stale_rows
                            and (artifacts[child].kind != "teacher" or child in serving)]
            needed, frontier = set(live), list(live)
            while frontier:  # and what those were made from
                frontier = [parent for artifact_id in frontier
                            for parent in artifacts[artifact_id].manifest.get("parents") or []
                            if parent in artifacts and parent not in needed]
                needed.update(frontier)
            for artifact_id in artifacts:
                if artifact_id not in needed and artifact_id not in stale_rows:
                    reasons[artifact_id] = "unreferenced: not made from a teacher in service, nor one it was made from"
        for artifact_id in list(reasons):
            if artifact_id in serving:
                kept[artifact_id] = "a teacher in service"
                del reasons[artifact_id]
        changed = True
        while changed:  # an artifact something kept was made from stays too
            changed = False
            for artifact_id in list(reasons):
                keeping = [child for child in children[artifact_id] if child not in reasons]
                if keeping:
                    kept[artifact_id] = (f"{reasons.pop(artifact_id)}, but {', '.join(keeping)} (kept) "
                                         "was made from it")
                    changed = True
        order, placed = [], set()
        while len(order) < len(reasons):  # children first
            for artifact_id in reasons:
                if artifact_id not in placed and all(child in placed for child in children[artifact_id]):
                    order.append(artifact_id)
                    placed.add(artifact_id)
        return ([(artifacts[artifact_id], reasons[artifact_id]) for artifact_id in order],
                [(artifacts[artifact_id], reason) for artifact_id, reason in kept.items()])


def _stale_note(request: int, rebuilt_as: str | None) -> str:
    if rebuilt_as is None:
        return f"stale (request {request})"
    if rebuilt_as == "-":
        return f"stale (request {request}), nothing to rebuild"
    return f"stale (request {request}), rebuilt as {rebuilt_as}"
