"""Unlearning with a stochastic teacher (Algorithm 1 of the stochastic-teacher paper, issue 6).

Knowledge erasure: M_u starts as a copy of the trained model M_d and is distilled, on the data to
forget D_f only, towards a randomly initialised network M_s of the same architecture (Eq. 2-3: KL
between softmaxes at temperature tau). M_s has never seen any data, so its answers on D_f are what
a model without that knowledge would say. Model reconstruction: M_u then trains on the remaining
data D_r with cross-entropy plus alpha times the KL to M_d (Eq. 4-5), which restores what the
erasure damaged on D_r. One epoch of each, as the paper.

A request to forget whole classes also masks those classes out of M_d's softmax in the
reconstruction KL: M_d's outputs on D_r still rank the forgotten classes (how much a 5 looks like a
3), and with them the KL taught the forgotten class back (MNIST, class 3: 96.8 % of its validation
images recognised again after reconstruction; 0.2 % with alpha = 0). Requests for patients or
samples keep every class.

A patient is not a class: a model retrained without a patient still reads that patient's minutes
well, so distilling them towards a random network over-forgets them, and reconstruction then
brings part of them back (BENCHMARKS.md: 1 of 5 patients indistinguishable from retraining).
Patient and sample requests can therefore give `forget_targets`: the outputs on D_f of a model
of the same recipe that never saw D_f (a guide, `teacher.train_guides`). Erasure then distils D_f
towards those outputs, and every reconstruction step also holds a batch of D_f at them, so D_r
is repaired without D_f drifting back to what M_d remembered of it. For patients the erasure
epoch is dropped (`PATIENT_UNLEARN`): the anchor alone moves D_f to the guide's outputs. Those
outputs are rescaled in each step to how sure the model is then (`_rescaled`): reconstruction
leaves it less sure of everything (a validation night: median logit margin 7.7 on D_r against
M_d's 10.0), and D_f held at the guide's own scale then reads as more familiar than unseen data,
which is what a membership attack looks for.

The paper gives no values for tau, alpha or the learning rates; the defaults below are this kit's
and are recorded with every result.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from teacher._training import restores_global_rng, to_float


@dataclass(frozen=True)
class UnlearnConfig:
    erase_epochs: int = 1  # the paper: one epoch of erasure
    reconstruct_epochs: int = 1  # and one of reconstruction
    temperature: float = 1.0  # tau of Eq. 2, for both KL terms
    alpha: float = 1.0  # weight of the KL to M_d in Eq. 5
    erase_lr: float = 1e-3
    reconstruct_lr: float = 1e-3
    # Anneal the reconstruction's learning rate linearly to zero, as the teacher's own one-cycle
    # recipe ends: a constant rate leaves the model wherever the last batches pushed it.
    reconstruct_anneal: bool = False
    batch_size: int = 128
    # With `forget_targets`: D_f examples held at their targets in each reconstruction step.
    anchor_batch_size: int = 64
    # ... at the targets scaled to the model's confidence relative to M_d's (`_rescaled`).
    anchor_rescale: bool = False
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


# Requests for patients or samples, with guide targets for D_f: no erasure epoch, then one
# reconstruction epoch at 1e-3 annealed to zero in which every step also holds 64 of the forgotten
# minutes at the guide's outputs, rescaled to the model's confidence. Chosen on validation nights
# (BENCHMARKS.md, `benchmarks/unlearn_patients.py --validation`): with the anchor all three first
# validation patients were within 3 points and 0.05 attack AUC of the retrained model; a first
# erasure epoch towards the same targets only added noise (two of three patients failed, by 3.9
# points and 0.068 AUC), and erasure towards a random network (the paper's M_s, at 1e-2 then
# reconstruction at 2e-3) left every patient more than 0.05 AUC away. Without the rescaling the
# forgotten night read as more familiar to the model than to the references (attack AUC +0.024
# on average over six validation patients and four seeds; +0.004 with it; `unlearn_seeds.py`).
PATIENT_UNLEARN = UnlearnConfig(erase_epochs=0, erase_lr=1e-3, reconstruct_lr=1e-3, reconstruct_anneal=True,
                                anchor_batch_size=64, anchor_rescale=True)

# Samples without guides (image teachers): the stochastic teacher's erasure at 1e-2, reconstruction
# at 2e-3 annealed to zero (this kit's patient setting before guides). 100 random MNIST training
# images: verified against retraining; ten erasure epochs push them past the retrained model (attack
# AUC gap 0.052; BENCHMARKS.md, image samples). One erasure epoch is a single step for up to 128
# samples, too little to undo samples learnt by heart (tests/teacher/test_unlearn.py needs ten).
SAMPLES_UNLEARN = UnlearnConfig(erase_lr=1e-2, reconstruct_lr=2e-3, reconstruct_anneal=True)


def _kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(p || q) of Eq. 3, p the teacher's softmax and q the student's, both at `temperature`,
    averaged over the batch. Classes the teacher gives no probability (logit -inf) add nothing."""
    p = torch.softmax(teacher_logits / temperature, dim=1)
    q_log = torch.log_softmax(student_logits / temperature, dim=1)
    return (torch.xlogy(p, p) - p * q_log).sum(dim=1).mean()


