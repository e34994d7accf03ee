"""Students: their targets, their configuration derived from the teacher's, and distillation losses."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import teacher
from student import STUDENT_RECIPES, student_config, student_targets, teacher_labeller
from teacher._training import mix_and_relabel, train_one_epoch

# --- student_targets --------------------------------------------------------------------------

LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.3, 3.0], [-2.0, 1.5, 1.0], [0.0, 0.0, 0.2]])


def _entropy(probabilities: torch.Tensor) -> torch.Tensor:
    return -(probabilities * probabilities.log()).sum(1)


def test_soft_targets_are_the_softmax_and_sum_to_one():
    soft = student_targets(LOGITS, "soft", 1.0)
    assert soft.shape == LOGITS.shape and soft.is_floating_point()
    torch.testing.assert_close(soft.sum(1), torch.ones(len(LOGITS)))
    torch.testing.assert_close(soft, torch.softmax(LOGITS, 1))
    for temperature in (0.5, 4.0):
        torch.testing.assert_close(student_targets(LOGITS, "soft", temperature).sum(1), torch.ones(len(LOGITS)))


def test_temperature_softens_and_sharpens_without_changing_the_winner():
    cold, plain, hot = (student_targets(LOGITS, "soft", t) for t in (0.5, 1.0, 4.0))
    assert (_entropy(cold) < _entropy(plain)).all() and (_entropy(plain) < _entropy(hot)).all()
    assert (cold.max(1).values > plain.max(1).values).all() and (plain.max(1).values > hot.max(1).values).all()
    assert torch.equal(cold.argmax(1), LOGITS.argmax(1)) and torch.equal(hot.argmax(1), LOGITS.argmax(1))
    torch.testing.assert_close(hot, torch.softmax(LOGITS / 4.0, 1))


def test_hard_targets_are_the_argmax_class_ids():
    hard = student_targets(LOGITS, "hard", 3.0)
    assert hard.dtype == torch.int64
    assert hard.tolist() == [0, 2, 1, 2]


# --- student_config ---------------------------------------------------------------------------

MNIST_DATA = {"in_channels": 1, "image_size": 28, "num_classes": 10, "mean": [0.1307], "std": [0.3081]}


@pytest.fixture()
def mnist_teacher_config() -> dict:
    return teacher.TrainConfig(
        dataset="mnist", arch="am_h1", epochs=30, lr=0.5, augment="shift", validation_size=5000, seed=7,
        arch_options={**MNIST_DATA, "widths": [16, 32], "hidden": [128], "dropout": 0.25},
    ).to_dict()


@pytest.fixture()
def apnea_teacher_config() -> dict:
    return teacher.TrainConfig(
        dataset="apnea-ecg", arch="apnea_cnn", epochs=5, decision=teacher.DecisionRule(smoothing_minutes=2, threshold=0.4),
        train_records=["a01", "b01"], arch_options={"length": teacher.APNEA_WINDOW.length, "widths": [16, 32], "dropout": 0.1},
    ).to_dict()


def test_image_student_inherits_data_options_not_architecture(mnist_teacher_config):
    config = student_config(mnist_teacher_config, "cnn_tiny", labels="soft", temperature=4.0)
    assert config.dataset == "mnist" and config.arch == "cnn_tiny"
    assert config.arch_options == MNIST_DATA
    assert config.temperature == 4.0
    # The student recipe, not the teacher's run: no augmentation, no validation draw, own epochs and lr.
    recipe = STUDENT_RECIPES["mnist"]
    assert config.epochs == recipe["epochs"] and config.lr == recipe["lr"] and config.batch_size == recipe["batch_size"]
    assert config.augment == "none" and config.validation_size == 0 and config.seed == 0
    model = teacher.create_model(config.arch, **config.arch_options)
    assert model.features[0].out_channels == 8  # cnn_tiny's own widths, not the teacher's 16
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_apnea_student_inherits_length_and_smoothing_has_its_own_threshold_and_mixes(apnea_teacher_config):
    config = student_config(apnea_teacher_config, "apnea_cnn_small", labels="hard")
    assert config.arch_options == {"length": teacher.APNEA_WINDOW.length}
    assert config.decision.smoothing_minutes == 2
    assert apnea_teacher_config["decision"]["threshold"] == 0.4
    assert config.decision.threshold == STUDENT_RECIPES["apnea-ecg"]["decision_threshold"] == 0.3
    assert config.mixup == STUDENT_RECIPES["apnea-ecg"]["mixup"] > 0
    assert student_config(apnea_teacher_config, "apnea_cnn_small", labels="hard",
                          decision_threshold=0.5).decision.threshold == 0.5
    assert config.epochs == STUDENT_RECIPES["apnea-ecg"]["epochs"]
    assert config.train_records == []  # the student never sees the teacher's nights
    model = teacher.create_model(config.arch, **config.arch_options)
    assert model(torch.full((2, *teacher.APNEA_CONTRACT.shape), 0.9)).shape == (2, 2)


def test_overrides_replace_the_recipe_and_none_keeps_it(mnist_teacher_config):
    config = student_config(mnist_teacher_config, "cnn_small", labels="soft", epochs=3, seed=5, lr=None)
    assert config.epochs == 3 and config.seed == 5 and config.lr == STUDENT_RECIPES["mnist"]["lr"]
    assert student_config(mnist_teacher_config, "cnn_small", labels="soft", epochs=None).epochs == 15


def test_hard_labels_train_at_temperature_one(mnist_teacher_config):
    assert student_config(mnist_teacher_config, "cnn_tiny", labels="hard", temperature=4.0).temperature == 1.0


@pytest.mark.parametrize("arch", ["apnea_cnn", "apnea_cnn_small"])
def test_student_of_another_modality_is_refused(mnist_teacher_config, arch):
    with pytest.raises(ValueError, match=arch) as error:
        student_config(mnist_teacher_config, arch, labels="soft")
    assert "image" in str(error.value) and "am_h1" in str(error.value)


def test_image_student_for_an_apnea_teacher_is_refused(apnea_teacher_config):
    with pytest.raises(ValueError, match="cnn_tiny"):
        student_config(apnea_teacher_config, "cnn_tiny", labels="soft")


def test_unknown_student_arch_is_refused(mnist_teacher_config):
    with pytest.raises(KeyError, match="no_such_net"):
        student_config(mnist_teacher_config, "no_such_net", labels="soft")


@pytest.mark.parametrize("labels", ["medium", "SOFT", ""])
def test_bad_labels_are_refused(mnist_teacher_config, labels):
    with pytest.raises(ValueError, match="labels"):
        student_config(mnist_teacher_config, "cnn_tiny", labels=labels)


@pytest.mark.parametrize("temperature", [0.0, -1.0])
def test_non_positive_temperature_is_refused(mnist_teacher_config, temperature):
    with pytest.raises(ValueError, match="temperature"):
        student_config(mnist_teacher_config, "cnn_tiny", labels="soft", temperature=temperature)


# --- the distillation loss in training --------------------------------------------------------

TINY = {"in_channels": 1, "image_size": 8, "num_classes": 2, "mean": [0.5], "std": [0.25]}


def left_right_images(count: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """1x8x8 images with the left (class 0) or right (class 1) half lit, plus noise."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % 2
    images = torch.rand(count, 1, 8, 8, generator=generator) * 0.3
    images[labels == 0, :, :, :4] += 0.6
    images[labels == 1, :, :, 4:] += 0.6
    return images, labels


