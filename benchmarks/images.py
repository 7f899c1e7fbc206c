"""Image workload: a CNN epoch on a shapes folder through trainwright against a hand-written loop.

Both sides train the same CNN (trainwright's ``cnn`` family, built once per run with the same
seed) on the same images, prepared once by trainwright's data stage from PNG files on disk,
with the same batch size, optimizer and shuffling, and both validate once per epoch (loss and
accuracy). The hand-written loop gets the easiest possible data: float32 tensors normalized once,
before timing. trainwright keeps its uint8 tensors and normalizes each batch inside the model,
and runs its callbacks (history, checkpoint, gradient norms, early stopping, progress), as
``trainwright train`` does (``fit`` from training/loop.py, via the supervised recipe's ``build_fit``).
Each side's time is its whole fit, callbacks included; the per-epoch times are printed too.

Runs alternate (hand, trainwright, hand, ...) ``--repeats`` times and the ratio is the median of
the pairs' ratios (``harness.ratio_line``), so a slow moment on a shared machine hits both sides. On a machine shared with other
work, ``OMP_NUM_THREADS=1`` gives far steadier epoch times than torch's default thread count. A decode counter (not a timer)
shows that no epoch decodes an image: every image is decoded once, while the data are prepared.

    python benchmarks/images.py [--folder data/shapes] [--per-class 1000] [--epochs 2] [--repeats 5] [--augment]

Ends with ``epoch time trainwright/hand-written = X.XX`` and the decode counts.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import torch
from harness import ratio_line
from rich.console import Console
from torch.nn import functional as F

from trainwright.configure import load_config
from trainwright.data.decode import decode_count
from trainwright.data.prepare import prepare_data, with_input_stage
from trainwright.data.shapes import make_shapes
from trainwright.models.registry import build_model
from trainwright.recipes.setup import build_fit
from trainwright.rundir import RunDir
from trainwright.training.callbacks import Callback
from trainwright.training.loop import fit

QUIET = Console(quiet=True)
AUGMENT = [{"name": "hflip"}, {"name": "vflip"}, {"name": "rotation", "degrees": 180}, {"name": "pad_crop", "padding": 2}]


def config(folder: Path, epochs: int, augment: bool) -> dict:
    return {
        "data": {"source": str(folder), "image": {"size": 32}, "augment": AUGMENT if augment else []},
        "model": {"type": "cnn", "widths": [16, 32, 64]},
        "train": {"epochs": epochs, "batch_size": 64, "seed": 0, "device": "cpu", "optimizer": {"name": "adam", "lr": 1e-3},
                  "early_stopping": {"enabled": False}},
    }


class DecodesPerEpoch(Callback):
    def __init__(self) -> None:
        self.counts: list[int] = []

    def on_epoch_end(self, fit, logs) -> None:
        self.counts.append(decode_count())


def through_trainwright(cfg, data, runs_dir: str, name: str) -> tuple[float, list[float], list[int]]:
    """Seconds of the whole fit, each epoch's own seconds, and the decode count after each epoch."""
    torch.manual_seed(cfg.train.seed)
    module = with_input_stage(data.preprocessor, build_model(cfg.model, data.input_shape, data.preprocessor.n_outputs))
    run = build_fit(cfg, module, data, torch.device("cpu"), RunDir.create(runs_dir, name), QUIET)
    decodes = DecodesPerEpoch()
    run.callbacks.append(decodes)
    started = time.perf_counter()
    fit(run)
    return time.perf_counter() - started, [row["seconds"] for row in run.history], decodes.counts


def hand_written(cfg, data, epochs: int) -> list[float]:
    """The loop a practitioner writes: float tensors in memory, a shuffled slice per step, Adam,
    per-epoch validation; the same augmentation module when asked."""
    mean = torch.tensor(data.preprocessor.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.preprocessor.std).view(1, -1, 1, 1)
    augment = data.train_transform
    # (N, C, H, W) float, normalized once outside the timing; uint8 when augmenting (kornia takes 0..1 pixels).
    x = data.x_train if augment is not None else (data.x_train.float() / 255 - mean) / std
    xv = (data.x_val.float() / 255 - mean) / std
    y, yv = data.y_train, data.y_val
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, data.input_shape, data.preprocessor.n_outputs)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.optimizer.lr, fused=True)  # as trainwright's
    generator = torch.Generator().manual_seed(0)
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        perm = torch.randperm(len(x), generator=generator)
        xs, ys = x[perm], y[perm]
        total = torch.zeros(())
        for i in range(0, len(x), 64):
            xb, yb = xs[i : i + 64], ys[i : i + 64]
            if augment is not None:
                xb = (augment(xb) - mean) / std
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(xb)
        model.eval()
        with torch.no_grad():
            out = torch.cat([model(xv[i : i + 256]) for i in range(0, len(xv), 256)])
            val_loss, val_acc = F.cross_entropy(out, yv).item(), (out.argmax(1) == yv).float().mean().item()
        train_loss = (total / len(x)).item()
        seconds.append(time.perf_counter() - started)
    assert math.isfinite(train_loss) and math.isfinite(val_loss) and 0 <= val_acc <= 1
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="a shapes folder (default: generate one in a temporary folder)")
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--augment", action="store_true", help="both sides augment training batches (flips, rotation, pad-crop)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder
        if folder is None:
            folder = Path(scratch) / "shapes"
            make_shapes(folder, per_class=args.per_class, size=32)
        cfg = load_config(config(folder, args.epochs, args.augment))
        before = decode_count()
        data = prepare_data(cfg.data)
        prepared = decode_count() - before
        n = len(data.x_train)
        print(f"{folder}: {prepared} images decoded while preparing the data; training on {n} ({data.input_shape}), "
              f"CNN {cfg.model.widths}, batch 64, {args.epochs} epochs, augment {'on' if args.augment else 'off'}; "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        (
            hand_written(cfg, data, 1),
            through_trainwright(
                cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 1})}), data, scratch, "warm-up"
            ),
        )
        hand, ours, decodes = [], [], []
        for i in range(args.repeats):
            epochs = hand_written(cfg, data, args.epochs)
            hand.append(sum(epochs))
            total, seconds, counts = through_trainwright(cfg, data, scratch, f"run-{i}")
            ours.append(total)
            decodes.append([count - before for count in counts])
            print(
                f"run {i + 1}: hand-written {' '.join(f'{s:.2f}' for s in epochs)} s/epoch, "
                f"trainwright {' '.join(f'{s:.2f}' for s in seconds)} s/epoch ({total:.2f} s with the callbacks' epoch-end work)",
                flush=True,
            )
    print(f"median fit: hand-written {statistics.median(hand):.3f} s, trainwright {statistics.median(ours):.3f} s")
    print(ratio_line("epoch time trainwright/hand-written", hand, ours))
    per_epoch = [[b - a for a, b in zip([prepared, *run], run)] for run in decodes]
    print(f"images decoded: {prepared} while preparing the data, then per epoch {per_epoch} (every epoch reads the cache)")


if __name__ == "__main__":
    main()
