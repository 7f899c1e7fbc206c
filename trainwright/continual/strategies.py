"""Continual-learning strategies: what each adds to a plain supervised step.

A strategy never owns a loop. The loop that trains a task calls four hooks:

- ``begin_task(model, task, scenario)``: before a task (after the head is widened for its classes);
- ``extra_rows(rows, generator)``: old rows to append to the batch (replay), or None;
- ``extra_loss(model, x, logits)``: a term added to the cross-entropy (EWC, LwF), or 0;
- ``end_task(model, task, scenario)``: what to keep once a task is learned (buffer, Fisher, old model).

One step, for any strategy:

    extra = strategy.extra_rows(len(xb), generator)
    if extra is not None:
        xb, yb = torch.cat([xb, extra[0]]), torch.cat([yb, extra[1]])
    logits = model(xb)
    loss = F.cross_entropy(restrict(logits, scenario.train_mask(yb, logits.shape[1])), yb)
    loss = loss + strategy.extra_loss(model, xb, logits)

``joint`` is the offline upper bound: no extra terms, trained once on every task's rows together
(``scenarios.joint_task``) instead of task after task.
"""

from __future__ import annotations

import copy
from typing import Protocol

import torch
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.nn import functional as F

from trainwright.config.continual import ContinualConfig
from trainwright.continual.buffer import ReplayBuffer
from trainwright.continual.scenarios import Scenario, Task, restrict
from trainwright.errors import TrainwrightError