def test_fit_learns_from_soft_targets(tmp_path):
    images, labels = left_right_images()
    soft = torch.where(nn.functional.one_hot(labels, 2).bool(), 0.85, 0.15)
    config = teacher.TrainConfig(dataset="mnist", arch="cnn_tiny", arch_options=TINY, epochs=6, batch_size=16,
                                 lr=1e-2, weight_decay=0.0, temperature=1.0)
    model, checkpoint = teacher.fit(config, images, soft, tmp_path, device="cpu", progress=False)
    losses = [epoch["train_loss"] for epoch in checkpoint["history"]]
    assert len(losses) == 6
    assert losses[-1] < losses[0] - 0.1, losses
    # The floor of CE against (0.85, 0.15) is its entropy, 0.423: the loss is a soft-target loss.
    assert losses[-1] > 0.40, losses
    with torch.no_grad():
        assert (model(images).argmax(1) == labels).float().mean() == 1.0


def test_labeller_follows_the_batches_device_and_leaves_the_teacher_where_it_was():
    """A student trained on a GPU labels its mixes there; the caller's teacher, scored afterwards on
    the CPU, must not have been moved with it (CUDA run: it was, and scoring failed). The meta device
    stands in for a second device on a CPU-only machine."""
    model = teacher.create_model("cnn_tiny", **TINY)
    label_batch = teacher_labeller(model, "soft", 4.0)
    images, _ = left_right_images(4)
    targets = label_batch(images.to("meta"))
    assert targets.device.type == "meta" and targets.shape == (4, 2)
    assert {parameter.device.type for parameter in model.parameters()} == {"cpu"}


