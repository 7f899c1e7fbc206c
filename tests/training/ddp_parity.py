"""Train small configs through the real setup and loop (and a distillation through its recipe), on however
many processes started this one.

``tests/training/test_distributed.py`` runs it under torchrun with 2 processes (gloo, loopback) and
calls ``train_weights`` in its own process with 1, then compares the final weights.

    python -m torch.distributed.run --nproc-per-node 2 tests/training/ddp_parity.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from rich.console import Console
from safetensors.torch import load_file, save_file

from trainwright.config import DistillConfig
from trainwright.configure import load_config
from trainwright.data.prepare import prepare_data
from trainwright.recipes.distill import train_student
from trainwright.recipes.setup import build_fit, build_module
from trainwright.rundir import RunDir
from trainwright.training.distributed import Replicas
from trainwright.training.loop import fit

TRAIN = {"epochs": 2, "optimizer": {"name": "adam", "lr": 0.01}, "seed": 3, "device": "cpu", "checkpoint_every": "1h"}
CASES = {
    # 104 training rows in batches of 16: six full batches and one of 8 (shares of 4 on each of 2 processes).
    "mlp": {"data": {"source": "iris"}, "model": {"type": "mlp", "hidden": [16, 16], "dropout": 0.0},
            "train": {**TRAIN, "batch_size": 16}},
    # 104 rows in batches of 103: the last batch is one row, so one process's share of it is empty.
    "mlp_last_row_alone": {"data": {"source": "iris"}, "model": {"type": "mlp", "hidden": [16], "dropout": 0.0},
                           "train": {**TRAIN, "batch_size": 103}},
    # 215 images of 8x8 in batches of 24: shares of 12 (and 11 / 12 of the last 23) on 2 processes; no batch norm,
    # no dropout, no augmentation: each would draw or normalize per share, not per global batch.
    "cnn": {"data": {"source": "digits-images", "augment": [], "split": {"train": 0.12, "val": 0.08, "test": 0.8}},
            "model": {"type": "cnn", "widths": [4, 8], "convs": 1, "batch_norm": False, "dropout": 0.0},
            "train": {**TRAIN, "batch_size": 24}},
}
# train.strategy: fsdp: the MLP's parameters, gradients and Adam state sharded over the processes (FSDP2).
CASES["mlp_fsdp"] = {**CASES["mlp"], "train": {**CASES["mlp"]["train"], "strategy": "fsdp"}}
ACCUMULATE = (1, 3)


def train_weights(name: str, accumulate: int, runs_dir: Path, replicas: Replicas) -> tuple[dict[str, torch.Tensor], list]:
    """The final weights and the history of case ``name`` with ``train.accumulate``."""
    cfg = load_config(CASES[name], [f"train.accumulate={accumulate}"])
    data = prepare_data(cfg.data)
    module = build_module(cfg, data)
    run_dir = RunDir.create(runs_dir, f"{name}-{accumulate}-{replicas.size}")
    run = build_fit(cfg, module, data, torch.device("cpu"), run_dir, Console(quiet=True), replicas)
    fit(run)
    run_dir.unlock()
    weights = replicas.full_weights(module)  # FSDP: gathered on rank 0 ({} elsewhere)
    return {k: v.detach().clone().contiguous() for k, v in weights.items()}, run.history


def distilled_weights(runs_dir: Path, replicas: Replicas) -> dict[str, torch.Tensor]:
    """The distillation recipe's student (its whole setup, loop and finish) taught by a wider MLP."""
    cfg = load_config({**CASES["mlp"], "evaluate": {"baseline": False}})
    data = prepare_data(cfg.data)
    teacher_cfg = load_config({**CASES["mlp"], "model": {"type": "mlp", "hidden": [32], "dropout": 0.0}})
    teacher = build_module(teacher_cfg, data)
    run = train_student(cfg, data, teacher, DistillConfig(temperature=2.0, alpha=0.5), runs_dir=runs_dir,
                        name=f"distilled-{replicas.size}", console=Console(quiet=True), replicas=replicas)
    return load_file(str(run.dir / "model.safetensors")) if replicas.rank == 0 else {}


if __name__ == "__main__":
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    replicas = Replicas.join(torch.device("cpu"))
    for case in CASES:
        for every in ACCUMULATE:
            weights, history = train_weights(case, every, out / "runs", replicas)
            if replicas.rank == 0:
                save_file(weights, str(out / f"{case}-{every}.safetensors"))
                (out / f"{case}-{every}.json").write_text(json.dumps(history))
    weights = distilled_weights(out / "runs", replicas)
    if replicas.rank == 0:
        save_file(weights, str(out / "distilled.safetensors"))
    replicas.close()
