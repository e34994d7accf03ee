"""Tests for edgekit._store: atomic artifact directories and their SQLite index."""

import json
import os
import pathlib
import shutil
import sqlite3

import pytest

from edgekit._store import (
    SCHEMA_VERSION,
    Artifact,
    ArtifactStore,
    StoreError,
    canonical_json,
    code_version,
    format_table,
    owning_root,
    sha256_file,
    write_json_atomic,
)


def make_artifact(store, kind="teacher", config=None, parents=(), files=None, metrics=None):
    """Stage a run that writes ``files`` and commit it."""
    config = {"lr": 0.01} if config is None else config
    files = {"weights.bin": b"\x00\x01weights"} if files is None else files
    staging = store.staging_dir(kind, config, list(parents))
    for rel, content in files.items():
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).write_bytes(content)
    return store.commit(
        staging,
        kind=kind,
        config=config,
        parents=list(parents),
        data=[{"dataset": "toy", "split": "train"}],
        metrics=metrics if metrics is not None else {"val_accuracy": 0.9},
        code_version="edgekit test",
    )


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(tmp_path / "runs")


def test_init_creates_root_and_index(tmp_path):
    root = tmp_path / "a" / "runs"
    ArtifactStore(root)
    assert (root / "index.sqlite").is_file()


def test_commit_writes_dir_and_manifest_with_file_hashes(store):
    art = make_artifact(store, files={"weights.bin": b"abc", "sub/log.txt": b"hello"})

    assert art.path == store.root / art.id
    assert art.path.is_dir()
    assert art.id.startswith("teacher-") and len(art.id) == len("teacher-") + 12
    manifest = json.loads((art.path / "manifest.json").read_text())
    assert manifest == art.manifest
    assert manifest["id"] == art.id
    assert manifest["kind"] == "teacher"
    assert manifest["config"] == {"lr": 0.01}
    assert manifest["metrics"] == {"val_accuracy": 0.9}
    assert manifest["code_version"] == "edgekit test"
    assert manifest["created"].endswith("+00:00")
    assert set(manifest["files"]) == {"weights.bin", "sub/log.txt"}
    for rel, digest in manifest["files"].items():
        assert sha256_file(art.path / rel) == digest
    # The staging dir was moved, not copied.
    assert not any((store.root / ".staging").iterdir())


def test_commit_extra_keys_land_in_manifest(store):
    staging = store.staging_dir("export", {"q": "int8"})
    (staging / "model.pte").write_bytes(b"pte")
    art = store.commit(
        staging, kind="export", config={"q": "int8"}, parents=[], data="none",
        metrics={}, code_version="v", extra={"device": "pixel"},
    )
    assert art.manifest["device"] == "pixel"
    with pytest.raises(ValueError, match="id"):
        store.commit(
            store.staging_dir("export", {}), kind="export", config={}, parents=[], data="none",
            metrics={}, code_version="v", extra={"id": "forged"},
        )


def test_same_content_twice_gives_same_id_and_one_dir(store):
    first = make_artifact(store)
    second = make_artifact(store)

    assert second.id == first.id
    assert second.path == first.path
    artifact_dirs = [p for p in store.root.iterdir() if not p.name.startswith(".") and p.is_dir()]
    assert artifact_dirs == [first.path]
    assert [a.id for a in store.list()] == [first.id]
    assert not any((store.root / ".staging").iterdir())


def test_different_config_or_files_gives_different_id(store):
    base = make_artifact(store)
    other_config = make_artifact(store, config={"lr": 0.02})
    other_files = make_artifact(store, files={"weights.bin": b"different"})

    assert len({base.id, other_config.id, other_files.id}) == 3
    assert len(store.list()) == 3


