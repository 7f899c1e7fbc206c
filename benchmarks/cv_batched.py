"""Many small fits as one: 10-fold cross-validation of the digits MLP, batched against one after another.

Times, in one process on one thread, each fit the supervised loop as ``train`` runs it (early
stopping, history, checkpoint, gradient statistics) or the batched fit as ``cv`` runs it (early
stopping and history per member):

- the 10 folds batched (``training/batched.py``), the whole fit until the last fold has stopped;
- one fit: each fold alone, one after another (10 timings; "one fit" is their median);
- the batched fit again (this machine is shared: the two batched runs bracket the sequential ones,
  and their mean is compared);

then checks, with dropout 0 (with dropout each member draws its own masks), that every batched fold
equals its fit alone within floating-point tolerance. Target: batched <= 4 x one fit.

Times are CPU seconds of this process (``time.process_time``; one thread, so CPU time is the time the
work took): this machine is shared, and wall-clock time there measures the neighbours as much as the
fit. Wall-clock seconds are printed beside.

    python benchmarks/cv_batched.py [--folds 10] [--config examples/digits.yaml]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainwright.configure import load_config
from trainwright.data.folds import cv_folds
from trainwright.data.prepare import load_data
from trainwright.recipes.setup import build_fit, build_module, start_run
from trainwright.rundir import RunDir
from trainwright.training.batched import BatchedFit
from trainwright.training.callbacks import EarlyStopping, HistoryCSV
from trainwright.training.loop import fit

QUIET = Console(quiet=True)
CPU = torch.device("cpu")


def folds(config: str, k: int, overrides: list[str]):
    cfg = load_config(config, overrides)
    rows = load_data(cfg.data)
    return cfg, [rows.prepare(f.split) for f in cv_folds(rows, cfg.data, k)]


walls: list[float] = []  # wall-clock seconds of every fit, in order


def one_by_one(cfg, datas, where: Path) -> tuple[list[float], list]:
    seconds, results = [], []
    for i, data in enumerate(datas):
        module = build_module(cfg, data)
        run_dir = start_run(cfg, data, module, CPU, runs_dir=where, name=f"alone-{i}")
        run = build_fit(cfg, module, data, CPU, run_dir, QUIET)
        started, wall = time.process_time(), time.perf_counter()
        fit(run)
        seconds.append(time.process_time() - started)
        walls.append(time.perf_counter() - wall)
        results.append((module, run))
    return seconds, results


def batched(cfg, datas, where: Path) -> tuple[float, BatchedFit]:
    modules = [build_module(cfg, data) for data in datas]
    run_dirs = [RunDir.create(where, f"member-{i}") for i in range(len(datas))]
    fit_ = BatchedFit.build(
        cfg.train, modules, [(d.x_train, d.y_train, d.x_val, d.y_val) for d in datas], task=datas[0].task,
        loss="cross_entropy", device=CPU,
        callbacks=lambda k: [EarlyStopping(cfg.train.early_stopping), HistoryCSV(run_dirs[k])],
    )
    started, wall = time.process_time(), time.perf_counter()
    fit_.fit()
    walls.append(time.perf_counter() - wall)
    return time.process_time() - started, fit_


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "examples" / "digits.yaml"))
    parser.add_argument("--folds", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)

    cfg, datas = folds(args.config, args.folds, [])
    with tempfile.TemporaryDirectory() as tmp:
        before, _ = batched(cfg, datas, Path(tmp) / "before")
        alone, runs = one_by_one(cfg, datas, Path(tmp))
        after, members = batched(cfg, datas, Path(tmp) / "after")
    together = (before + after) / 2
    one = statistics.median(alone)
    epochs = [len(run.history) for _, run in runs]
    print(f"{args.folds} folds of {Path(args.config).name} (dropout {cfg.model.dropout}), 1 thread, CPU seconds "
          f"(wall-clock in order: {', '.join(f'{w:.1f}' for w in walls)})")
    print(f"one fit: median {one:.2f} s (folds {min(alone):.2f} to {max(alone):.2f} s, {min(epochs)} to {max(epochs)} epochs)")
    print(f"one after another: {sum(alone):.2f} s = {sum(alone) / one:.1f} x one fit")
    print(f"batched: {together:.2f} s (runs {before:.2f} and {after:.2f} s) = {together / one:.2f} x one fit (target <= 4); "
          f"{max(len(m.history) for m in members.members)} epochs until the last fold stopped")
    accuracy = [m.history[m.epoch - 1]["val_accuracy"] if m.history else 0.0 for m in members.members]
    print(f"mean final validation accuracy: batched {statistics.fmean(accuracy):.4f}, alone "
          f"{statistics.fmean(run.history[-1]['val_accuracy'] for _, run in runs):.4f}")

    # Equality, without dropout: every member's weights and history against its fit alone.
    cfg0, datas0 = folds(args.config, args.folds, ["model.dropout=0", "train.epochs=15"])
    with tempfile.TemporaryDirectory() as tmp:
        _, runs0 = one_by_one(cfg0, datas0, Path(tmp))
        _, members0 = batched(cfg0, datas0, Path(tmp))
    weights = max((a - b).abs().max().item() for (module, _), m in zip(runs0, members0.members)
                  for a, b in zip(module.state_dict().values(), m.model.state_dict().values()))
    losses = max(abs(a["val_loss"] - b["val_loss"]) for (_, run), m in zip(runs0, members0.members)
                 for a, b in zip(run.history, m.history))
    print(f"equality (dropout 0, 15 epochs, {args.folds} folds): largest weight difference {weights:.2e}, "
          f"largest validation-loss difference {losses:.2e}")


if __name__ == "__main__":
    main()
