"""Distillation under augmentation: does a small CNN student learn from the default CNN on augmented digits?

The teacher is ``examples/digits_images.yaml`` (the default CNN, rotations and one-pixel shifts). The
student is a small CNN (``--widths``, default 16-32, one conv per stage) trained on the same augmented
batches, once distilled from the teacher (which runs on each augmented batch, in inference mode) and
once from scratch on the labels alone, with the same seed and budget, for seeds 0-2. Target: the
distilled student's mean test accuracy recovers at least half of the gap between the student from
scratch and the teacher: (distilled - scratch) / (teacher - scratch) >= 0.5.

Each seed runs in its own process (``--jobs``, one thread each, niced), through ``trainwright.distill``
with one seed. Training runs on the CPU and takes minutes. The test split has 270 images: one image is
0.0037, so the script prints the seeds' spread beside the means. The last line is
``recovered X.XX of the teacher-scratch gap``.

    python benchmarks/distill_augmented.py [--seeds 3] [--jobs 3] [--epochs 100] [--widths 16,32]
        [--temperature 4] [--alpha 0.7] [--mixup 0] [--teacher RUN] [--runs-dir runs/bench-distill]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

import trainwright as tw
from trainwright.config import DistillConfig
from trainwright.recipes.distill import distill

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def student_config(args: argparse.Namespace, seed: int) -> dict:
    return {
        "model": {"type": "cnn", "widths": [int(w) for w in args.widths.split(",")], "convs": 1, "dropout": 0.0},
        "train": {"epochs": args.epochs, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.003}, "seed": seed,
                  "schedule": {"name": args.schedule}, "early_stopping": {"enabled": False}},
        "distill": {"temperature": args.temperature, "alpha": args.alpha, "mixup": args.mixup},
    }


def one_seed(args: argparse.Namespace) -> None:
    """The child process: distilled and scratch students for one seed; prints distill.json's path."""
    import torch

    torch.set_num_threads(1)
    runs_dir = Path(args.runs_dir) / f"seed-{args.seed}"
    run = distill(args.teacher, student_config(args, args.seed), runs_dir=runs_dir, name="student", console=Console(quiet=True))
    print(run.dir / "distill.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--jobs", type=int, default=3, help="seeds trained at once, one process (and thread) each")
    parser.add_argument("--epochs", type=int, default=100, help="the students' fixed budget (no early stopping)")
    parser.add_argument("--widths", default="16,32", help="the student CNN's channels per stage")
    parser.add_argument("--schedule", default="cosine", help="the students' learning-rate schedule")
    parser.add_argument("--temperature", type=float, default=DistillConfig().temperature, help="default: the recipe's")
    parser.add_argument("--alpha", type=float, default=DistillConfig().alpha, help="default: the recipe's")
    parser.add_argument("--mixup", type=float, default=DistillConfig().mixup, help="function matching (distill.mixup)")
    parser.add_argument("--teacher", default=None, help="an existing teacher run (default: train examples/digits_images.yaml)")
    parser.add_argument("--runs-dir", default=None, help="keep the run directories here (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=None, help=argparse.SUPPRESS)  # a child process: this seed only
    args = parser.parse_args()
    if args.seed is not None:
        one_seed(args)
        return

    with tempfile.TemporaryDirectory() as scratch:
        runs_dir = Path(args.runs_dir or scratch)
        started = time.perf_counter()
        if args.teacher is None:
            teacher = tw.train(EXAMPLES / "digits_images.yaml", runs_dir=runs_dir, name="teacher", console=Console(quiet=True))
            teacher_dir, teacher_metrics = teacher.dir, teacher.metrics
        else:
            teacher_dir = Path(args.teacher)
            teacher_metrics = json.loads((teacher_dir / "metrics.json").read_text(encoding="utf-8"))
        teacher_accuracy = teacher_metrics["test"]["accuracy"]
        print(f"teacher (default CNN, {teacher_metrics['epochs']} epochs): test accuracy {teacher_accuracy:.4f}, "
              f"{(time.perf_counter() - started) / 60:.1f} min", flush=True)
        started = time.perf_counter()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        forwarded = [f"--{key.replace('_', '-')}={getattr(args, key)}"
                     for key in ("epochs", "widths", "schedule", "temperature", "alpha", "mixup")]
        results, pending = [], list(range(args.seeds))
        while pending:
            batch, pending = pending[: args.jobs], pending[args.jobs :]
            children = [
                subprocess.Popen(
                    [sys.executable, __file__, *forwarded, f"--teacher={teacher_dir}", f"--runs-dir={runs_dir}",
                     f"--seed={seed}"],
                    stdout=subprocess.PIPE, text=True, env=env,
                )
                for seed in batch
            ]
            for child in children:
                out, _ = child.communicate()
                if child.returncode != 0:
                    sys.exit(f"a seed's process failed (exit {child.returncode})")
                results.append(json.loads(Path(out.strip().splitlines()[-1]).read_text(encoding="utf-8")))
    first = results[0]
    print(f"students: small CNN {args.widths} ({first['distilled']['parameters']:,} parameters against the teacher's "
          f"{first['teacher']['parameters']:,}), {args.epochs} epochs ({args.schedule}), T = {args.temperature}, "
          f"alpha = {args.alpha}, mixup = {args.mixup}; {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    print(f"the teacher's soft targets at T = {args.temperature}: mean top probability "
          f"{first['teacher_top_probability']:.3f} on the training split (1: the labels themselves)")
    seeds = [r["seeds"][0] for r in results]
    for s in seeds:
        print(f"seed {s['seed']}: teacher {teacher_accuracy:.4f}, distilled {s['distilled']:.4f}, scratch {s['scratch']:.4f}"
              f" ({(s['distilled'] - s['scratch']) * 270:+.0f} test images)")
    distilled = statistics.fmean(s["distilled"] for s in seeds)
    from_scratch = statistics.fmean(s["scratch"] for s in seeds)
    print(f"mean test accuracy: teacher {teacher_accuracy:.4f}, distilled {distilled:.4f}, scratch {from_scratch:.4f}")
    if len(seeds) > 1:  # the noise: one test image is 1/270; the seeds' spread says how far a mean moves
        gains = [s["distilled"] - s["scratch"] for s in seeds]
        print(f"spread over seeds (standard deviation): distilled {statistics.stdev(s['distilled'] for s in seeds):.4f}, "
              f"scratch {statistics.stdev(s['scratch'] for s in seeds):.4f}; distilled - scratch per seed "
              f"{' '.join(f'{g:+.4f}' for g in gains)}, mean {statistics.fmean(gains):+.4f} "
              f"(standard error {statistics.stdev(gains) / len(gains) ** 0.5:.4f}; one test image = {1 / 270:.4f})")
    gap = teacher_accuracy - from_scratch
    if gap <= 0:
        print("the student from scratch matches the teacher: there is no gap to recover")
        return
    print(f"recovered {(distilled - from_scratch) / gap:.2f} of the teacher-scratch gap (target 0.50)")


if __name__ == "__main__":
    main()