def test_staging_resume_keeps_files_and_fresh_start_clears_them(store):
    staging = store.staging_dir("teacher", {"lr": 0.01})
    (staging / "checkpoint.pt").write_bytes(b"epoch 3")

    resumed = store.staging_dir("teacher", {"lr": 0.01}, resume=True)
    assert resumed == staging
    assert (resumed / "checkpoint.pt").read_bytes() == b"epoch 3"

    fresh = store.staging_dir("teacher", {"lr": 0.01}, resume=False)
    assert fresh == staging
    assert fresh.is_dir()
    assert list(fresh.iterdir()) == []


def test_staging_dir_name_depends_on_config_and_parents(store):
    a = store.staging_dir("teacher", {"lr": 0.01})
    b = store.staging_dir("teacher", {"lr": 0.02})
    parent = make_artifact(store, kind="data")
    c = store.staging_dir("teacher", {"lr": 0.01}, [parent.id])
    assert len({a, b, c}) == 3
    assert a.parent == store.root / ".staging"
    assert a.name.startswith("teacher-")


def test_commit_with_unknown_parent_raises_store_error(store):
    staging = store.staging_dir("student", {})
    with pytest.raises(StoreError, match="teacher-000000000000"):
        store.commit(
            staging, kind="student", config={}, parents=["teacher-000000000000"],
            data="synthetic", metrics={}, code_version="v",
        )
    # Nothing was sealed; the staging dir is still there to retry.
    assert store.list() == []
    assert staging.is_dir()


def test_get_by_exact_id_prefix_and_path(store, tmp_path):
    art = make_artifact(store)

    assert store.get(art.id) == art
    assert store.get(art.id[:10]).id == art.id
    assert store.get(str(art.path)).id == art.id

    # A copy outside the root is still readable by path.
    outside = tmp_path / "copied"
    outside.mkdir()
    (outside / "manifest.json").write_text((art.path / "manifest.json").read_text())
    copied = store.get(outside)
    assert copied.id == art.id
    assert copied.path == outside.resolve()


def test_get_unknown_raises_store_error(store):
    make_artifact(store)
    with pytest.raises(StoreError, match='no artifact "student-nope"'):
        store.get("student-nope")
    with pytest.raises(StoreError, match="no artifact"):
        store.get("")


def test_ambiguous_prefix_raises_listing_matches(store):
    a = make_artifact(store, config={"lr": 0.01})
    b = make_artifact(store, config={"lr": 0.02})
    with pytest.raises(StoreError, match="ambiguous") as excinfo:
        store.get("teacher-")
    assert a.id in str(excinfo.value) and b.id in str(excinfo.value)


def test_lineage_of_chain_is_nearest_first(store):
    data = make_artifact(store, kind="data")
    teacher = make_artifact(store, kind="teacher", parents=[data.id])
    student = make_artifact(store, kind="student", parents=[teacher.id])

    assert [a.id for a in store.lineage(student.id)] == [teacher.id, data.id]
    assert [a.id for a in store.lineage(teacher.id)] == [data.id]
    assert store.lineage(data.id) == []


def test_children(store):
    teacher = make_artifact(store, kind="teacher")
    s1 = make_artifact(store, kind="student", config={"width": 8}, parents=[teacher.id])
    s2 = make_artifact(store, kind="student", config={"width": 16}, parents=[teacher.id])
    make_artifact(store, kind="export", parents=[s1.id])

    assert [a.id for a in store.children(teacher.id)] == [s1.id, s2.id]
    assert [a.kind for a in store.children(s1.id)] == ["export"]
    assert store.children(s2.id) == []


def test_list_filters_by_kind_in_creation_order(store):
    t1 = make_artifact(store, kind="teacher", config={"n": 1})
    s = make_artifact(store, kind="student", parents=[t1.id])
    t2 = make_artifact(store, kind="teacher", config={"n": 2})

    assert [a.id for a in store.list()] == [t1.id, s.id, t2.id]
    assert [a.id for a in store.list("teacher")] == [t1.id, t2.id]
    assert store.list("export") == []


