"""Pruning against no pruning: the same 30-trial search of examples/digits.yaml (same space, same TPE seed),
once with the median pruner and once without; prints each search's best validation accuracy, the
config as written (trial 0), and the epochs trained in all. Target: pruning trains at least 30% fewer epochs.

    python benchmarks/tune_pruning.py [--trials 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainwright.configure import load_config
from trainwright.recipes.tune import tune

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits.yaml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--config", default=str(EXAMPLE))
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pruner in ("median", "none"):
            cfg = load_config(args.config, [f"tune.pruner={pruner}"])
            results[pruner] = tune(cfg, trials=args.trials, runs_dir=tmp, name=f"pruner-{pruner}", console=Console(quiet=True))
    for pruner, r in results.items():
        pruned = sum(t["state"] == "pruned" for t in r["all"])
        print(f"pruner {pruner:6}: best val_accuracy {r['best']['value']:.4f} (trial {r['best']['number']}), the config as "
              f"written {r['from_config']['value']:.4f}; {r['epochs']} epochs in {args.trials} trials ({pruned} pruned)")
    saved = 1 - results["median"]["epochs"] / results["none"]["epochs"]
    print(f"pruning trained {saved:.0%} fewer epochs (target: at least 30%)")


if __name__ == "__main__":
    main()
