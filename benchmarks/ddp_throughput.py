"""Data-parallel throughput: training samples per second on 1 and 2 CPU processes (and 1 GPU where present).

Each setting is one torchrun launch (loopback, a free port) of this file, which trains through
trainwright's real setup and loop (``recipes.setup.build_fit``, ``training.loop.fit``) with the
same global batch on any number of processes; rank 0 prints the median epoch's samples per second
(validation included, the first epoch left out as warm-up) and the time of one all-reduce of the
model's gradients, which is what data parallelism adds to every optimizer step.

Two workloads: the digits MLP (64-256-256-10, 86k parameters, batch 64; bound by per-operator
overheads) and a compute-bound MLP (512-1024-1024-10, 1.6M parameters, 8192 generated rows,
batch 512; bound by its matmuls). The CPU settings share out the machine's cores: 1 process with
all of them, 1 process with half (what each of 2 gets), 2 processes with half each.

    python benchmarks/ddp_throughput.py [--epochs 6]
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

import numpy as np
import pandas as pd
import torch
from rich.console import Console

from trainwright.configure import load_config
from trainwright.data.prepare import prepare_data
from trainwright.recipes.setup import build_fit, build_module
from trainwright.rundir import RunDir
from trainwright.training.distributed import Replicas
from trainwright.training.loop import fit

ROOT = Path(__file__).parents[1]
WORKLOADS = {
    "digits MLP": {"data": {"source": "digits"},
                   "model": {"type": "mlp", "hidden": [256, 256], "dropout": 0.0, "init": "torch"},
                   "train": {"batch_size": 64}},
    "compute-bound MLP": {"data": {"source": "PARQUET", "target": "label"},
                          "model": {"type": "mlp", "hidden": [1024, 1024], "dropout": 0.0, "init": "torch"},
                          "train": {"batch_size": 512}},
}


def write_data(directory: Path, rows: int = 8192, features: int = 512, classes: int = 10) -> Path:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, features), dtype=np.float32)
    labels = (x @ rng.standard_normal((features, classes), dtype=np.float32)).argmax(1)
    path = directory / "wide.parquet"
    pd.DataFrame(x, columns=[f"f{i}" for i in range(features)]).assign(label=labels).to_parquet(path, index=False)
    return path


def worker(workload: str, epochs: int, device: str, out: Path) -> None:
    """One setting, in each process torchrun started: train, then time the gradients' all-reduce."""
    replicas = Replicas.join(torch.device(device))
    spec = json.loads(json.dumps(WORKLOADS[workload]).replace("PARQUET", str(out / "wide.parquet")))
    spec["train"].update({"epochs": epochs, "device": device, "seed": 0, "checkpoint_every": "1h",
                          "early_stopping": {"enabled": False}})
    cfg = load_config(spec, ["evaluate.gradient_every=1000000"])
    data = prepare_data(cfg.data)
    place = replicas.device(torch.device(device))
    module = build_module(cfg, data).to(place)
    run_dir = RunDir.create(out / "runs", f"{workload.replace(' ', '-')}-{replicas.size}-{os.getpid()}")
    run = build_fit(cfg, module, data, place, run_dir, Console(quiet=True), replicas)
    fit(run)
    run_dir.unlock()
    epoch_seconds, steps = statistics.median(row["seconds"] for row in run.history[1:]), len(run.batches)
    del run  # it holds the DistributedDataParallel wrapper, which must go before the process group (Replicas.close)
    gradients = torch.zeros(sum(p.numel() for p in module.parameters()), device=place)
    reduce_seconds = 0.0
    if replicas.active:
        for _ in range(3):
            replicas.sum(gradients)  # warm-up
        started = time.perf_counter()
        for _ in range(20):
            replicas.sum(gradients)
        if place.type == "cuda":
            torch.cuda.synchronize()
        reduce_seconds = (time.perf_counter() - started) / 20
    if replicas.rank == 0:
        print("RESULT " + json.dumps({"samples_per_second": len(data.x_train) / epoch_seconds,
                                      "steps": steps, "epoch_seconds": epoch_seconds,
                                      "parameters": gradients.numel(), "reduce_seconds": reduce_seconds}), flush=True)
    replicas.close()


def launch(workload: str, processes: int, threads: int, device: str, epochs: int, out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes), "--rdzv-backend",
               "c10d", "--rdzv-endpoint", "localhost:0", __file__, "--worker", workload, "--epochs", str(epochs),
               "--device", device, "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        raise SystemExit(f"{workload} on {processes} process(es) failed:\n{result.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--worker")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.epochs, args.device, args.out)

    cores = os.cpu_count() or 1
    half = max(1, cores // 2)
    settings = [(1, cores, "cpu"), (1, half, "cpu"), (2, half, "cpu")]
    if torch.cuda.is_available():
        settings.append((1, half, "cuda"))
    print(f"{cores} CPU cores; torch {torch.__version__}; {args.epochs} epochs per setting, the first left out")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        write_data(out)
        for workload in WORKLOADS:
            base = None
            for processes, threads, device in settings:
                result = launch(workload, processes, threads, device, args.epochs, out)
                base = base or result["samples_per_second"]
                step_ms = result["epoch_seconds"] / result["steps"] * 1000
                reduce = f", all-reduce of {result['parameters'] * 4 / 1e6:.2f} MB: {result['reduce_seconds'] * 1e3:.2f} ms" \
                    if processes > 1 else ""
                where = f"{processes} process{'es' if processes > 1 else ''} x {threads} thread{'s' if threads > 1 else ''}" \
                    if device == "cpu" else f"1 process on {torch.cuda.get_device_name()}"
                print(f"{workload} ({result['parameters']:,} parameters), {where}: {result['samples_per_second']:,.0f} "
                      f"samples/s ({step_ms:.2f} ms per step, x{result['samples_per_second'] / base:.2f}{reduce})",
                      flush=True)


if __name__ == "__main__":
    main()