def test_update_manifest_keeps_id_and_updates_disk_and_index(store):
    art = make_artifact(store, metrics={"val_accuracy": 0.5})
    updated = store.update_manifest(art.id, metrics={"val_accuracy": 0.75}, evaluation={"f1": 0.7})

    assert updated.id == art.id
    assert updated.path == art.path
    on_disk = json.loads((art.path / "manifest.json").read_text())
    assert on_disk["metrics"] == {"val_accuracy": 0.75}
    assert on_disk["evaluation"] == {"f1": 0.7}
    assert on_disk["files"] == art.manifest["files"]
    # A fresh store instance reads the index, not a cache.
    reread = ArtifactStore(store.root).get(art.id)
    assert reread.manifest["metrics"] == {"val_accuracy": 0.75}
    assert reread.manifest["evaluation"] == {"f1": 0.7}


def test_update_manifest_refuses_sealed_fields(store):
    art = make_artifact(store)
    with pytest.raises(ValueError, match="config"):
        store.update_manifest(art.id, config={"lr": 1})
    assert store.get(art.id).manifest["config"] == {"lr": 0.01}


def test_reindex_after_deleting_index_recovers_list(store):
    data = make_artifact(store, kind="data")
    teacher = make_artifact(store, kind="teacher", parents=[data.id])
    expected = [a.id for a in store.list()]

    os.remove(store.root / "index.sqlite")
    recovered = ArtifactStore(store.root)

    assert [a.id for a in recovered.list()] == expected
    assert [a.id for a in recovered.children(data.id)] == [teacher.id]


def test_empty_index_file_triggers_reindex(store):
    art = make_artifact(store)
    (store.root / "index.sqlite").write_bytes(b"")
    assert [a.id for a in ArtifactStore(store.root).list()] == [art.id]


def test_interrupted_commit_is_not_listed(store):
    done = make_artifact(store, kind="teacher", config={"n": 1})
    # A run that was killed before commit: staging dir with files, no final dir.
    staging = store.staging_dir("teacher", {"n": 2})
    (staging / "checkpoint.pt").write_bytes(b"partial")

    assert [a.id for a in store.list()] == [done.id]
    os.remove(store.root / "index.sqlite")
    assert [a.id for a in ArtifactStore(store.root).list()] == [done.id]
    assert staging.is_dir()


