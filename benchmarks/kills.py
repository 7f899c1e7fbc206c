"""Kill seeded digits runs at random moments, resume them, and compare with the uninterrupted run bit for bit.

Each trial starts ``trainwright train`` on digits (an MLP with dropout, batch 16, a checkpoint every
0.25 s, seed 0) and sends SIGKILL, SIGTERM or SIGINT at a random moment: the first trial in the
first second after its run directory appears; every fifth while a checkpoint is being written (its
temporary file is there, beside an earlier checkpoint); two in five at a random time after the run
directory appears (before, during or after training); two in five at a random time during training. Then ``trainwright train
--resume RUN`` brings the run to its end, and its weights, history (every column but the seconds)
and gradient norms must equal the uninterrupted run's, bit for bit.

The commands are the real CLI (``trainwright.cli.main``) in forked processes, so a trial does not
wait for torch to import: each run is its own process, killed by a real signal. Prints one line
per trial, the most training a SIGKILL lost (from the last checkpoint on disk to the kill, for
kills that landed while training ran), and ends with ``resumed bit-identically: N/20``.

    python benchmarks/kills.py [--trials 20] [--seed 0] [--epochs 12]
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported: forked children must not inherit a thread pool

import torch
from safetensors.torch import load_file

import trainwright.api  # noqa: F401 - the whole stack, imported once: every forked command starts warm
from trainwright import cli

INTERVAL = 0.25  # train.checkpoint_every, seconds


def arguments(runs: Path, epochs: int) -> list[str]:
    return [
        "train", "--data", "digits", "--runs-dir", str(runs),
        "--set", f"train.epochs={epochs}", "--set", "train.batch_size=16", "--set", "model.dropout=0.1",
        "--set", f"train.checkpoint_every={INTERVAL}s", "--set", "evaluate.baseline=false",
    ]


def command(argv: list[str], log: Path) -> None:
    """A forked child: ``trainwright ARGV`` exactly as the console script runs it, output to ``log``."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.argv = ["trainwright", *argv]
    cli.main()


def start(argv: list[str], log: Path) -> multiprocessing.Process:
    process = multiprocessing.get_context("fork").Process(target=command, args=(argv, log))
    process.start()
    return process


def run(argv: list[str], log: Path) -> int:
    process = start(argv, log)
    process.join()
    return process.exitcode


def outcome(run_dir: Path) -> dict:
    """What must match bit for bit: the weights, the history but its seconds, the gradient norms."""
    with open(run_dir / "history.csv", newline="") as handle:
        history = [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]
    gradients = json.loads((run_dir / "gradients.json").read_text())["epochs"]
    return {"weights": load_file(str(run_dir / "model.safetensors")), "history": history, "gradients": gradients}


def same(a: dict, b: dict) -> bool:
    wa, wb = a["weights"], b["weights"]
    weights = wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    return weights and a["history"] == b["history"] and a["gradients"] == b["gradients"]


def wait_for(path: Path, process: multiprocessing.Process, timeout: float = 600) -> bool:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if not process.is_alive() or time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def writing_checkpoint(folder: Path, process: multiprocessing.Process, timeout: float = 120) -> bool:
    """Wait until a checkpoint's temporary file exists beside an earlier checkpoint (a write is under way)."""
    deadline = time.monotonic() + timeout
    while process.is_alive() and time.monotonic() < deadline:
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            continue
        if "last.safetensors" in names and any(name.endswith(".tmp") for name in names):
            return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="seeds the moments and signals (not the training)")
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()
    draw = random.Random(args.seed)
    signals = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT]

    with tempfile.TemporaryDirectory() as tmp:
        runs, logs = Path(tmp) / "runs", Path(tmp) / "logs"
        logs.mkdir()
        started = time.monotonic()
        process = start([*arguments(runs, args.epochs), "--name", "whole"], logs / "whole.log")
        wait_for(runs / "whole", process)
        appeared = time.monotonic()
        wait_for(runs / "whole" / "checkpoints" / "last.safetensors", process)
        checkpointed = time.monotonic()
        process.join()
        assert process.exitcode == 0, (logs / "whole.log").read_text()[-2000:]
        span = time.monotonic() - appeared  # from the run directory to the end: where the kills land
        training = time.monotonic() - checkpointed  # from the first checkpoint to the end
        print(f"uninterrupted: {time.monotonic() - started:.1f} s ({span:.1f} s after its run directory appeared), "
              f"{args.epochs} epochs, checkpoint every {INTERVAL} s", flush=True)
        reference = outcome(runs / "whole")

        identical, lost = 0, []
        for trial in range(args.trials):
            sig = signals[trial % 3]
            name, log = f"cut{trial}", logs / f"cut{trial}.log"
            process = start([*arguments(runs, args.epochs), "--name", name], log)
            wait_for(runs / name, process)
            if trial == 0:
                moment = "in the first second"
                time.sleep(draw.uniform(0.0, 1.0))
            elif trial % 5 == 1:
                moment = "while a checkpoint was written"
                if not writing_checkpoint(runs / name / "checkpoints", process):
                    moment = "(no checkpoint write seen)"
            elif trial % 5 in (2, 3):
                delay = draw.uniform(0.0, span)
                moment = f"{delay:.2f} s after its run directory appeared"
                time.sleep(delay)
            else:
                wait_for(runs / name / "checkpoints" / "last.safetensors", process)
                delay = draw.uniform(0.0, training)
                moment = f"{delay:.2f} s after its first checkpoint"
                time.sleep(delay)
            killed_at = time.time()
            os.kill(process.pid, sig)
            process.join()
            checkpoint = runs / name / "checkpoints" / "last.safetensors"
            saved_at = checkpoint.stat().st_mtime if checkpoint.exists() else None
            resumes = 0
            while True:
                resumes += 1
                code = run(["train", "--resume", str(runs / name)], log)
                if code == 0 or resumes == 3:
                    break
            text = log.read_text()
            ok = code == 0 and same(reference, outcome(runs / name))
            identical += ok
            if sig == signal.SIGKILL and "its training had finished" not in text:
                since = killed_at - saved_at if saved_at is not None else None
                if since is not None:
                    lost.append(since)
            where = next((line.split(" ", 2)[2] for line in text.splitlines() if line.startswith("resuming ")), "")
            where = where or ("training had finished" if "its training had finished" in text else "?")
            print(f"trial {trial + 1}: {signal.Signals(sig).name} {moment} (exit {process.exitcode}); resumed {where}: "
                  f"{'bit-identical' if ok else 'DIFFERS (log: ' + str(log) + ')'}", flush=True)
            if not ok:
                print(text[-3000:])
        if lost:
            print(f"training lost to a SIGKILL: at most {max(lost):.2f} s (checkpoint every {INTERVAL} s), median "
                  f"{sorted(lost)[len(lost) // 2]:.2f} s over {len(lost)} kills that landed after a checkpoint")
        print(f"resumed bit-identically: {identical}/{args.trials}")


if __name__ == "__main__":
    main()
