"""The unlearning methods the stochastic teacher is measured against (issue 6), each starting from a
copy of the trained model M_d and given the same two epochs' budget as the stochastic teacher
(one over D_r for fine-tuning and NegGrad+; bad teaching makes one pass, as its paper).

- Fine-tune: cross-entropy on D_r only; forgetting comes from catastrophic forgetting alone.
- NegGrad+ (Kurmanji et al. 2023, "Towards unbounded machine unlearning"): each step descends
  beta * CE on a D_r batch and ascends (1 - beta) * CE on a D_f batch.
- Bad teaching (Chundawat et al. 2023, "Can bad teaching induce forgetting?"): one pass over D_f
  and a share of D_r; the student follows the competent teacher (M_d) on D_r and an incompetent
  teacher (a randomly initialised network) on D_f, by KL at temperature tau.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from teacher._training import restores_global_rng, to_float
from teacher._unlearn import _kl


@dataclass(frozen=True)
class BaselineConfig:
    finetune_epochs: int = 2
    finetune_lr: float = 1e-3
    neggrad_epochs: int = 2
    neggrad_beta: float = 0.95  # NegGrad+'s weight on the retained data's loss
    neggrad_lr: float = 1e-3
    bad_teacher_retain_share: float = 0.3  # the paper's 30 % of D_r
    bad_teacher_temperature: float = 1.0
    bad_teacher_lr: float = 1e-4
    batch_size: int = 128
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _batches(count: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(count, generator=generator)
    for start in range(0, count, batch_size):
        yield order[start:start + batch_size]


@restores_global_rng
def finetune(original: nn.Module, retain_inputs: torch.Tensor, retain_labels: torch.Tensor,
             config: BaselineConfig = BaselineConfig()) -> tuple[nn.Module, float]:
    """(model, seconds): M_d trained further on D_r alone."""
    started, generator = time.perf_counter(), torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)  # dropout: the result must not depend on what ran before
    model = copy.deepcopy(original).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=config.finetune_lr)
    for _ in range(config.finetune_epochs):
        for index in _batches(len(retain_inputs), config.batch_size, generator):
            loss = F.cross_entropy(model(to_float(retain_inputs[index])), retain_labels[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    return model.eval(), time.perf_counter() - started


@restores_global_rng
def neggrad_plus(original: nn.Module, forget_inputs: torch.Tensor, forget_labels: torch.Tensor,
                 retain_inputs: torch.Tensor, retain_labels: torch.Tensor,
                 config: BaselineConfig = BaselineConfig()) -> tuple[nn.Module, float]:
    """(model, seconds): passes over D_r, each step paired with a D_f batch whose loss is ascended."""
    started, generator = time.perf_counter(), torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)  # dropout
    model = copy.deepcopy(original).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=config.neggrad_lr)
    beta = config.neggrad_beta
    for _ in range(config.neggrad_epochs):
        forget_order = torch.randint(len(forget_inputs), (len(retain_inputs),), generator=generator)
        for step, index in enumerate(_batches(len(retain_inputs), config.batch_size, generator)):
            forget_index = forget_order[step * config.batch_size:(step + 1) * config.batch_size][:len(index)]
            retain_loss = F.cross_entropy(model(to_float(retain_inputs[index])), retain_labels[index])
            forget_loss = F.cross_entropy(model(to_float(forget_inputs[forget_index])), forget_labels[forget_index])
            loss = beta * retain_loss - (1 - beta) * forget_loss
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    return model.eval(), time.perf_counter() - started


@restores_global_rng
def bad_teacher(original: nn.Module, make_model: Callable[[], nn.Module], forget_inputs: torch.Tensor,
                retain_inputs: torch.Tensor, config: BaselineConfig = BaselineConfig()) -> tuple[nn.Module, float]:
    """(model, seconds): one pass over D_f and a random share of D_r, each example distilled from the
    incompetent teacher (D_f) or the competent one (D_r)."""
    started, generator = time.perf_counter(), torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    incompetent = make_model().eval()
    competent = original.eval()
    model = copy.deepcopy(original).train()
    retained = torch.randperm(len(retain_inputs), generator=generator)[
        : int(len(retain_inputs) * config.bad_teacher_retain_share)]
    inputs = torch.cat([forget_inputs, retain_inputs[retained]])
    is_forget = torch.cat([torch.ones(len(forget_inputs), dtype=torch.bool), torch.zeros(len(retained), dtype=torch.bool)])
    optimiser = torch.optim.Adam(model.parameters(), lr=config.bad_teacher_lr)
    for index in _batches(len(inputs), config.batch_size, generator):
        batch, forget = to_float(inputs[index]), is_forget[index].unsqueeze(1)
        with torch.no_grad():
            guide = torch.where(forget, incompetent(batch), competent(batch))
        loss = _kl(guide, model(batch), config.bad_teacher_temperature)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return model.eval(), time.perf_counter() - started
