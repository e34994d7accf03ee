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

from teacher._training import to_float


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
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


# Requests for patients or samples. The class defaults barely move a patient's few hundred
# minutes: one erasure epoch is 4 Adam steps of 1e-3, and reconstruction brings the patient back
# (validation nights: the patient's loss 0.05 after, against 0.29 for the model retrained without
# it). Erasure at 1e-2 removes it; reconstruction at 2e-3, annealed to zero, restores the rest
# without leaving the model wherever its last batches pushed it. Chosen on validation nights
# (BENCHMARKS.md, `benchmarks/unlearn_patients.py --validation`).
PATIENT_UNLEARN = UnlearnConfig(erase_lr=1e-2, reconstruct_lr=2e-3, reconstruct_anneal=True)


def _kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(p || q) of Eq. 3, p the teacher's softmax and q the student's, both at `temperature`,
    averaged over the batch. Classes the teacher gives no probability (logit -inf) add nothing."""
    p = torch.softmax(teacher_logits / temperature, dim=1)
    q_log = torch.log_softmax(student_logits / temperature, dim=1)
    return (torch.xlogy(p, p) - p * q_log).sum(dim=1).mean()


class StochasticTeacherUnlearner:
    """Makes M_u from M_d without D_f. `make_model()` builds an untrained network of M_d's
    architecture (the stochastic teacher M_s is one, seeded by `config.seed`)."""

    def __init__(self, original: nn.Module, make_model: Callable[[], nn.Module], config: UnlearnConfig = UnlearnConfig()):
        self.original = original.eval()
        self.make_model = make_model
        self.config = config

    def unlearn(self, forget_inputs: torch.Tensor, retain_inputs: torch.Tensor, retain_labels: torch.Tensor,
                forget_classes: list[int] = (), progress: bool = True) -> tuple[nn.Module, dict]:
        """(M_u in eval mode, history with the loss and seconds of each stage). `forget_classes`:
        the classes of a class request, masked out of M_d's outputs in reconstruction."""
        generator = torch.Generator().manual_seed(self.config.seed)
        torch.manual_seed(self.config.seed)
        stochastic = self.make_model().eval()
        model = copy.deepcopy(self.original)
        history = {"erase": [], "reconstruct": []}
        erase = torch.optim.Adam(model.parameters(), lr=self.config.erase_lr)
        for epoch in range(self.config.erase_epochs):
            history["erase"].append(self._epoch(model, erase, forget_inputs, None, stochastic, generator,
                                                progress, f"erase {epoch + 1}"))
        reconstruct = torch.optim.Adam(model.parameters(), lr=self.config.reconstruct_lr)
        steps = self.config.reconstruct_epochs * -(-len(retain_inputs) // self.config.batch_size)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            reconstruct, (lambda step: 1 - step / steps) if self.config.reconstruct_anneal else (lambda step: 1.0))
        for epoch in range(self.config.reconstruct_epochs):
            history["reconstruct"].append(self._epoch(model, reconstruct, retain_inputs, retain_labels, self.original,
                                                      generator, progress, f"reconstruct {epoch + 1}",
                                                      masked=list(forget_classes), schedule=schedule))
        return model.eval(), history

    def _epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, inputs: torch.Tensor,
               labels: torch.Tensor | None, guide: nn.Module, generator: torch.Generator, progress: bool,
               description: str, masked: list[int] = (),
               schedule: torch.optim.lr_scheduler.LRScheduler | None = None) -> dict:
        """One shuffled pass. Erasure (labels None): KL to the stochastic teacher. Reconstruction:
        cross-entropy on the labels plus alpha times the KL to the original model, whose `masked`
        classes get no probability."""
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(inputs), generator=generator)
        total, seen = 0.0, 0
        for start in tqdm(range(0, len(order), self.config.batch_size), desc=description, unit="batch",
                          leave=False, disable=not progress):
            index = order[start : start + self.config.batch_size]
            batch = to_float(inputs[index])
            with torch.no_grad():
                guide_logits = guide(batch)
                if masked:
                    guide_logits[:, list(masked)] = -torch.inf
            logits = model(batch)
            loss = _kl(guide_logits, logits, self.config.temperature)
            if labels is not None:
                loss = nn.functional.cross_entropy(logits, labels[index]) + self.config.alpha * loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            total += loss.item() * len(index)
            seen += len(index)
        return {"loss": total / max(seen, 1), "examples": seen, "seconds": time.perf_counter() - started}
