"""`trainwright continue` on a table run that meets a new class: what each strategy keeps of the old test accuracy.

The old run: sklearn's digits as a table (64 pixel columns), classes 0-8 only (`data.classes`),
trained as `trainwright train --data digits` does (MLP, Adam, early stopping), on split seeds 0-2.
The new data: the 180 rows of digit 9, a CSV with the same columns. Each strategy continues the old
run through the same code as the command, under two protocols:

- `early stopping` (the run's own train: section): the update stops when the mean over the old and
  the new validation split of the loss stops improving, and keeps its best epoch;
- `fixed budget` (train.early_stopping.enabled=false): every epoch of train.epochs, as continual-
  learning papers train each task.

Prints, per strategy and protocol, the old test accuracy before -> after (mean change in points over
the seeds, each seed's change), the new test accuracy, and the issue's bar: replay keeps the old
test accuracy within 3 points (mean over seeds, every seed within 4). Exits 1 if a bar fails.

    nice -n 19 python benchmarks/continue_table.py [--seeds 0 1 2] [--shares 0.1 0.2 0.3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console

import trainwright as tw
from trainwright.data.builtin import BUILTINS
from trainwright.recipes.continue_run import continue_run

QUIET = Console(quiet=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--shares", type=float, nargs="+", default=[0.1, 0.2, 0.3], help="replay buffer shares of the old rows")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="continue-table-"))
    table = BUILTINS["digits"].load()
    new_data = work / "digits-9.csv"
    table[table["digit"] == 9].to_csv(new_data, index=False)

    settings = [("naive", []), ("ewc", []), ("lwf", []),
                *[(f"replay {share:.0%}", [f"continual.replay.share={share}"]) for share in args.shares], ("joint", [])]
    protocols = {"early stopping": [], "fixed budget": ["train.early_stopping.enabled=false"]}
    results: dict[tuple[str, str], list[dict]] = {}
    for seed in args.seeds:
        raw = {"data": {"source": "digits", "classes": list(range(9)), "split": {"seed": seed}}, "train": {"seed": seed}}
        old = tw.train(raw, runs_dir=work / "runs", name=f"digits-0-8-seed{seed}", console=QUIET)
        print(f"[{time.perf_counter() - started:4.0f} s] seed {seed}: old run test accuracy "
              f"{old.metrics['test']['accuracy']:.4f}", flush=True)
        for protocol, extra in protocols.items():
            for label, overrides in settings:
                run = continue_run(old.dir, new_data, strategy=label.split()[0], overrides=[*overrides, *extra],
                                   runs_dir=work / "runs", name=f"seed{seed}-{label.replace(' ', '').replace('%', '')}-"
                                   f"{protocol.replace(' ', '-')}", console=QUIET)
                record = json.loads((run.dir / "continual.json").read_text())
                record["epochs"] = run.metrics["epochs"]
                results.setdefault((protocol, label), []).append(record)
            print(f"[{time.perf_counter() - started:4.0f} s] seed {seed}: {protocol} done", flush=True)

    print(f"\ndigits 0-8 -> + digit 9 (180 new rows), seeds {args.seeds}; old test split 243 rows (0.41 points each), "
          "new test split 27 rows")
    print(f"{'protocol':<15} {'strategy':<11} {'old test: before -> after':<27} {'change, points (per seed)':<30} "
          f"{'new test':>8} {'epochs':>7}")
    for (protocol, label), rows in results.items():
        before = statistics.mean(r["old_test_accuracy"]["before"] for r in rows)
        after = statistics.mean(r["old_test_accuracy"]["after"] for r in rows)
        changes = [100 * r["old_test_accuracy"]["change"] for r in rows]
        per_seed = " ".join(f"{c:+.1f}" for c in changes)
        new = statistics.mean(r["new_test_accuracy"]["after"] for r in rows)
        epochs = statistics.mean(r["epochs"] for r in rows)
        print(f"{protocol:<15} {label:<11} {before:.4f} -> {after:.4f}          {statistics.mean(changes):+6.1f} ({per_seed})"
              f"{'':<{max(0, 22 - len(per_seed))}} {new:8.4f} {epochs:7.0f}")

    def mean_change(protocol: str, label: str) -> float:
        return statistics.mean(100 * r["old_test_accuracy"]["change"] for r in results[(protocol, label)])

    bars = []
    for protocol in protocols:
        best = max((f"replay {share:.0%}" for share in args.shares), key=lambda label: mean_change(protocol, label))
        rows = results[(protocol, best)]
        ok = mean_change(protocol, best) >= -3 and all(100 * r["old_test_accuracy"]["change"] >= -4 for r in rows)
        label = (f"{protocol}: {best} keeps the old test accuracy within 3 points ({mean_change(protocol, best):+.1f}); "
                 f"naive loses {-mean_change(protocol, 'naive'):.1f}")
        bars.append((label, ok))
    print()
    for label, ok in bars:
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    print(f"{time.perf_counter() - started:.0f} s")
    sys.exit(0 if all(ok for _, ok in bars) else 1)


if __name__ == "__main__":
    main()
