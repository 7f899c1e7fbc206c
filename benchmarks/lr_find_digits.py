"""The learning-rate finder's suggestion against the default learning rate on digits, over seeds.

For train.seed 0..4 (the model's initial weights, dropout and shuffling; the split stays seed 0):
examples/digits.yaml as written (Adam, lr 0.001) and the same with train.optimizer.lr: find (the
range test on that seed's model, then training with its suggestion). Prints each test accuracy, the
suggestions and the means: one test row of 270 is 0.0037, so one seed decides little.

    python benchmarks/lr_find_digits.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainwright.configure import load_config
from trainwright.recipes.supervised import train

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits.yaml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    quiet = Console(quiet=True)
    default, found, lrs = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            a = train(load_config(EXAMPLE, [f"train.seed={seed}"]), runs_dir=tmp, name=f"default-{seed}", console=quiet)
            b = train(load_config(EXAMPLE, [f"train.seed={seed}", "train.optimizer.lr=find"]), runs_dir=tmp,
                      name=f"found-{seed}", console=quiet)
            default.append(a.metrics["test"]["accuracy"])
            found.append(b.metrics["test"]["accuracy"])
            lrs.append(b.config.train.optimizer.lr)
            print(f"seed {seed}: lr 0.001 -> test accuracy {default[-1]:.4f}; lr-find suggestion {lrs[-1]:g} -> {found[-1]:.4f}",
                  flush=True)
    print(f"mean test accuracy over {args.seeds} seeds: lr 0.001 {statistics.fmean(default):.4f}, "
          f"lr-find {statistics.fmean(found):.4f} (suggestions {min(lrs):g} to {max(lrs):g})")


if __name__ == "__main__":
    main()
