"""Every registered dataset through the one interface the stages use (`teacher.dataset(name)`):
adding a dataset is one entry in DATASET_HANDLERS, and this test runs it."""

from __future__ import annotations

import inspect

import pytest

import student
import teacher

METHODS = ("train_config", "train", "evaluate", "summary", "training_examples", "held_out", "real_data")


@pytest.mark.parametrize("name", teacher.DATASETS)
def test_each_dataset_offers_the_whole_interface_and_a_student_recipe(name):
    handler = teacher.dataset(name)
    assert handler.name == name and isinstance(handler.has_patients, bool)
    for method in METHODS:
        signature = inspect.signature(getattr(handler, method))
        assert "progress" in signature.parameters or method == "summary", f"{name}.{method} shows no progress flag"
    assert name in student.STUDENT_RECIPES  # a student can be distilled from its teachers


def test_an_unknown_dataset_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown dataset 'svhn'; known: apnea-ecg"):
        teacher.dataset("svhn")


def test_the_apnea_recipe_trains_on_the_learning_nights_less_the_validation_nights_and_scores_on_x():
    handler = teacher.dataset("apnea-ecg")
    config = handler.train_config(None, seed=3)
    split = teacher.official_split(0)
    assert (config.train_records, config.val_records) == (split["train"], split["val"]) and config.seed == 3
    assert config.test_records == list(teacher.TEST_RECORDS) and config.arch == "apnea_cnn"
    everything = handler.train_config(None, validation=False)
    assert len(everything.train_records) == 35 and everything.val_records == []
    chosen = handler.train_config(None, train_records=["a01", "b01"], val_records=["c01"])
    assert (chosen.train_records, chosen.val_records) == (["a01", "b01"], ["c01"])


def test_a_dataset_refuses_the_other_kinds_validation_option():
    with pytest.raises(ValueError, match="validates on nights"):
        teacher.dataset("apnea-ecg").train_config(None, validation_size=100)
    with pytest.raises(ValueError, match="holds out training images"):
        teacher.dataset("mnist").train_config(None, train_records=["a01"])


def test_apnea_ecg_on_the_embedded_nights_trains_on_what_it_keys_and_scores_with_its_rule(embedded_apnea_dir):
    handler = teacher.dataset("apnea-ecg")
    config = teacher.TrainConfig(train_records=["a03", "c07"], val_records=["b02"], test_records=["x01"])
    data = handler.training_examples(config, embedded_apnea_dir, progress=False)
    # Training and validation nights both: a patient's request removes the night from either.
    assert set(data.groups) == {"a03", "b02", "c07"} and len(data.keys) == len(data.train.labels)
    assert all(key.split(":")[0] == group for key, group in zip(data.keys[::50], data.groups[::50]))
    test, score = handler.held_out(config, embedded_apnea_dir, progress=False)
    assert set(test.records) == {"x01"} and (test.labels >= 0).all()
    model = teacher.create_model(config.arch).eval()
    accuracy = score(model, test)
    figures = handler.evaluate(model, config, embedded_apnea_dir, records=["x01"], progress=False)
    assert figures["scored_on"] == "x01" and figures["minute"]["accuracy"] == pytest.approx(accuracy)
    assert figures["decision"] == config.decision.to_dict()
    assert set(handler.summary(figures)) == {"minute", "night"} and "per_night" not in handler.summary(figures)["night"]
