"""Tests for edgekit._store: atomic artifact directories and their SQLite index."""

import json
import os
import pathlib

import pytest

from edgekit._store import (
    Artifact,
    ArtifactStore,
    canonical_json,
    code_version,
    format_table,
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


def test_commit_with_unknown_parent_raises_key_error(store):
    staging = store.staging_dir("student", {})
    with pytest.raises(KeyError, match="teacher-000000000000"):
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


def test_get_unknown_raises_key_error(store):
    make_artifact(store)
    with pytest.raises(KeyError, match='no artifact "student-nope"'):
        store.get("student-nope")
    with pytest.raises(KeyError, match="no artifact"):
        store.get("")


def test_ambiguous_prefix_raises_listing_matches(store):
    a = make_artifact(store, config={"lr": 0.01})
    b = make_artifact(store, config={"lr": 0.02})
    with pytest.raises(KeyError, match="ambiguous") as excinfo:
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
