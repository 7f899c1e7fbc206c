"""Supervised training: inputs and their labels (or values) -> a model that predicts them.

The recipe reads top to bottom: ① data, ② model, ③ the estimate and the run directory, ④ the
loop, ⑤ finish (evaluate on the untouched test split, baselines, diagnosis, report). Transfer
learning (``model.backbone``) is this recipe with a model that starts from a trained run's layers.

Example:
    >>> run = train(load_config("examples/digits.yaml"))
    >>> run.metrics["test"]["accuracy"], run.dir
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from torch import nn

from trainwright.cache import cache_dir
from trainwright.compute import estimate_training
from trainwright.compute.stages import Stages
from trainwright.config import Config
from trainwright.data.prepare import Prepared, prepare_data
from trainwright.errors import TrainingDiverged, TrainwrightError
from trainwright.recipes.finish import Run, finish, finish_supervised
from trainwright.recipes.setup import (
    Beside,
    build_fit,
    build_module,
    check_same_data,
    model_line,
    resolve_device,
    start_run,
    with_custom_model,
)
from trainwright.rundir import RunDir
from trainwright.training import transfer
from trainwright.training.checkpoint import load_state
from trainwright.training.compiled import compile_forward
from trainwright.training.loop import Fit, fit
from trainwright.training.precision import check_precision


def train(cfg: Config, *, model: nn.Module | None = None, runs_dir: str | Path = "runs", name: str | None = None,
          resume: RunDir | None = None, console: Console | None = None) -> Run:
    """Train as ``cfg`` says into a new run directory, or continue ``resume`` from its checkpoint.

    ``model=`` trains your own ``nn.Module`` (inputs (B, features) -> outputs (B, classes or 1); for
    images, normalized float (B, C, H, W): the run puts its normalizing input stage in front).
    """
    console = console or Console()
    cfg = with_custom_model(cfg, model)
    stages = Stages()
    # ① Data: load, clean, split, fit preprocessing on the training split.
    with stages.time("data"):
        data = prepare_data(cfg.data)
    for line in data.report_lines():
        console.print(line, highlight=False, soft_wrap=True)
    # ② Model: seeded, so the same config gives the same initial weights.
    module = build_module(cfg, data, model)
    return train_prepared(cfg, data, module, runs_dir=runs_dir, name=name, resume=resume, console=console, stages=stages)


def train_prepared(cfg: Config, data: Prepared, module: nn.Module, *, runs_dir: str | Path = "runs", name: str | None = None,
                   resume: RunDir | None = None, console: Console | None = None, stages: Stages | None = None) -> Run:
    """Stages ③-⑤ on prepared data and a built model (other recipes reuse it on their own data)."""
    console = console or Console()
    stages = stages or Stages()
    # Beside the network, in forked processes: the preprocessor's files and the classical baselines,
    # started now so they are ready by the time the network is (``setup.Beside``).
    beside = Beside.start(cfg, data, resume=resume is not None)
    try:
        return _train_prepared(cfg, data, module, beside, runs_dir=runs_dir, name=name, resume=resume, console=console,
                               stages=stages)
    finally:
        beside.cancel()  # whatever is still running after a failure or an interrupt


def _train_prepared(cfg: Config, data: Prepared, module: nn.Module, beside: Beside, *, runs_dir: str | Path, name: str | None,
                    resume: RunDir | None, console: Console, stages: Stages) -> Run:
    device = resolve_device(cfg.train.device)
    check_precision(device, cfg.train.precision)
    module = module.to(device)
    console.print(model_line(cfg, module, data, device), highlight=False)
    backbone = transfer.describe(cfg.model.backbone, module) if cfg.model.backbone is not None else None
    if backbone is not None:
        console.print(transfer.summary_line(backbone, cfg.train), highlight=False, soft_wrap=True)

    # ③ The estimate (a few timed steps on a throwaway copy: the model and the random streams are left
    # as they were), then the run directory, created once the data and the model are known to be good.
    with stages.time("estimate"):
        est = estimate_training(cfg, data, module, device, peak_cache=cache_dir())
    console.print(est.summary(), highlight=False, soft_wrap=True)
    with stages.time("setup"):
        if resume is None:
            run_dir = start_run(cfg, data, module, device, runs_dir=runs_dir, name=name, backbone=backbone, files=beside.files)
        else:
            run_dir = resume
            check_same_data(run_dir, data)

        # ④ The loop.
        run = build_fit(cfg, module, data, device, run_dir, console)
        if cfg.train.compile:
            compile_forward(module)  # in place: state_dict keys stay the same, so weights and checkpoints load without it
        previous_seconds = resume_from_checkpoint(run, run_dir, cfg, console) if resume is not None else 0.0
    with stages.time("fit"):
        seconds = previous_seconds + fit_or_diagnose(run, run_dir, console)
    if run.stop_reason:
        console.print(run.stop_reason, highlight=False)

    # ⑤ Evaluate the kept weights on the untouched test split, write everything, diagnose, report.
    return finish_supervised(run_dir, cfg, data, module, device, run, est, seconds, console, stages=stages,
                             baselines=beside.baselines)


def resume_from_checkpoint(run: Fit, run_dir: RunDir, cfg: Config, console: Console) -> float:
    """Put the run back where its checkpoint left it; returns the seconds already trained."""
    run.load_state_dict(load_state(run_dir.checkpoint))
    if run.epoch >= cfg.train.epochs:
        raise TrainwrightError(
            f"{run_dir.path} already trained {run.epoch} epochs; to train longer pass --set train.epochs=N with N > {run.epoch}"
        )
    console.print(f"resuming {run_dir.path} after epoch {run.epoch}", highlight=False)
    return sum(row["seconds"] for row in run.history)


def fit_or_diagnose(run: Fit, run_dir: RunDir, console: Console) -> float:
    """Run the loop; returns its seconds. A NaN loss still gets its diagnosis and report, then stops the run."""
    started = time.perf_counter()
    try:
        fit(run)
    except TrainingDiverged as error:
        # The run failed, but its history and gradient norms show why: diagnose and report it.
        finish(run_dir, console, diverged={"epoch": error.epoch, "loss": error.loss, "lr": run.optimizer.param_groups[0]["lr"]})
        raise
    return time.perf_counter() - started
