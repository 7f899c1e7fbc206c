"""What every benchmark workload shares: the hand-written loop it is compared with, and alternation.

The hand-written loop is what a practitioner writes by hand: tensors in memory, one gather per epoch
and slices, the optimizer, and a validation pass (loss and accuracy) once per epoch, as any careful
loop does. trainwright's time is its ``train_seconds`` (the whole fit: steps, validation, history, a
checkpoint every epoch); data loading and the final evaluation are outside both timings.

Runs alternate (hand, trainwright, hand, ...) and the ratio reported is the median over the pairs
of trainwright's time over the hand-written time just before it: a slow stretch on a shared machine
(this one swings by 10% from minute to minute) hits both sides of a pair, and the median drops the
pairs it split.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

import torch
from scipy.stats import quantile_test  # scikit-learn's dependency, so trainwright's
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
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=True)  # trainwright's Adam: torch's fused kernel
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
    assert math.isfinite(train_loss) and math.isfinite(val_loss) and 0 <= val_acc <= 1
    return time.perf_counter() - started


def alternate(hand: Callable[[], float], ours: Callable[[], float], repeats: int) -> tuple[list[float], list[float]]:
    """Seconds of ``repeats`` alternating runs of each side; prints one line per pair."""
    hands, ourss = [], []
    for i in range(repeats):
        hands.append(hand())
        ourss.append(ours())
        print(
            f"run {i + 1}: hand-written {hands[-1]:.3f} s, trainwright {ourss[-1]:.3f} s, ratio {ourss[-1] / hands[-1]:.3f}",
            flush=True,
        )
    print(f"median: hand-written {statistics.median(hands):.3f} s, trainwright {statistics.median(ourss):.3f} s")
    return hands, ourss


def median_interval(values: list[float], level: float = 0.9) -> tuple[float, float]:
    """A distribution-free interval for the median of ``values`` (covering it with at least ``level`` probability).

    scipy's ``quantile_test``: two order statistics chosen by the binomial distribution, no assumption on how the
    machine's noise is distributed, only that the pairs are independent. With 5 values it is their range (94%);
    with 41, the 15th to the 27th of them (94%). Too few values for the level: their range.
    """
    interval = quantile_test(values, q=statistics.median(values), p=0.5).confidence_interval(level)
    if math.isnan(interval.low) or math.isnan(interval.high):
        return min(values), max(values)
    return float(interval.low), float(interval.high)


def ratio_line(label: str, hands: list[float], ours: list[float]) -> str:
    """``label = X.XX (median of N pairs; 90% interval A-B)``: the claim, and how far the machine's noise lets it move."""
    ratios = [o / h for h, o in zip(hands, ours)]
    low, high = median_interval(ratios)
    return f"{label} = {statistics.median(ratios):.2f} (median of {len(ratios)} pairs; 90% interval {low:.2f}-{high:.2f})"


def frameworks(data, hidden: list[int], batch: int, epochs: int, lr: float, repeats: int = 3) -> dict[str, float]:
    """Median seconds of the same fit through Lightning and Keras 3 (torch backend), where installed.

    Same MLP (built by ``mlp`` from the same seed), data tensors, batch, Adam, epochs and a
    validation pass per epoch; ``pip install lightning keras`` to see them. Fits only: no
    checkpoints, loggers or progress bars on either, which is their fastest setting.
    """
    import importlib.util
    import os

    found: dict[str, Callable[[], float]] = {}
    if importlib.util.find_spec("lightning") is not None:
        found["Lightning"] = lambda: _lightning(data, hidden, batch, epochs, lr)
    if importlib.util.find_spec("keras") is not None:
        os.environ.setdefault("KERAS_BACKEND", "torch")
        found["Keras 3 (torch backend)"] = lambda: _keras(data, hidden, batch, epochs, lr)
    if not found:
        print("Lightning and Keras are not installed: pip install lightning keras to time the same fit through them")
    seconds = {}
    for name, run in found.items():
        run()  # warm-up
        seconds[name] = statistics.median(run() for _ in range(repeats))
    return seconds


def _lightning(data, hidden, batch, epochs, lr) -> float:
    import logging
    import warnings

    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)  # its banner lines, not timings
    warnings.filterwarnings("ignore", module="lightning")

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.net = mlp(data.x_train.shape[1], hidden, int(data.y_train.max()) + 1)

        def training_step(self, b, _):
            return F.cross_entropy(self.net(b[0]), b[1])

        def validation_step(self, b, _):
            out = self.net(b[0])
            self.log_dict({"val_loss": F.cross_entropy(out, b[1]), "val_acc": (out.argmax(1) == b[1]).float().mean()})

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=lr)

    train = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=batch, shuffle=True)
    val = DataLoader(TensorDataset(data.x_val, data.y_val), batch_size=len(data.x_val))
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    started = time.perf_counter()
    trainer.fit(Module(), train, val)
    return time.perf_counter() - started


def _keras(data, hidden, batch, epochs, lr) -> float:
    import keras

    keras.utils.set_random_seed(0)
    layers = [keras.layers.Dense(width, activation="relu") for width in hidden]
    model = keras.Sequential([keras.Input((data.x_train.shape[1],)), *layers, keras.layers.Dense(int(data.y_train.max()) + 1)])
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x, y, xv, yv = (t.numpy() for t in (data.x_train, data.y_train, data.x_val, data.y_val))
    started = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=epochs, validation_data=(xv, yv), verbose=0)
    return time.perf_counter() - started
