"""teacher._apnea splits: the official learning/test split, validation nights, leave-patients-out."""

from __future__ import annotations

import pytest
import teacher

from teacher import (
    LEARNING_RECORDS,
    TEST_RECORDS,
    ApneaDataError,
    leave_patients_out,
    official_split,
    validation_records,
)


def test_record_lists_are_the_physionet_ones():
    assert len(LEARNING_RECORDS) == 35 and len(set(LEARNING_RECORDS)) == 35
    assert sum(name.startswith("a") for name in LEARNING_RECORDS) == 20
    assert sum(name.startswith("b") for name in LEARNING_RECORDS) == 5
    assert sum(name.startswith("c") for name in LEARNING_RECORDS) == 10
    assert TEST_RECORDS == [f"x{i:02d}" for i in range(1, 36)]


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
def test_official_split_is_disjoint_and_keeps_x_out_of_learning(seed):
    split = official_split(seed)
    train, val, test = set(split["train"]), set(split["val"]), set(split["test"])
    assert not train & val and not train & test and not val & test
    assert train | val == set(LEARNING_RECORDS)
    assert test == set(TEST_RECORDS)
    assert not any(name.startswith("x") for name in train | val)
    # Stratified: validation holds apnea, borderline and control nights (4, 1, 2 by default).
    groups = [name[0] for name in split["val"]]
    assert groups.count("a") == 4 and groups.count("b") == 1 and groups.count("c") == 2
    assert len(split["train"]) == 35 - 7


def test_validation_is_deterministic_per_seed_and_seed_matters():
    assert official_split(3) == official_split(3)
    assert validation_records(5) == validation_records(5)
    distinct = {tuple(validation_records(seed)) for seed in range(10)}
    assert len(distinct) > 1


def test_no_validation_seed_trains_on_every_learning_night():
    split = official_split(None)
    assert split["val"] == [] and split["train"] == LEARNING_RECORDS


def test_validation_records_per_group_counts():
    chosen = validation_records(0, per_group={"a": 2, "c": 3})
    assert [name[0] for name in chosen] == ["a", "a", "c", "c", "c"]
    assert len(set(chosen)) == 5 and set(chosen) <= set(LEARNING_RECORDS)


def test_leave_patients_out_removes_exactly_the_patients():
    records = ["a01", "a03", "b02", "c03", "c07"]
    kept, removed = leave_patients_out(records, ["b02", "a01"])
    assert kept == ["a03", "c03", "c07"]
    assert removed == ["a01", "b02"]  # in the order of `records`
    assert leave_patients_out(records, []) == (records, [])


def test_leave_patients_out_unknown_patient_raises():
    with pytest.raises(ApneaDataError, match="x09"):
        leave_patients_out(["a01", "a02"], ["a01", "x09"])


def test_leave_nights_out_folds_partition_the_learning_nights_by_group():
    folds = teacher.leave_nights_out_folds(5, seed=0)
    flat = [name for fold in folds for name in fold]
    assert sorted(flat) == sorted(teacher.LEARNING_RECORDS)  # each night in exactly one fold
    assert [len(fold) for fold in folds] == [7] * 5
    for fold in folds:
        assert {name[0] for name in fold} >= {"a", "c"}  # 20 a and 10 c nights spread over 5 folds
    assert folds == teacher.leave_nights_out_folds(5, seed=0)
    assert folds != teacher.leave_nights_out_folds(5, seed=1)