class Naive:
    """Plain fine-tuning on each new task: the reference for forgetting."""

    name = "naive"

    def begin_task(self, model: nn.Module, task: Task, scenario: Scenario) -> None:
        return None

    def extra_rows(self, rows: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor] | None:
        return None

    def extra_loss(self, model: nn.Module, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor | float:
        return 0.0

    def end_task(self, model: nn.Module, task: Task, scenario: Scenario) -> None:
        return None


class Joint(Naive):
    """The offline upper bound: the same step, trained once on all tasks' rows (``joint_task``)."""

    name = "joint"


class Replay:
    """Experience replay: each batch of new rows gets buffered old rows beside it.

    ``batch_size`` old rows per batch, or by default rows x (classes in the buffer / classes in the task).
    """

    name = "replay"

    def __init__(self, buffer: ReplayBuffer, batch_size: int | None = None):
        self.buffer, self.batch_size = buffer, batch_size
        self.ratio = 1.0  # replayed rows per new row when batch_size is not set

    def begin_task(self, model: nn.Module, task: Task, scenario: Scenario) -> None:
        # Class-balanced batches: as many rows per buffered class as the new batch has per new class, so
        # every class seen weighs the same in the loss (van de Ven et al. 2020 weight the replayed loss by
        # (t - 1) / t for the same reason); without it the newest classes win most ties.
        old_classes = len(self.buffer.y.unique()) if len(self.buffer) else 0
        self.ratio = old_classes / len(task.classes)

    def extra_rows(self, rows: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor] | None:
        if not len(self.buffer):
            return None
        return self.buffer.sample(self.batch_size or max(1, round(rows * self.ratio)), generator)

    def extra_loss(self, model: nn.Module, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor | float:
        return 0.0

    def end_task(self, model: nn.Module, task: Task, scenario: Scenario) -> None:
        self.buffer.add(task.x_train, task.y_train)


def output_width(model: nn.Module, x: torch.Tensor) -> int:
    """The number of outputs of ``model`` (one row through it in eval mode, then its mode restored)."""
    was_training = model.training
    with torch.no_grad():
        width = model.eval()(x[:1]).shape[1]
    model.train(was_training)
    return width


def diagonal_fisher(model: nn.Module, x: torch.Tensor, allowed: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                    chunk: int = 32) -> dict[str, torch.Tensor]:
    """The diagonal Fisher information of ``model`` on rows x (N, *features), {parameter name: tensor of its shape}.

    Without ``labels``: E_x sum_c p(c|x) (d log p(c|x) / d theta)^2, the exact expectation over
    the model's own predictive distribution (every class, weighted by its probability). With
    ``labels`` (N,): E_x (d log p(label|x) / d theta)^2, for labels sampled from the model (a
    one-draw estimate of the same) or the true ones (the "empirical Fisher"); C times cheaper.
    ``allowed`` (N, C) bool masks each row's logits (task-IL). Per-row gradients come from
    ``torch.func`` (vmap over rows), not a Python loop over rows.

    Example:
        >>> fisher = diagonal_fisher(nn.Linear(4, 3), torch.randn(10, 4))
        >>> fisher["weight"].shape
        torch.Size([3, 4])
    """
    was_training = model.training
    model.eval()  # dropout off, batch-norm statistics fixed
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    buffers = dict(model.named_buffers())

    def log_prob_of(params: dict, row: torch.Tensor, mask: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (params, buffers), (row.unsqueeze(0),)).squeeze(0)  # (C,)
        return torch.log_softmax(logits.masked_fill(~mask, float("-inf")), dim=0).gather(0, label.unsqueeze(0)).squeeze(0)

    per_row_grad = vmap(grad(log_prob_of), in_dims=(None, 0, 0, 0))  # {name: (B, *shape)}
    fisher = {name: torch.zeros_like(p) for name, p in params.items()}
    width = output_width(model, x)
    masks = torch.ones(len(x), width, dtype=torch.bool, device=x.device) if allowed is None else allowed.to(x.device)
    for start in range(0, len(x), chunk):
        xb, mb = x[start : start + chunk], masks[start : start + chunk]
        if labels is not None:
            weighted = [(labels[start : start + chunk].to(x.device), None)]
        else:  # every class in turn (a loop over classes, not rows), weighted by p(c|x)
            with torch.no_grad():
                p = torch.softmax(restrict(functional_call(model, (params, buffers), (xb,)), mb), dim=1)  # (B, C)
            weighted = [(torch.full((len(xb),), c, device=x.device), p[:, c]) for c in range(width)]
        for yb, weight in weighted:
            for name, g in per_row_grad(params, xb, mb, yb).items():  # g: (B, *shape), finite also for masked classes
                fisher[name] += g.square().sum(0) if weight is None else torch.tensordot(weight, g.square(), dims=1)
    model.train(was_training)
    return {name: f / len(x) for name, f in fisher.items()}


def _old_slice(current: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """The leading block of ``current`` with ``old``'s shape: a widened head's old rows."""
    return current[tuple(slice(0, size) for size in old.shape)]


class EWC:
    """Elastic weight consolidation (Kirkpatrick et al. 2017), online form (Schwarz et al. 2018, gamma = 1).

    After each task the diagonal Fisher of that task is added to the running sum and the weights
    are stored; the penalty is strength / 2 * sum F (theta - theta_old)^2 over the old weights
    (a widened head's new rows are free).
    """

    name = "ewc"

    def __init__(self, strength: float = 1000.0, fisher_samples: int = 1000, seed: int = 0):
        self.strength, self.fisher_samples, self.seed = strength, fisher_samples, seed
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}

    def begin_task(self, model: nn.Module, task: Task, scenario: Scenario) -> None:
        return None

    def extra_rows(self, rows: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor] | None:
        return None

    def extra_loss(self, model: nn.Module, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor | float:
        return self.penalty(model)

    def penalty(self, model: nn.Module) -> torch.Tensor | float:
        """strength / 2 * sum F (theta - theta_old)^2; 0 before the first task ends."""
        if not self.fisher:
            return 0.0
        total = 0.0
        for name, p in model.named_parameters():
            if name in self.fisher:
                total = total + (self.fisher[name] * (_old_slice(p, self.anchor[name]) - self.anchor[name]).square()).sum()
        return self.strength / 2 * total

    def end_task(self, model: nn.Module, task: Task, scenario: Scenario) -> None:
        generator = torch.Generator().manual_seed(self.seed + task.index)
        rows = torch.randperm(len(task.y_train), generator=generator)[: self.fisher_samples].to(task.y_train.device)
        x, y = task.x_train[rows], task.y_train[rows]
        fisher = diagonal_fisher(model, x, scenario.train_mask(y, output_width(model, x)))
        for name, f in fisher.items():
            if name in self.fisher:  # the earlier tasks' sum, padded with zeros where the head grew
                _old_slice(f, self.fisher[name]).add_(self.fisher[name])
            self.fisher[name] = f
        self.anchor = {name: p.detach().clone() for name, p in model.named_parameters() if name in fisher}


class LwF:
    """Learning without forgetting (Li & Hoiem 2016): the old model's outputs on the new batch as soft targets.

    The loss adds weight * T^2 * KL(softmax(old / T) || softmax(new / T)) over the old classes: one
    group of every old class in class-IL, one group per old task in task-IL (each task's own head).
    """

    name = "lwf"

    def __init__(self, temperature: float = 2.0, weight: float = 1.0):
        self.temperature, self.weight = temperature, weight
        self.old: nn.Module | None = None
        self.groups: list[torch.Tensor] = []

    def begin_task(self, model: nn.Module, task: Task, scenario: Scenario) -> None:
        return None

    def extra_rows(self, rows: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor] | None:
        return None

    def extra_loss(self, model: nn.Module, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor | float:
        if self.old is None:
            return 0.0
        t = self.temperature
        with torch.no_grad():
            old = self.old(x)  # (B, old classes)
        loss = 0.0
        for group in self.groups:
            group = group.to(logits.device)
            soft = F.softmax(old[:, group] / t, dim=1)
            loss = loss + F.kl_div(F.log_softmax(logits[:, group] / t, dim=1), soft, reduction="batchmean") * t**2
        return self.weight * loss

    def end_task(self, model: nn.Module, task: Task, scenario: Scenario) -> None:
        self.old = copy.deepcopy(model).eval().requires_grad_(False)
        seen = [t for t in scenario.tasks if 0 <= t.index <= task.index]
        if scenario.kind == "task_incremental":
            self.groups = [t.classes for t in seen]
        else:
            self.groups = [torch.arange(scenario.head_size(task.index))]


class Strategy(Protocol):
    """What the loop calls; any object with these four hooks is a strategy (see the module docstring)."""

    name: str

    def begin_task(self, model: nn.Module, task: Task, scenario: Scenario) -> None: ...

    def extra_rows(self, rows: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor] | None: ...

    def extra_loss(self, model: nn.Module, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor | float: ...

    def end_task(self, model: nn.Module, task: Task, scenario: Scenario) -> None: ...


def build_strategy(cfg: ContinualConfig, seed: int = 0) -> Strategy:
    """The strategy ``cfg.strategy`` with its settings.

    Example:
        >>> build_strategy(ContinualConfig(strategy="ewc")).name
        'ewc'
    """
    if cfg.strategy == "replay":
        return Replay(ReplayBuffer(cfg.replay.size, cfg.replay.share, cfg.replay.seed), cfg.replay.batch_size)
    if cfg.strategy == "ewc":
        return EWC(cfg.ewc.strength, cfg.ewc.fisher_samples, seed)
    if cfg.strategy == "lwf":
        return LwF(cfg.lwf.temperature, cfg.lwf.weight)
    return Joint() if cfg.strategy == "joint" else Naive()


def widen_head(model: nn.Module, classes: int, *, from_binary: bool = False) -> nn.Module:
    """The model with its output layer (its last ``nn.Linear``) grown to ``classes`` rows; old rows kept.

    New rows get ``nn.Linear``'s usual initialization (from torch's global generator). With
    ``from_binary`` a one-logit binary head z first becomes two logits [0, z], which give the same
    probabilities under softmax as z under sigmoid. Returns the model (a new object only when the
    model is the Linear itself); build the optimizer after widening.

    Example:
        >>> model = widen_head(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), 5)
        >>> model[2].weight.shape
        torch.Size([5, 8])
    """
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise TrainwrightError(f"{type(model).__name__} has no nn.Linear output layer to widen for new classes")
    name, head = linears[-1]
    old = head.weight.detach()  # (C_old, H)
    old_bias = head.bias.detach() if head.bias is not None else None
    if from_binary:
        if head.out_features != 1:
            raise TrainwrightError(f"from_binary expects a one-logit head, this one has {head.out_features} outputs")
        old = torch.cat([torch.zeros_like(old), old])
        old_bias = None if old_bias is None else torch.cat([torch.zeros_like(old_bias), old_bias])
    if len(old) >= classes and not from_binary:
        return model
    new = nn.Linear(head.in_features, max(classes, len(old)), bias=head.bias is not None, device=old.device, dtype=old.dtype)
    with torch.no_grad():
        new.weight[: len(old)] = old
        if old_bias is not None:
            new.bias[: len(old)] = old_bias
    if not name:
        return new
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, new)
    return model


def narrow_to_binary(model: nn.Module) -> nn.Module:
    """The inverse of ``widen_head(..., from_binary=True)``: two logits [a, b] become the one logit b - a.

    softmax([a, b])[1] = sigmoid(b - a), so a binary model trained with two logits predicts exactly
    the same probabilities through a one-logit head (what a binary run saves and ``predict`` reads).

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 2))
        >>> x = torch.randn(3, 4)
        >>> two = torch.softmax(model(x), 1)[:, 1]
        >>> torch.allclose(torch.sigmoid(narrow_to_binary(model)(x)).squeeze(1), two)
        True
    """
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears or linears[-1][1].out_features != 2:
        raise TrainwrightError("narrow_to_binary expects an output layer of two logits")
    name, head = linears[-1]
    new = nn.Linear(head.in_features, 1, bias=head.bias is not None, device=head.weight.device, dtype=head.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(head.weight[1:] - head.weight[:1])
        if head.bias is not None:
            new.bias.copy_(head.bias[1:] - head.bias[:1])
    if not name:
        return new
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, new)
    return model
