"""The stochastic-teacher unlearner (Algorithm 1) on a small problem whose answers are known."""

from __future__ import annotations

import torch

import teacher
from teacher import StochasticTeacherUnlearner, UnlearnConfig

TINY = {"in_channels": 1, "image_size": 8, "num_classes": 4, "mean": [0.5], "std": [0.25]}


def quadrant_images(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class k: noise with its k-th 4x4 quadrant bright. Trivial to learn, so any forgetting is
    the unlearner's doing."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % 4
    images = torch.rand(count, 1, 8, 8, generator=generator) * 0.3
    for label, (row, col) in enumerate([(0, 0), (0, 4), (4, 0), (4, 4)]):
        images[labels == label, :, row : row + 4, col : col + 4] += 0.6
    return images, labels


def train_original(tmp_path, images, labels, epochs: int):
    """M_d: the tiny network trained on the quadrant images."""
    config = teacher.TrainConfig(dataset="mnist", arch="cnn_tiny", arch_options=TINY, epochs=epochs, batch_size=32,
                                 lr=1e-2, weight_decay=0.0)
    original, _ = teacher.fit(config, images, labels, tmp_path, device="cpu", progress=False)
    return original


def accuracy(model, images, labels) -> float:
    with torch.no_grad():
        return float((model(images).argmax(1) == labels).float().mean())


def test_a_forgotten_class_is_lost_and_the_others_are_kept(tmp_path):
    images, labels = quadrant_images(1024, seed=0)
    test_images, test_labels = quadrant_images(512, seed=1)
    original = train_original(tmp_path, images, labels, epochs=4)
    forget, retain = labels == 3, labels != 3
    assert accuracy(original, test_images, test_labels) > 0.95

    def untrained():
        return teacher.create_model("cnn_tiny", **TINY)

    unlearner = StochasticTeacherUnlearner(original, untrained, UnlearnConfig(batch_size=32, erase_lr=1e-2,
                                                                              reconstruct_lr=1e-2))
    unlearned, history = unlearner.unlearn(images[forget], images[retain], labels[retain], progress=False)

    test_forget, test_retain = test_labels == 3, test_labels != 3
    assert accuracy(unlearned, test_images[test_forget], test_labels[test_forget]) < 0.1
    assert accuracy(unlearned, test_images[test_retain], test_labels[test_retain]) > 0.95
    assert [len(history["erase"]), len(history["reconstruct"])] == [1, 1]  # one epoch each, as the paper
    assert history["erase"][0]["examples"] == int(forget.sum())
    # M_d itself is untouched: the unlearner works on a copy.
    assert accuracy(original, test_images[test_forget], test_labels[test_forget]) > 0.95


def test_erasure_pulls_the_forgotten_outputs_towards_the_stochastic_teacher(tmp_path):
    images, labels = quadrant_images(512, seed=0)
    original = train_original(tmp_path, images, labels, epochs=3)
    forget = images[labels == 0]

    def untrained():
        return teacher.create_model("cnn_tiny", **TINY)

    erase_only = UnlearnConfig(reconstruct_epochs=0, erase_epochs=3, batch_size=32, erase_lr=1e-2)
    unlearned, _ = StochasticTeacherUnlearner(original, untrained, erase_only).unlearn(
        forget, images[:0], labels[:0], progress=False)
    torch.manual_seed(erase_only.seed)
    stochastic = untrained().eval()  # the same M_s: built right after seeding, as the unlearner does

    def distance(model):
        with torch.no_grad():
            return float((torch.softmax(model(forget), 1) - torch.softmax(stochastic(forget), 1)).abs().sum(1).mean())

    assert distance(unlearned) < 0.5 * distance(original)


def test_the_kl_is_eq_3_and_ignores_classes_the_teacher_masks():
    from teacher._unlearn import _kl

    teacher_logits = torch.tensor([[2.0, 0.5, -1.0]])
    student_logits = torch.tensor([[0.3, 0.1, 0.2]], requires_grad=True)
    p, q = torch.softmax(teacher_logits / 2, 1), torch.softmax(student_logits / 2, 1)
    assert torch.allclose(_kl(teacher_logits, student_logits, 2.0), (p * (p / q).log()).sum())
    masked = teacher_logits.clone()
    masked[:, 2] = -torch.inf
    loss = _kl(masked, student_logits, 1.0)
    loss.backward()
    p = torch.softmax(masked, 1)
    assert p[0, 2] == 0 and torch.isfinite(loss) and torch.isfinite(student_logits.grad).all()
    assert torch.allclose(loss, (p[:, :2] * (p[:, :2].log() - torch.log_softmax(student_logits, 1)[:, :2])).sum())


def test_baselines_start_from_the_original_and_negative_methods_forget(tmp_path):
    """Fine-tuning keeps what the other classes need; NegGrad+ and bad teaching, which push away
    from the forgotten class, lose it; none touches M_d."""
    images, labels = quadrant_images(1024, seed=0)
    test_images, test_labels = quadrant_images(512, seed=1)
    original = train_original(tmp_path, images, labels, epochs=4)
    forget, retain = labels == 3, labels != 3
    test_forget, test_retain = test_labels == 3, test_labels != 3
    baseline = teacher.BaselineConfig(batch_size=32, bad_teacher_lr=1e-2)

    tuned, seconds = teacher.finetune(original, images[retain], labels[retain], baseline)
    assert seconds > 0 and accuracy(tuned, test_images[test_retain], test_labels[test_retain]) > 0.95
    negated, _ = teacher.neggrad_plus(original, images[forget], labels[forget], images[retain], labels[retain], baseline)
    assert accuracy(negated, test_images[test_forget], test_labels[test_forget]) < 0.1
    assert accuracy(negated, test_images[test_retain], test_labels[test_retain]) > 0.9
    taught, _ = teacher.bad_teacher(original, lambda: teacher.create_model("cnn_tiny", **TINY), images[forget],
                                    images[retain], baseline)
    assert accuracy(taught, test_images[test_forget], test_labels[test_forget]) < 0.5
    assert accuracy(original, test_images[test_forget], test_labels[test_forget]) > 0.95


def test_baselines_do_not_depend_on_what_ran_before_them(tmp_path):
    """Each baseline seeds its own dropout: a benchmark that runs more unlearning requests before
    it (three seeds instead of two) must get the same baseline, weight for weight; and the caller's
    own random stream goes on as if they had not run."""
    images, labels = quadrant_images(256, seed=0)
    original = train_original(tmp_path, images, labels, epochs=1)
    forget, retain = labels == 3, labels != 3
    baseline = teacher.BaselineConfig(batch_size=32, finetune_epochs=1, neggrad_epochs=1)
    runs = {}
    for state in (1, 2):
        torch.manual_seed(state)  # whatever ran before leaves the global generator somewhere else
        runs[state] = [teacher.finetune(original, images[retain], labels[retain], baseline)[0],
                       teacher.neggrad_plus(original, images[forget], labels[forget], images[retain], labels[retain],
                                            baseline)[0]]
        after = torch.rand(2)
        torch.manual_seed(state)
        assert torch.equal(after, torch.rand(2))
    for first, second in zip(runs[1], runs[2]):
        for (name, weight), other in zip(first.state_dict().items(), second.state_dict().values()):
            assert torch.equal(weight, other), name


def test_forgetting_memorised_samples_leaves_what_a_model_without_them_would_say(tmp_path):
    """Samples, like a patient's minutes, are not a class: the model retrained without them reads
    them by what it learnt from the rest. Here 16 training images carry a wrong label the original
    learns by heart; once they are forgotten the model must call them by their quadrant again."""
    images, labels = quadrant_images(256, seed=0)
    test_images, test_labels = quadrant_images(512, seed=1)
    wrong = torch.zeros(len(labels), dtype=torch.bool)
    wrong[torch.randperm(len(labels), generator=torch.Generator().manual_seed(2))[:16]] = True
    taught = torch.where(wrong, (labels + 1) % 4, labels)
    original = train_original(tmp_path, images, taught, epochs=150)
    assert accuracy(original, images[wrong], taught[wrong]) > 0.8  # the wrong labels were learnt by heart

    def untrained():
        return teacher.create_model("cnn_tiny", **TINY)

    # Sixteen samples are one erasure step an epoch. One step gives back only 8-15 of them their
    # quadrant (by seed, thread count and CPU); ten give back all 16 in 24 of 24 runs (12 seeds, 1 and
    # 2 threads).
    config = UnlearnConfig(batch_size=32, erase_epochs=10, erase_lr=1e-2, reconstruct_lr=1e-2,
                           reconstruct_anneal=True)
    unlearned, _ = StochasticTeacherUnlearner(original, untrained, config).unlearn(
        images[wrong], images[~wrong], taught[~wrong], progress=False)
    assert accuracy(unlearned, images[wrong], labels[wrong]) > 0.9  # their quadrant, as a model without them
    assert accuracy(unlearned, test_images, test_labels) > 0.95


def test_guide_targets_hold_forgotten_samples_at_what_a_model_without_them_says(tmp_path):
    """With `forget_targets` (a guide's outputs: a model trained without the samples), erasure
    distils the forgotten samples towards them and every reconstruction step holds them there, so
    they end closer to the guide than when reconstruction alone decides where they drift."""
    images, labels = quadrant_images(256, seed=0)
    wrong = torch.zeros(len(labels), dtype=torch.bool)
    wrong[torch.randperm(len(labels), generator=torch.Generator().manual_seed(2))[:16]] = True
    taught = torch.where(wrong, (labels + 1) % 4, labels)
    original = train_original(tmp_path / "original", images, taught, epochs=150)
    guide = train_original(tmp_path / "guide", images[~wrong], taught[~wrong], epochs=150)
    with torch.no_grad():
        targets = torch.log_softmax(guide(images[wrong]), dim=1)

    def untrained():
        return teacher.create_model("cnn_tiny", **TINY)

    def distance_to_guide(anchor_batch_size: int) -> float:
        config = UnlearnConfig(batch_size=32, erase_lr=1e-2, reconstruct_lr=1e-2, reconstruct_anneal=True,
                               anchor_batch_size=anchor_batch_size)
        unlearned, _ = StochasticTeacherUnlearner(original, untrained, config).unlearn(
            images[wrong], images[~wrong], taught[~wrong], forget_targets=targets, progress=False)
        assert accuracy(unlearned, images[~wrong], taught[~wrong]) > 0.95
        with torch.no_grad():
            return float(teacher._unlearn._kl(targets, unlearned(images[wrong]), 1.0))

    with torch.no_grad():
        before = float(teacher._unlearn._kl(targets, original(images[wrong]), 1.0))
    anchored, erased_only = distance_to_guide(8), distance_to_guide(0)
    assert anchored < erased_only < before
    assert anchored < 0.1


def test_rescaled_targets_follow_the_models_confidence_and_keep_their_ranking():
    """A model half as sure of itself as M_d (its logits half as spread, whatever their offset)
    holds D_f at the targets' softmax at twice the temperature; as sure as M_d, at the targets."""
    generator = torch.Generator().manual_seed(0)
    original_logits = torch.randn(32, 4, generator=generator) * 5
    targets = torch.log_softmax(torch.randn(8, 4, generator=generator) * 3, dim=1)
    half_as_sure = teacher._unlearn._rescaled(targets, original_logits / 2 + 7.0, original_logits)
    assert torch.allclose(torch.softmax(half_as_sure, dim=1), torch.softmax(targets / 2, dim=1), atol=1e-6)
    assert torch.equal(half_as_sure.argsort(dim=1), targets.argsort(dim=1))
    assert torch.allclose(teacher._unlearn._rescaled(targets, original_logits - 3.0, original_logits), targets)
