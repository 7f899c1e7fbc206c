"""Training-time overhead of trainwright against a plain hand-written PyTorch loop.

Both train the same MLP (64-256-256-10, ReLU) on the same digits tensors (trainwright's own
data stage prepares them once), with the same batch size (64), epochs (30), optimizer (Adam,
lr 1e-3) and seed, and both validate once per epoch (see ``harness.py``). An overhead-bound
workload: a step is ~30 MFLOP (about a millisecond), so per-operator costs set the pace.

Runs alternate (hand, trainwright, hand, ...) ``--repeats`` times; the ratio is the median of the
pairs' ratios, so a slow moment on the machine hits both sides (``harness.ratio_line``). Prints one line
per run and ends with ``overhead trainwright/hand-written = X.XX (median of N pairs; 90% interval A-B)``:
the interval is how far the machine's noise lets the median move (on our shared 2-core machine the same
hand-written fit takes 0.47 to 0.93 s from one minute to the next; with 15 pairs the readings of one
version ranged 0.99-1.07, hence 41 pairs, about a minute and a half). Where Lightning or Keras 3 is
installed, the same fit through them is timed and printed before it. The other workloads: ``compute_bound.py`` and
``images.py`` (a CNN epoch on a shapes folder).

With ``--track``, trainwright's runs are also logged to MLflow (a SQLite store in a temporary folder)
and TensorBoard (``track: {mlflow: true, tensorboard: true}``), and the ratio is the same claim with
tracking on: logging never slows the training run (MLflow works in a process of its own).

    python benchmarks/overhead.py [--repeats 41] [--epochs 30] [--track]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import torch
from harness import alternate, frameworks, hand_written, mlp, ratio_line
from rich.console import Console

import trainwright as tw
from trainwright.data.prepare import prepare_data

HIDDEN = [256, 256]
BATCH = 64
LR = 1e-3


def config(epochs: int, track: bool = False) -> dict:
    return {
        "data": {"source": "digits"},
        "model": {"type": "mlp", "hidden": HIDDEN, "activation": "relu", "dropout": 0.0, "init": "torch"},  # = harness.mlp
        "train": {
            "epochs": epochs, "batch_size": BATCH, "seed": 0, "device": "cpu",
            "optimizer": {"name": "adam", "lr": LR},
            "early_stopping": {"enabled": False},  # both sides run every epoch
        },
        "evaluate": {"baseline": False},  # outside the timing either way
        "track": {"mlflow": track, "tensorboard": track},
    }


def hand(data, epochs: int) -> float:
    torch.manual_seed(0)
    return hand_written(mlp(data.x_train.shape[1], HIDDEN, 10), data, BATCH, epochs, LR)


def through_trainwright(epochs: int, runs_dir: str, track: bool = False) -> float:
    run = tw.train(config(epochs, track), runs_dir=runs_dir, console=Console(quiet=True))
    return run.metrics["train_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=41)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--track", action="store_true", help="log trainwright's runs to MLflow and TensorBoard")
    args = parser.parse_args()

    data = prepare_data(tw.load_config(config(args.epochs)).data)
    print(f"digits: {len(data.x_train)} training rows, MLP 64-{'-'.join(map(str, HIDDEN))}-10, batch {BATCH}, "
          f"{args.epochs} epochs, Adam; torch {torch.__version__}, {torch.get_num_threads()} threads"
          + ("; trainwright logs to MLflow and TensorBoard" if args.track else ""))
    with tempfile.TemporaryDirectory() as runs_dir:
        hand(data, 2), through_trainwright(2, runs_dir, args.track)  # warm-up: allocator, kernels, imports (the MLflow store)
        hands, ours = alternate(
            lambda: hand(data, args.epochs), lambda: through_trainwright(args.epochs, runs_dir, args.track), args.repeats
        )
    h = statistics.median(hands)
    for name, seconds in frameworks(data, HIDDEN, BATCH, args.epochs, LR).items():
        print(f"{name}: {seconds:.3f} s, {seconds / h:.2f} x hand-written (median of 3)")
    print(ratio_line("overhead trainwright/hand-written", hands, ours))


if __name__ == "__main__":
    main()
