"""Continual learning on split-digits: five tasks of two digits, every strategy, class-IL and task-IL.

The quality bars of issue 18, measured over seeds 0-2 with the same MLP (64-256-256-head, ReLU),
Adam (lr 1e-3), batch 32 and 20 epochs per task for every strategy (joint: 20 epochs over all
tasks' rows at once, the same number of rows seen):

- class-incremental: naive and EWC forget almost everything (final average accuracy near 20%,
  Hsu et al. 2018: 19.7% and 19.8% on split MNIST), replay with a buffer of at most 10% of the old
  training rows reaches >= 85%; the joint upper bound beside;
- task-incremental: every strategy but naive keeps >= 95% average accuracy.

Prints the accuracy matrix of the first seed for each strategy, then the table (mean over seeds,
per-seed values, forgetting, backward transfer) and the bars; exits 1 if a bar fails.

``--recipe`` measures the same through ``trainwright continual examples/continual-digits.yaml`` (the
command's data stage, preprocessing, loop and callbacks; seed s sets train.seed and data.split.seed),
each run training its joint upper bound beside.

    nice -n 19 python benchmarks/continual_digits.py [--seeds 0 1 2] [--epochs 20] [--share 0.1] [--recipe]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from torch import nn

from trainwright.config.continual import ContinualConfig
from trainwright.configure import load_config
from trainwright.continual import measures
from trainwright.continual.loop import run_sequence
from trainwright.continual.scenarios import split_digits
from trainwright.continual.strategies import Replay, build_strategy
from trainwright.recipes.continual import run_continual

STRATEGIES = ("naive", "ewc", "lwf", "replay", "joint")
EXAMPLE = Path(__file__).parents[1] / "examples" / "continual-digits.yaml"
SCENARIOS = ("class_incremental", "task_incremental")


def mlp(classes: int, hidden: int = 256) -> nn.Module:
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, classes))


def show_matrix(label: str, r: torch.Tensor) -> None:
    print(f"\n{label}   R[i, j]: accuracy on task j (columns) after training on task i (rows)")
    print("            " + "".join(f"  task {j + 1}" for j in range(r.shape[1])))
    for i, row in enumerate(r.tolist()):
        name = "joint (all)" if r.shape[0] == 1 else f"after {i + 1}"
        print(f"  {name:<10}" + "".join("       -" if math.isnan(v) else f"  {v:6.3f}" for v in row))


def through_recipe(kind: str, name: str, seed: int, args, results: dict) -> dict:
    """One run of the command on the example config; its joint row is recorded as the joint strategy's result."""
    if name == "joint":  # every recipe run trains joint beside: take the naive run's
        return results[(kind, "naive")][args.seeds.index(seed)]["joint"]
    overrides = [f"continual.strategy={name}", f"continual.scenario={kind}", f"continual.replay.share={args.share}",
                 f"train.seed={seed}", f"data.split.seed={seed}", f"train.epochs={args.epochs}"]
    if args.ewc_strength is not None:
        overrides.append(f"continual.ewc.strength={args.ewc_strength}")
    run = run_continual(load_config(EXAMPLE, overrides), runs_dir=tempfile.mkdtemp(prefix="continual-digits-"),
                        console=Console(quiet=True))
    result = json.loads((run.dir / "continual.json").read_text())
    if seed == args.seeds[0]:
        show_matrix(f"{kind}, {name}, seed {seed} (trainwright continual)", torch.tensor(
            [[math.nan if v is None else v for v in row] for row in result["matrix"]]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20, help="epochs per task")
    parser.add_argument("--share", type=float, default=0.1, help="replay buffer as a share of the old training rows")
    parser.add_argument("--ewc-strength", type=float, default=None, help="EWC lambda (default: the config's)")
    parser.add_argument("--recipe", action="store_true", help="through `trainwright continual` and its example config")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()

    results: dict[tuple[str, str], list[dict]] = {}
    buffer_note = ""
    for kind in SCENARIOS:
        for name in STRATEGIES:
            raw = {"strategy": name, "scenario": kind, "replay": {"share": args.share}}
            if args.ewc_strength is not None:
                raw["ewc"] = {"strength": args.ewc_strength}
            cfg = ContinualConfig.model_validate(raw)
            for seed in args.seeds:
                if args.recipe:
                    results.setdefault((kind, name), []).append(through_recipe(kind, name, seed, args, results))
                    continue
                scenario = split_digits(seed, kind=kind)
                strategy = build_strategy(cfg, seed=seed)
                r = run_sequence(scenario, strategy, mlp, epochs=args.epochs, batch_size=32, lr=1e-3, seed=seed)
                results.setdefault((kind, name), []).append(measures.summary(r) if r.shape[0] > 1 else
                                                            {"average_accuracy": measures.average_accuracy(r)})
                if seed == args.seeds[0]:
                    show_matrix(f"{kind}, {name}, seed {seed}", r)
                if isinstance(strategy, Replay) and kind == "class_incremental" and seed == args.seeds[0]:
                    old = sum(len(t.y_train) for t in scenario.tasks[:-1])
                    rows = strategy.buffer.capacity(old)
                    buffer_note = (f"replay buffer while learning task 5: {rows} rows = {rows / old:.1%} of the {old} "
                                   "old training rows")
            print(f"[{time.perf_counter() - started:5.0f} s] {kind} {name} done", flush=True)

    if args.recipe:
        buffer_note = "through trainwright continual examples/continual-digits.yaml"
    print(f"\nsplit-digits, 5 tasks x 2 digits, seeds {args.seeds}, {args.epochs} epochs per task; {buffer_note}")
    print(f"{'scenario':<18} {'strategy':<8} {'final avg acc':<17} {'per seed':<20} {'forgetting':>10} {'BWT':>8}")
    for (kind, name), rows in results.items():
        acc = [row["average_accuracy"] for row in rows]
        spread = f" +- {statistics.stdev(acc):.3f}" if len(acc) > 1 else ""
        forget = "-" if name == "joint" else f"{statistics.mean(row['forgetting'] for row in rows):.3f}"
        bwt = "-" if name == "joint" else f"{statistics.mean(row['backward_transfer'] for row in rows):+.3f}"
        seeds = " ".join(f"{a:.3f}" for a in acc)
        print(f"{kind:<18} {name:<8} {statistics.mean(acc):>7.3f}{spread:<10} {seeds:<20} {forget:>10} {bwt:>8}")

    def mean_acc(kind: str, name: str) -> float:
        return statistics.mean(row["average_accuracy"] for row in results[(kind, name)])

    bars = [
        ("class-IL naive near 20% (<= 0.25)", mean_acc("class_incremental", "naive") <= 0.25),
        ("class-IL EWC near 20% (<= 0.25)", mean_acc("class_incremental", "ewc") <= 0.25),
        (f"class-IL replay (buffer {args.share:.0%} of the old rows) >= 0.85", mean_acc("class_incremental", "replay") >= 0.85
         and args.share <= 0.1),
        *[(f"task-IL {name} >= 0.95", mean_acc("task_incremental", name) >= 0.95) for name in STRATEGIES if name != "naive"],
    ]
    print(f"\njoint upper bound: class-IL {mean_acc('class_incremental', 'joint'):.3f}, "
          f"task-IL {mean_acc('task_incremental', 'joint'):.3f}")
    for label, ok in bars:
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    print(f"{time.perf_counter() - started:.0f} s")
    sys.exit(0 if all(ok for _, ok in bars) else 1)


if __name__ == "__main__":
    main()
