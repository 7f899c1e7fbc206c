"""Training-time overhead of trainwright against a plain hand-written PyTorch loop.

Both train the same MLP (64-256-256-10, ReLU) on the same digits tensors (trainwright's own
data stage prepares them once), with the same batch size (64), epochs (30), optimizer (Adam,
lr 1e-3) and seed, and both validate once per epoch (loss and accuracy), as any careful loop
does. trainwright's time is its ``train_seconds`` (the whole fit: steps, validation, history
and a checkpoint every epoch); data loading and the final evaluation are outside both timings.

Runs alternate (hand, trainwright, hand, ...) ``--repeats`` times and the medians are compared,
so a slow moment on the machine hits both sides. Prints one line per run and ends with
``overhead trainwright/hand-written = X.XX``.

    python benchmarks/overhead.py [--repeats 5] [--epochs 30]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from rich.console import Console
from torch import nn
from torch.nn import functional as F

import trainwright as tw
from trainwright.data.prepare import prepare_data

HIDDEN = [256, 256]
BATCH = 64
LR = 1e-3


def config(epochs: int) -> dict:
    return {
        "data": {"source": "digits"},
        "model": {"type": "mlp", "hidden": HIDDEN, "activation": "relu", "init": "torch"},
        "train": {
            "epochs": epochs, "batch_size": BATCH, "seed": 0, "device": "cpu",
            "optimizer": {"name": "adam", "lr": LR},
            "early_stopping": {"enabled": False},  # both sides run every epoch
        },
    }


def hand_written(data, epochs: int) -> float:
    """The loop a practitioner writes by hand: tensors in memory, slices, Adam, per-epoch validation."""
    torch.manual_seed(0)
    x, y, xv, yv = data.x_train, data.y_train, data.x_val, data.y_val
    layers, width = [], x.shape[1]
    for size in HIDDEN:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    model = nn.Sequential(*layers, nn.Linear(width, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=generator)
        xs, ys = x[perm], y[perm]
        total = torch.zeros(())
        for i in range(0, len(x), BATCH):
            loss = F.cross_entropy(model(xs[i : i + BATCH]), ys[i : i + BATCH])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(xs[i : i + BATCH])
        model.eval()
        with torch.no_grad():
            out = model(xv)
            val_loss, val_acc = F.cross_entropy(out, yv).item(), (out.argmax(1) == yv).float().mean().item()
        train_loss = (total / len(x)).item()
    assert train_loss == train_loss and val_loss == val_loss and 0 <= val_acc <= 1
    return time.perf_counter() - started


def through_trainwright(epochs: int, runs_dir: str) -> float:
    run = tw.train(config(epochs), runs_dir=runs_dir, console=Console(quiet=True))
    return run.metrics["train_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()

    data = prepare_data(tw.load_config(config(args.epochs)).data)
    print(f"digits: {len(data.x_train)} training rows, MLP 64-{'-'.join(map(str, HIDDEN))}-10, batch {BATCH}, "
          f"{args.epochs} epochs, Adam; torch {torch.__version__}, {torch.get_num_threads()} threads")
    hand_written(data, 2), through_trainwright(2, tempfile.mkdtemp())  # warm-up: allocator, kernels, imports
    hand, ours = [], []
    with tempfile.TemporaryDirectory() as runs_dir:
        for i in range(args.repeats):
            hand.append(hand_written(data, args.epochs))
            ours.append(through_trainwright(args.epochs, runs_dir))
            print(f"run {i + 1}: hand-written {hand[-1]:.3f} s, trainwright {ours[-1]:.3f} s")
    h, o = statistics.median(hand), statistics.median(ours)
    print(f"median: hand-written {h:.3f} s, trainwright {o:.3f} s")
    print(f"overhead trainwright/hand-written = {o / h:.2f}")


if __name__ == "__main__":
    main()
