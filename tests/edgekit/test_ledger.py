"""The unlearning ledger: requests one at a time per lineage, across processes, and stale marking."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time

import pytest

from edgekit._ledger import FAILED, RUNNING, VERIFIED, Ledger, LedgerError
from edgekit._store import ArtifactStore


def make_artifact(store: ArtifactStore, kind: str, name: str, parents: list[str] = ()) -> str:
    """A real sealed artifact holding one file; the ledger only reads ids and parents."""
    staging = store.staging_dir(kind, {"name": name}, parents=list(parents))
    (staging / "content.txt").write_text(name)
    return store.commit(staging, kind=kind, config={"name": name}, parents=list(parents), data="none", metrics={},
                        code_version="test").id


@pytest.fixture
def chain(tmp_path):
    """teacher -> synth -> student, as the pipeline leaves them."""
    store = ArtifactStore(tmp_path / "runs")
    original = make_artifact(store, "teacher", "original")
    synthetic = make_artifact(store, "synth", "synth", [original])
    student = make_artifact(store, "student", "student", [synthetic])
    return store, original, synthetic, student


def test_a_verified_request_puts_its_teacher_in_service_and_marks_descendants_stale(chain):
    store, original, synthetic, student = chain
    ledger = Ledger(store)
    request = ledger.open(original, "patient", ["a03"], "steward", "consent withdrawn")
    assert ledger.start(request) == original
    assert ledger.request(request)["status"] == RUNNING
    unlearned = make_artifact(store, "teacher", "without a03", [original])
    stale = ledger.finish(request, unlearned, {"verified": True}, verified=True)
    assert stale == [synthetic, student]
    assert ledger.serving_teacher(original) == unlearned
    assert [entry["artifact"] for entry in ledger.stale()] == [synthetic, student]
    assert ledger.forgotten(original)["patient"] == ["a03"]
    entry = ledger.request(request)
    assert (entry["status"], entry["who"], entry["reason"], entry["produced"]) == (
        VERIFIED, "steward", "consent withdrawn", unlearned)


def test_a_request_that_fails_verification_leaves_the_old_teacher_in_service(chain):
    store, original, synthetic, _ = chain
    ledger = Ledger(store)
    request = ledger.open(original, "class", ["3"], "steward", "test")
    ledger.start(request)
    unverified = make_artifact(store, "teacher", "unverified", [original])
    assert ledger.finish(request, unverified, {"verified": False}, verified=False) == []
    assert ledger.serving_teacher(original) == original
    assert ledger.request(request)["status"] == FAILED
    assert ledger.stale() == []
    assert ledger.forgotten(original)["class"] == []


def test_a_target_already_removed_is_refused(chain):
    store, original, _, _ = chain
    ledger = Ledger(store)
    first = ledger.open(original, "patient", ["a03"], "steward", "first")
    ledger.start(first)
    ledger.finish(first, make_artifact(store, "teacher", "without a03", [original]), {}, verified=True)
    with pytest.raises(LedgerError, match="already removed"):
        ledger.open(original, "patient", ["a03"], "steward", "again")
    with pytest.raises(ValueError, match="reason"):
        ledger.open(original, "patient", ["a05"], "steward", "  ")


def _request_in_process(root: str, lineage: str, patient: str, hold_s: float, queue) -> None:
    """One request as a separate `edgekit unlearn` process would make it."""
    store = ArtifactStore(root)
    ledger = Ledger(store)
    request = ledger.open(lineage, "patient", [patient], patient, "concurrent")
    base = ledger.start(request, poll_s=0.05)
    queue.put(("started", patient, base, time.monotonic()))
    time.sleep(hold_s)
    produced = make_artifact(store, "teacher", f"without {patient}", [base])
    ledger.finish(request, produced, {}, verified=True)
    queue.put(("finished", patient, produced, time.monotonic()))


def test_two_concurrent_requests_run_one_after_the_other_the_second_from_the_first_ones_teacher(chain):
    store, original, synthetic, student = chain
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    first = context.Process(target=_request_in_process, args=(str(store.root), original, "a03", 3.0, queue))
    first.start()
    assert queue.get(timeout=120)[:3] == ("started", "a03", original)
    second = context.Process(target=_request_in_process, args=(str(store.root), original, "a05", 0.0, queue))
    second.start()
    events = [queue.get(timeout=120) for _ in range(3)]
    first.join(60)
    second.join(60)
    assert [event[:2] for event in events] == [("finished", "a03"), ("started", "a05"), ("finished", "a05")]
    first_teacher, second_base, second_teacher = events[0][2], events[1][2], events[2][2]
    assert second_base == first_teacher  # a05 was removed from the teacher that already lacked a03
    ledger = Ledger(store)
    assert ledger.serving_teacher(original) == second_teacher
    assert [entry["status"] for entry in ledger.requests(original)] == [VERIFIED, VERIFIED]
    assert sorted(ledger.forgotten(original)["patient"]) == ["a03", "a05"]
    assert {entry["artifact"] for entry in ledger.stale()} == {synthetic, student}


def test_a_request_whose_process_died_does_not_block_the_lineage(chain):
    store, original, _, _ = chain
    ledger = Ledger(store)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stuck = ledger.open(original, "patient", ["a03"], "steward", "interrupted")
    ledger.start(stuck)
    with ledger._transaction() as conn:
        conn.execute("UPDATE unlearning_requests SET pid = ? WHERE id = ?", (int(dead.stdout), stuck))
    fresh = ledger.open(original, "patient", ["a05"], "steward", "next")
    assert ledger.start(fresh, timeout_s=5) == original
    assert ledger.request(stuck)["status"] == FAILED
    assert "interrupted" in ledger.request(stuck)["error"]
