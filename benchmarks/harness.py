"""What every benchmark workload shares: the hand-written loop it is compared with, and alternation.

The hand-written loop is what a practitioner writes by hand: tensors in memory, one gather per epoch
and slices, the optimizer, and a validation pass (loss and accuracy) once per epoch, as any careful
loop does. trainwright's time is its ``train_seconds`` (the whole fit: steps, validation, history, a
checkpoint every epoch); data loading and the final evaluation are outside both timings.

Runs alternate (hand, trainwright, hand, ...) and medians are compared, so a slow moment on a
shared machine hits both sides.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F


def mlp(inputs: int, hidden: list[int], outputs: int) -> nn.Sequential:
    """Linear -> ReLU per hidden width, then a linear head: trainwright's MLP with dropout 0 and torch's init."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(inputs, width), nn.ReLU()]
        inputs = width
    return nn.Sequential(*layers, nn.Linear(inputs, outputs))


def hand_written(model: nn.Module, data, batch: int, epochs: int, lr: float) -> float:
    """Train ``model`` on ``data.x_train`` (N, F) -> class indices with Adam; seconds of the whole fit."""
    x, y, xv, yv = data.x_train, data.y_train, data.x_val, data.y_val
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=generator)
        xs, ys = x[perm], y[perm]
        total = torch.zeros(())
        for i in range(0, len(x), batch):
            loss = F.cross_entropy(model(xs[i : i + batch]), ys[i : i + batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(xs[i : i + batch])
        model.eval()
        with torch.no_grad():
            out = model(xv)
            val_loss, val_acc = F.cross_entropy(out, yv).item(), (out.argmax(1) == yv).float().mean().item()
        train_loss = (total / len(x)).item()
    assert train_loss == train_loss and val_loss == val_loss and 0 <= val_acc <= 1
    return time.perf_counter() - started


def alternate(hand: Callable[[], float], ours: Callable[[], float], repeats: int) -> tuple[list[float], list[float]]:
    """Seconds of ``repeats`` alternating runs of each side; prints one line per pair."""
    hands, ourss = [], []
    for i in range(repeats):
        hands.append(hand())
        ourss.append(ours())
        print(f"run {i + 1}: hand-written {hands[-1]:.3f} s, trainwright {ourss[-1]:.3f} s", flush=True)
    print(f"median: hand-written {statistics.median(hands):.3f} s, trainwright {statistics.median(ourss):.3f} s")
    return hands, ourss