def _rescaled(targets: torch.Tensor, model_logits: torch.Tensor, original_logits: torch.Tensor) -> torch.Tensor:
    """`targets` scaled by how sure the model is now relative to M_d, on the same batch: the mean
    spread (standard deviation over the classes) of its logits over M_d's. A model half as sure
    as M_d gets the targets at twice the temperature; their ranking is kept."""
    return targets * (model_logits.std(dim=1).mean() / original_logits.std(dim=1).mean())


class StochasticTeacherUnlearner:
    """Makes M_u from M_d without D_f. `make_model()` builds an untrained network of M_d's
    architecture (the stochastic teacher M_s is one, seeded by `config.seed`)."""

    def __init__(self, original: nn.Module, make_model: Callable[[], nn.Module], config: UnlearnConfig = UnlearnConfig()):
        self.original = original.eval()
        self.make_model = make_model
        self.config = config

    @restores_global_rng
    def unlearn(self, forget_inputs: torch.Tensor, retain_inputs: torch.Tensor, retain_labels: torch.Tensor,
                forget_classes: list[int] = (), forget_targets: torch.Tensor | None = None,
                progress: bool = True) -> tuple[nn.Module, dict]:
        """(M_u in eval mode, history with the loss and seconds of each stage). `forget_classes`:
        the classes of a class request, masked out of M_d's outputs in reconstruction.
        `forget_targets`: logits for D_f from a model that never saw it; erasure distils towards
        them instead of the stochastic teacher, and reconstruction holds D_f at them."""
        generator = torch.Generator().manual_seed(self.config.seed)
        torch.manual_seed(self.config.seed)
        stochastic = self.make_model().eval()
        model = copy.deepcopy(self.original)
        history = {"erase": [], "reconstruct": []}
        if forget_targets is None:
            erase_targets = lambda index, batch: stochastic(batch)  # noqa: E731
            anchor = None
        else:
            forget_targets = forget_targets.float()
            erase_targets = lambda index, batch: forget_targets[index]  # noqa: E731
            anchor = (forget_inputs, forget_targets) if self.config.anchor_batch_size else None
        erase = torch.optim.Adam(model.parameters(), lr=self.config.erase_lr)
        for epoch in range(self.config.erase_epochs):
            history["erase"].append(self._epoch(model, erase, forget_inputs, None, erase_targets, generator,
                                                progress, f"erase {epoch + 1}"))

        def original_targets(index, batch):
            logits = self.original(batch)
            logits[:, list(forget_classes)] = -torch.inf
            return logits

        reconstruct = torch.optim.Adam(model.parameters(), lr=self.config.reconstruct_lr)
        steps = self.config.reconstruct_epochs * -(-len(retain_inputs) // self.config.batch_size)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            reconstruct, (lambda step: 1 - step / max(steps, 1)) if self.config.reconstruct_anneal else (lambda step: 1.0))
        for epoch in range(self.config.reconstruct_epochs):
            history["reconstruct"].append(self._epoch(model, reconstruct, retain_inputs, retain_labels, original_targets,
                                                      generator, progress, f"reconstruct {epoch + 1}",
                                                      schedule=schedule, anchor=anchor))
        return model.eval(), history

    def _epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, inputs: torch.Tensor,
               labels: torch.Tensor | None, targets_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
               generator: torch.Generator, progress: bool, description: str,
               schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
               anchor: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict:
        """One shuffled pass. Erasure (labels None): KL to the target logits `targets_of(index,
        batch)` (the stochastic teacher's, or D_f's given targets). Reconstruction: cross-entropy on
        the labels plus alpha times the KL to `targets_of` (M_d's), plus, with an `anchor` (D_f
        inputs, target logits), the KL to the targets on a random batch of D_f."""
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(inputs), generator=generator)
        total, seen = 0.0, 0
        for start in tqdm(range(0, len(order), self.config.batch_size), desc=description, unit="batch",
                          leave=False, disable=not progress):
            index = order[start : start + self.config.batch_size]
            batch = to_float(inputs[index])
            if anchor is not None:
                anchored = torch.randint(len(anchor[0]), (self.config.anchor_batch_size,), generator=generator)
                batch = torch.cat([batch, to_float(anchor[0][anchored])])
            with torch.no_grad():
                target_logits = targets_of(index, batch[: len(index)])
            logits = model(batch)
            loss = _kl(target_logits, logits[: len(index)], self.config.temperature)
            if labels is not None:
                loss = nn.functional.cross_entropy(logits[: len(index)], labels[index]) + self.config.alpha * loss
            if anchor is not None:
                anchor_targets = anchor[1][anchored]
                if self.config.anchor_rescale:
                    anchor_targets = _rescaled(anchor_targets, logits[: len(index)].detach(), target_logits)
                loss = loss + _kl(anchor_targets, logits[len(index):], self.config.temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            total += loss.item() * len(index)
            seen += len(index)
        return {"loss": total / max(seen, 1), "examples": seen, "seconds": time.perf_counter() - started}
