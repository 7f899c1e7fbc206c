"""A tiny real training loop that drives callbacks through the training-state protocol (any recipe's
loop calls the same hooks in the same order), for callback tests."""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.nn import functional as F


class LoopState:
    """What a recipe's loop hands its callbacks: epochs completed, history, named modules and optimizers."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int = 0, history: list | None = None):
        self.epoch, self.history = epoch, list(history or [])
        self.modules, self.optimizers = {"model": model}, {"model": optimizer}
        self.stop_reason: str | None = None
        self.epoch_end_seconds: list[float] = []  # how long each callback's on_epoch_end took

    def request_stop(self, reason: str) -> None:
        self.stop_reason = reason


def regression(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 5, generator=generator)
    return x, x @ torch.randn(5, 1, generator=generator) + 0.1 * torch.randn(64, 1, generator=generator)


def run_loop(callbacks, model: nn.Module, epochs: int, state: LoopState | None = None, batches: int = 4) -> LoopState:
    """SGD on a small regression, ``batches`` steps an epoch, calling the hooks where a loop calls them."""
    x, y = regression()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = state.optimizers["model"] if state else torch.optim.SGD(trainable, lr=0.05)
    state = state or LoopState(model, optimizer)
    for callback in callbacks:
        callback.on_train_begin(state)
    size = len(x) // batches
    for _ in range(epochs):
        model.train()
        losses = []
        for b in range(batches):
            loss = F.mse_loss(model(x[b * size : (b + 1) * size]), y[b * size : (b + 1) * size])
            optimizer.zero_grad()
            loss.backward()
            for callback in callbacks:
                callback.on_after_backward(state)
            optimizer.step()
            for callback in callbacks:
                callback.on_batch_end(state)
            losses.append(loss.detach())
        model.eval()
        with torch.no_grad():
            val = F.mse_loss(model(x), y)
        state.epoch += 1
        logs = {"train_loss": float(torch.stack(losses).mean()), "val_loss": float(val), "lr": optimizer.param_groups[0]["lr"]}
        state.history.append(logs)
        for callback in callbacks:
            start = time.perf_counter()
            callback.on_epoch_end(state, logs)
            state.epoch_end_seconds.append(time.perf_counter() - start)
    for callback in callbacks:
        callback.on_train_end(state)
    return state


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1))

