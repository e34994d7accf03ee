"""The store's commands and rules through the CLI, on hand-made artifacts (no training): `runs`
with the ledger's marks, `prune`, --runs and its deprecated --out, references by path, and which
errors are a user's (exit 2) and which are bugs (a traceback)."""

from __future__ import annotations

import pytest

from cli_runner import run_cli
from edgekit import cli
from edgekit._ledger import Ledger
from edgekit._store import ArtifactStore


@pytest.fixture(autouse=True)
def no_environment_defaults(monkeypatch):
    monkeypatch.delenv("EDGEKIT_RUNS", raising=False)
    monkeypatch.delenv("EDGEKIT_DATA", raising=False)


def make(store: ArtifactStore, kind: str, name: str, parents=(), extra=None) -> str:
    staging = store.staging_dir(kind, {"name": name}, parents=list(parents))
    (staging / "content.txt").write_text(name)
    return store.commit(staging, kind=kind, config={"name": name}, parents=list(parents), data="none", metrics={},
                        code_version="test", extra=extra).id


@pytest.fixture
def unlearned(tmp_path):
    """A teacher whose patient was forgotten, as the pipeline leaves it: the old teacher's synth and
    student stale, the synth already rebuilt from the new teacher, the student not yet."""
    store = ArtifactStore(tmp_path / "runs")
    old = make(store, "teacher", "old")
    synth = make(store, "synth", "synth", [old])
    student = make(store, "student", "student", [synth])
    ledger = Ledger(store)
    request = ledger.open(old, "patient", ["a03"], "steward", "consent withdrawn")
    ledger.start(request)
    new = make(store, "teacher", "new", [old], extra={"unlearning": {"lineage": old}})
    assert ledger.finish(request, new, {}, verified=True) == [synth, student]
    remade = make(store, "synth", "synth again", [new])
    ledger.rebuilt(synth, remade)
    failed_request = ledger.open(old, "patient", ["b02"], "steward", "second thoughts")
    ledger.start(failed_request)
    failed = make(store, "teacher", "not verified", [new], extra={"unlearning": {"lineage": old}})
    ledger.finish(failed_request, failed, {}, verified=False)
    vae = make(store, "vae", "explainer cache")
    return {"store": store, "old": old, "new": new, "synth": synth, "student": student, "remade": remade,
            "failed": failed, "vae": vae}


def _row(listing: str, artifact_id: str) -> str:
    return next(line.strip() for line in listing.splitlines() if line.strip().startswith(artifact_id))


def test_runs_marks_stale_rebuilt_and_forgotten_data(unlearned):
    code, listing, _ = run_cli("runs", "--runs", unlearned["store"].root)
    assert code == 0
    assert listing.splitlines()[0].rstrip().endswith("NOTES")
    assert _row(listing, unlearned["synth"]).endswith(f"stale (request 1), rebuilt as {unlearned['remade']}")
    assert _row(listing, unlearned["student"]).endswith("stale (request 1)")
    assert _row(listing, unlearned["old"]).endswith(f"contains forgotten data (request 1); in service: "
                                                    f"{unlearned['new']}")
    assert _row(listing, unlearned["new"]).endswith("in service (request 1)")
    assert _row(listing, unlearned["remade"]).endswith("-")


def test_runs_of_a_store_without_requests_has_no_notes_column(tmp_path):
    store = ArtifactStore(tmp_path / "runs")
    make(store, "teacher", "t")
    code, listing, _ = run_cli("runs", "--runs", store.root)
    assert code == 0 and "NOTES" not in listing


def test_prune_lists_and_removes_nothing_without_yes(unlearned):
    store = unlearned["store"]
    before = [artifact.id for artifact in store.list()]
    code, out, err = run_cli("prune", "--stale", "--unreferenced", "--runs", store.root)
    assert code == 0, err
    assert "would remove 2 artifact(s)" in out and "nothing removed; rerun with --yes" in out
    going, kept = out.split("kept:")
    assert unlearned["failed"] in going and unlearned["vae"] in going
    # The stale student is not rebuilt yet, and the stale synth it was made from stays with it.
    assert f"{unlearned['student']}  stale (request 1), not rebuilt yet" in kept
    assert f"but {unlearned['student']} (kept) was made from it" in _row(kept, unlearned["synth"])
    assert [artifact.id for artifact in store.list()] == before


def test_prune_removes_only_what_it_listed_children_first(unlearned):
    store = unlearned["store"]
    ledger = Ledger(store)
    ledger.rebuilt(unlearned["student"], "student-000000000000")  # now the student is rebuilt too
    code, out, err = run_cli("prune", "--stale", "--runs", store.root, "--yes")
    assert code == 0, err
    lines = [line.split()[1] for line in out.splitlines() if line.strip().startswith("removed ")]
    assert lines == [unlearned["student"], unlearned["synth"]]  # the child before its parent
    left = {artifact.id for artifact in store.list()}
    assert left == {unlearned[name] for name in ("old", "new", "remade", "failed", "vae")}
    assert not (store.root / unlearned["synth"]).exists()
    assert list((store.root / ".trash").iterdir()) == []
    # Never the teachers: the old one is what the one in service was made from.
    code, out, _ = run_cli("prune", "--unreferenced", "--runs", store.root, "--yes")
    assert code == 0
    assert {artifact.id for artifact in store.list()} == {unlearned[name] for name in ("old", "new", "remade")}
    code, out, _ = run_cli("prune", "--stale", "--unreferenced", "--runs", store.root)
    assert code == 0 and out.startswith("nothing to prune")


def test_prune_needs_to_be_told_what(tmp_path):
    code, _, err = run_cli("prune", "--runs", tmp_path / "runs")
    assert code == 2 and "--stale, --unreferenced" in err


def test_out_still_names_the_runs_folder_with_a_note(unlearned):
    code, listing, err = run_cli("runs", "--out", unlearned["store"].root)
    assert code == 0 and unlearned["old"] in listing
    assert "--out for the runs folder is deprecated; use --runs" in err


def test_runs_folder_from_the_environment(unlearned, monkeypatch):
    monkeypatch.setenv("EDGEKIT_RUNS", str(unlearned["store"].root))
    code, listing, _ = run_cli("runs")
    assert code == 0 and unlearned["old"] in listing


def test_an_artifact_path_in_another_runs_folder_than_runs_is_refused(unlearned, tmp_path):
    path = unlearned["store"].root / unlearned["new"]
    args = cli.build_parser().parse_args(["teacher", "eval", str(path), "--runs", str(tmp_path / "elsewhere")])
    with pytest.raises(cli.StoreError, match="belongs to the runs folder"):
        cli._store_for(args, args.artifact)
    args = cli.build_parser().parse_args(["teacher", "eval", str(path)])
    assert cli._store_for(args, args.artifact).root == unlearned["store"].root


def test_store_errors_exit_2_and_key_errors_are_bugs(tmp_path, monkeypatch):
    code, out, err = run_cli("teacher", "eval", "teacher-000000000000", "--runs", tmp_path / "runs")
    assert code == 2 and out == "" and 'no artifact "teacher-000000000000"' in err

    def buggy(args):
        return {}["missing key"]

    monkeypatch.setattr(cli, "cmd_runs", buggy)
    with pytest.raises(KeyError, match="missing key"):
        run_cli("runs", "--runs", tmp_path / "runs")