def test_write_json_atomic_leaves_no_temp_files(tmp_path):
    target = tmp_path / "out.json"
    write_json_atomic(target, {"b": 1, "a": pathlib.Path("x")})
    write_json_atomic(target, {"c": 2})

    assert json.loads(target.read_text()) == {"c": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_write_json_atomic_failure_keeps_old_file_and_cleans_up(tmp_path):
    target = tmp_path / "out.json"
    write_json_atomic(target, {"ok": True})
    with pytest.raises(ValueError):
        write_json_atomic(target, {"x": _Unprintable()})
    assert json.loads(target.read_text()) == {"ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


class _Unprintable:
    """An object whose str() fails, to make json.dump raise mid-write."""

    def __str__(self):
        raise ValueError("cannot serialise")


def test_canonical_json_is_key_order_independent():
    assert canonical_json({"b": 1, "a": [1, 2]}) == canonical_json({"a": [1, 2], "b": 1})
    assert canonical_json({"a": 1}) == '{"a":1}'


def test_code_version_never_raises_and_names_package():
    text = code_version()
    assert text.startswith("edgekit ")


def test_format_table_shows_ids_parents_and_metrics(store):
    teacher = make_artifact(store, kind="teacher", metrics={"val_accuracy": 0.91234, "test_accuracy": 0.8})
    student = make_artifact(store, kind="student", parents=[teacher.id], metrics={})
    table = format_table(store.list())

    lines = table.splitlines()
    assert len(lines) == 3
    assert lines[1].startswith(teacher.id)
    assert "test_accuracy=0.8000" in lines[1] and "val_accuracy=0.9123" in lines[1]
    assert student.id in lines[2] and teacher.id in lines[2]
    assert format_table([]) == "(no artifacts)"


def test_artifact_is_frozen(store):
    art = make_artifact(store)
    assert isinstance(art, Artifact)
    with pytest.raises(AttributeError):
        art.id = "other"


# -- errors, schema version --------------------------------------------------


def test_store_error_is_not_a_key_error(store):
    """A programming KeyError must not pass for "no such artifact" (the CLI reports StoreError only)."""
    assert not issubclass(StoreError, KeyError)
    with pytest.raises(StoreError):
        store.get("teacher-000000000000")


def _user_version(path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def _set_user_version(path, version: int) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute(f"PRAGMA user_version = {version}")
        conn.commit()
    finally:
        conn.close()


def test_a_new_index_records_the_schema_version(store):
    assert store.schema_version() == SCHEMA_VERSION == _user_version(store.db_path)


@pytest.mark.parametrize("older", [0, 1])
def test_a_store_an_older_kit_filled_is_refused_with_the_reason_and_left_alone(store, older):
    """Stores before version 2 hold artifacts whose configs carry the decision rule as two fields."""
    teacher = make_artifact(store, kind="teacher")
    _set_user_version(store.db_path, older)
    with pytest.raises(StoreError, match=rf"older edgekit \(store version {older}\).*decision_threshold"):
        ArtifactStore(store.root)
    assert _user_version(store.db_path) == older
    assert (teacher.path / "manifest.json").is_file()


def test_an_empty_index_from_an_older_kit_is_stamped(store):
    _set_user_version(store.db_path, 1)
    assert ArtifactStore(store.root).schema_version() == SCHEMA_VERSION


def test_an_index_from_a_newer_kit_is_refused_and_left_alone(store):
    art = make_artifact(store)
    _set_user_version(store.db_path, SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match=rf"schema version {SCHEMA_VERSION + 1}, newer than the {SCHEMA_VERSION}"):
        ArtifactStore(store.root)
    assert _user_version(store.db_path) == SCHEMA_VERSION + 1
    assert (art.path / "manifest.json").is_file()


def test_a_file_that_is_not_an_index_or_a_folder_is_refused(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    (root / "index.sqlite").write_bytes(b"this is not sqlite, but long enough to have a header" * 4)
    with pytest.raises(StoreError, match="is not an edgekit index"):
        ArtifactStore(root)
    (tmp_path / "plain-file").write_text("x")
    with pytest.raises(StoreError, match="is not a directory"):
        ArtifactStore(tmp_path / "plain-file")


# -- references by path ------------------------------------------------------


def test_an_artifact_path_resolves_in_its_own_runs_folder(tmp_path):
    """`runs-b/teacher-x` opens runs-b, whatever the default runs folder, so its parents are found."""
    other = ArtifactStore(tmp_path / "runs-b")
    teacher = make_artifact(other, kind="teacher")
    student = make_artifact(other, kind="student", parents=[teacher.id])
    default = tmp_path / "runs-a"

    owner = ArtifactStore.for_reference(student.path, default)
    assert owner.root == other.root
    assert owner.get(str(student.path)).id == student.id
    assert [a.id for a in owner.lineage(str(student.path))] == [teacher.id]
    # Relative paths too.
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        assert ArtifactStore.for_reference(f"runs-b/{student.id}", default).root == other.root
    # An id, a prefix or nothing: the default store.
    assert ArtifactStore.for_reference(student.id, default).root == default.resolve()
    assert ArtifactStore.for_reference(None, default).root == default.resolve()


def test_a_runs_folder_without_its_index_is_still_one(tmp_path):
    other = ArtifactStore(tmp_path / "runs-b")
    teacher = make_artifact(other, kind="teacher")
    student = make_artifact(other, kind="student", parents=[teacher.id])
    os.remove(other.db_path)
    assert owning_root(student.path) == other.root  # beside another artifact
    lone = tmp_path / "copied" / teacher.id
    lone.mkdir(parents=True)
    (lone / "manifest.json").write_text((teacher.path / "manifest.json").read_text())
    assert owning_root(lone) is None  # on its own: read from the default store, as before
    assert owning_root(tmp_path / "nowhere") is None and owning_root("teacher-") is None


def test_get_by_path_indexes_a_directory_copied_into_the_root(store, tmp_path):
    elsewhere = ArtifactStore(tmp_path / "elsewhere")
    art = make_artifact(elsewhere)
    copy = store.root / art.id
    shutil.copytree(art.path, copy)
    assert store.list() == []
    assert store.get(str(copy)).path == copy
    assert [a.id for a in store.list()] == [art.id]


# -- find ----------------------------------------------------------------------


def test_find_returns_the_artifact_made_from_the_same_inputs(store):
    teacher = make_artifact(store, kind="teacher", config={"epochs": 2, "records": ["a03", "c03"]})
    student = make_artifact(store, kind="student", config={"arch": "small"}, parents=[teacher.id])

    assert store.find("teacher", {"records": ("a03", "c03"), "epochs": 2}) == teacher  # tuples match lists
    assert store.find("student", {"arch": "small"}, [teacher.id]) == student
    assert store.find("student", {"arch": "small"}) is None  # other parents
    assert store.find("student", {"arch": "big"}, [teacher.id]) is None
    assert store.find("synth", {"arch": "small"}, [teacher.id]) is None
    assert store.find("teacher", {"epochs": 2, "records": ["a03", "c03"]},
                      data=[{"dataset": "toy", "split": "train"}]) == teacher
    assert store.find("teacher", {"epochs": 2, "records": ["a03", "c03"]}, data=[{"dataset": "other"}]) is None


def test_find_prefers_the_newest_of_two_runs_and_skips_deleted_ones(store):
    first = make_artifact(store, files={"weights.bin": b"run 1"})
    second = make_artifact(store, files={"weights.bin": b"run 2"})  # same inputs, other result
    assert first.id != second.id
    assert store.find("teacher", {"lr": 0.01}) == second
    shutil.rmtree(second.path)  # behind the index's back
    assert store.find("teacher", {"lr": 0.01}) == first


# -- remove ----------------------------------------------------------------------


def test_remove_takes_the_directory_and_its_rows_and_refuses_a_parent(store):
    teacher = make_artifact(store, kind="teacher")
    student = make_artifact(store, kind="student", parents=[teacher.id])
    with pytest.raises(StoreError, match=f"parent of {student.id}"):
        store.remove(teacher.id)
    assert teacher.path.is_dir() and [a.id for a in store.list()] == [teacher.id, student.id]

    assert store.remove(student.id).id == student.id
    assert not student.path.exists()
    assert [a.id for a in store.list()] == [teacher.id]
    assert store.children(teacher.id) == []
    assert list((store.root / ".trash").iterdir()) == []
    store.remove(teacher.id)
    assert store.list() == [] and not teacher.path.exists()
    assert [a.id for a in ArtifactStore(store.root).list()] == []  # nothing left for a reindex either
    with pytest.raises(StoreError, match="no artifact"):
        store.remove(teacher.id)


def test_remove_clears_what_an_interrupted_removal_left(store):
    art = make_artifact(store)
    leftover = store.root / ".trash" / "synth-123456789abc.1.x"
    leftover.mkdir(parents=True)
    (leftover / "big.bin").write_bytes(b"x")
    store.remove(art.id)
    assert list((store.root / ".trash").iterdir()) == []


def test_format_table_shows_notes_when_there_are_some(store):
    teacher = make_artifact(store, kind="teacher")
    student = make_artifact(store, kind="student", parents=[teacher.id])
    assert "NOTES" not in format_table(store.list(), {})
    lines = format_table(store.list(), {student.id: "stale, rebuilt as student-0123456789ab"}).splitlines()
    assert lines[0].rstrip().endswith("NOTES")
    assert lines[1].endswith("-") and lines[2].endswith("stale, rebuilt as student-0123456789ab")