def _one_epoch(labels: torch.Tensor, temperature: float, lr: float):
    torch.manual_seed(0)
    model = teacher.create_model("cnn_tiny", **TINY, dropout=0.0)
    images, _ = left_right_images(32)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    config = teacher.TrainConfig(dataset="mnist", arch="cnn_tiny", batch_size=8, temperature=temperature)
    loss = train_one_epoch(model, images, labels, optimizer, scheduler, config, torch.Generator().manual_seed(0),
                           torch.device("cpu"), progress=False)
    return loss, model, images


def test_one_hot_soft_targets_at_t1_give_the_hard_label_loss_and_updates():
    _, labels = left_right_images(32)
    hard_loss, hard_model, _ = _one_epoch(labels, 1.0, lr=0.1)
    soft_loss, soft_model, _ = _one_epoch(nn.functional.one_hot(labels, 2).float(), 1.0, lr=0.1)
    assert hard_loss > 0.1
    assert soft_loss == pytest.approx(hard_loss, rel=1e-5)
    for hard_parameter, soft_parameter in zip(hard_model.parameters(), soft_model.parameters()):
        torch.testing.assert_close(hard_parameter, soft_parameter)


def test_soft_loss_is_t_squared_cross_entropy_of_tempered_logits():
    _, labels = left_right_images(32)
    targets = torch.softmax(torch.randn(32, 2, generator=torch.Generator().manual_seed(1)) * 3 / 2.0, 1)
    loss, model, images = _one_epoch(targets, 2.0, lr=0.0)  # lr 0: the model stays as it was
    with torch.no_grad():
        logits = model(images)
    expected = 4.0 * nn.functional.cross_entropy(logits / 2.0, targets)
    plain = nn.functional.cross_entropy(logits, targets)
    assert loss == pytest.approx(expected.item(), rel=1e-5)
    assert loss != pytest.approx(plain.item(), rel=1e-3)


def test_mixup_mixes_a_share_of_the_batch_and_labels_every_row_with_the_teacher():
    batch = torch.arange(8, dtype=torch.float32).reshape(8, 1, 1, 1).expand(8, 1, 2, 2).contiguous()
    labelled_by = []

    def label_batch(inputs):
        labelled_by.append(inputs.clone())
        return torch.softmax(torch.stack([inputs.mean((1, 2, 3)), -inputs.mean((1, 2, 3))], 1), 1)

    mixed, targets = mix_and_relabel(batch, 0.5, label_batch, torch.Generator().manual_seed(0))
    assert torch.equal(mixed[4:], batch[4:])  # the rest of the batch as it was
    assert not torch.equal(mixed[:4], batch[:4])
    assert (mixed[:4] >= 0).all() and (mixed[:4] <= 7).all()  # convex mixes of the batch's rows
    assert torch.equal(labelled_by[0], mixed)
    assert torch.allclose(targets, label_batch(mixed))


def test_mixup_without_a_teacher_is_refused(tmp_path):
    images, labels = left_right_images(16)
    config = teacher.TrainConfig(dataset="mnist", arch="cnn_tiny", arch_options=TINY, epochs=1, mixup=0.5)
    with pytest.raises(ValueError, match="mixup needs the teacher"):
        teacher.fit(config, images, labels, tmp_path, device="cpu", progress=False)
