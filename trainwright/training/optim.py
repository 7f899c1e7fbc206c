"""Optimizers and learning-rate schedules built from the typed config.

Penalties: ``weight_decay`` is the optimizer's own (decoupled for AdamW); ``train.l1`` and
``train.l2`` add explicit penalties on weight matrices (not biases or norm parameters) to the
loss, which is what the textbook L1/L2 regularization means.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.optim import lr_scheduler

from trainwright.config import OptimizerConfig, ScheduleConfig


def build_optimizer(cfg: OptimizerConfig, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """Example: ``build_optimizer(OptimizerConfig(name="sgd", lr=0.1, momentum=0.9), model.parameters())``."""
    params = list(params)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


class Schedule:
    """A learning-rate schedule that knows when it steps: after each batch or after each epoch.

    ``plateau`` steps on the validation loss; the others on the clock. Linear warmup (from lr/10)
    runs first when ``warmup_epochs`` > 0.
    """

    def __init__(self, cfg: ScheduleConfig, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int):
        self.name = cfg.name
        self.per_step = cfg.name == "one_cycle"
        main_epochs = max(epochs - cfg.warmup_epochs, 1)
        if cfg.name == "one_cycle":
            # Each parameter group peaks in proportion to its own lr (a transferred backbone keeps its lower share).
            base = optimizer.param_groups[0]["lr"]
            peak = cfg.max_lr or 10 * base
            max_lr = [peak * group["lr"] / base for group in optimizer.param_groups]
            main = lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=epochs * steps_per_epoch)
        elif cfg.name == "plateau":
            main = lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg.gamma, patience=cfg.patience, min_lr=cfg.min_lr)
        elif cfg.name == "step":
            main = lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
        elif cfg.name == "exponential":
            main = lr_scheduler.ExponentialLR(optimizer, gamma=cfg.gamma)
        elif cfg.name == "cosine":
            main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=main_epochs, eta_min=cfg.min_lr)
        else:
            main = lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
        if cfg.warmup_epochs:
            warmup = lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=cfg.warmup_epochs)
            main = lr_scheduler.SequentialLR(optimizer, [warmup, main], milestones=[cfg.warmup_epochs])
        self.scheduler = main

    def step_batch(self) -> None:
        if self.per_step:
            self.scheduler.step()

    def step_epoch(self, val_loss: float) -> None:
        if self.name == "plateau":
            self.scheduler.step(val_loss)
        elif not self.per_step:
            self.scheduler.step()

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(state)


def weight_penalty(model: nn.Module, l1: float, l2: float) -> torch.Tensor | float:
    """``l1 * sum|w| + l2 * sum w^2`` over weight matrices/kernels (ndim > 1); 0.0 when both are off."""
    if not (l1 or l2):
        return 0.0
    weights = [p for p in model.parameters() if p.ndim > 1 and p.requires_grad]
    penalty = 0.0
    if l1:
        penalty = penalty + l1 * sum(w.abs().sum() for w in weights)
    if l2:
        penalty = penalty + l2 * sum(w.pow(2).sum() for w in weights)
    return penalty
