"""Supervised training: inputs and their labels (or values) -> a model that predicts them.

The recipe reads top to bottom: ① data, ② model, ③ the estimate and the run directory, ④ the
loop, ⑤ finish (evaluate on the untouched test split, baselines, diagnosis, report). Transfer
learning (``model.backbone``) is this recipe with a model that starts from a trained run's layers.

Example:
    >>> run = train(load_config("examples/digits.yaml"))
    >>> run.metrics["test"]["accuracy"], run.dir
"""

from __future__ import annotations

import signal
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from torch import nn

from trainwright.cache import cache_dir
from trainwright.compute import estimate_training
from trainwright.compute.estimate import estimate_data_parallel
from trainwright.compute.stages import Stages
from trainwright.config import Config
from trainwright.configure import load_config
from trainwright.data.prepare import Prepared, prepare_data
from trainwright.errors import Interrupted, TrainingDiverged, TrainwrightError, WriteFailed
from trainwright.recipes.finish import Run, finish, finish_supervised
from trainwright.recipes.lr_find import with_found_lr, write_sweep
from trainwright.recipes.resume import apply_changes, changes_text, record_resume, resume_changes
from trainwright.recipes.setup import (
    Beside,
    build_fit,
    build_module,
    check_parallel_settings,
    check_same_data,
    interrupted,
    model_line,
    resolve_device,
    start_run,
    with_custom_model,
    write_start_files,
)
from trainwright.rundir import RunDir
from trainwright.tracking.callback import trackers_in
from trainwright.training import transfer
from trainwright.training.callbacks import Callback
from trainwright.training.checkpoint import load_state
from trainwright.training.compiled import compile_forward
from trainwright.training.distributed import Replicas, peer_lost
from trainwright.training.launch import record_failure
from trainwright.training.loop import Fit, fit
from trainwright.training.precision import check_precision


def train(cfg: Config, *, model: nn.Module | None = None, runs_dir: str | Path = "runs", name: str | None = None,
          resume: RunDir | None = None, console: Console | None = None) -> Run:
    """Train as ``cfg`` says into a new run directory, or continue ``resume`` from its checkpoint.

    ``model=`` trains your own ``nn.Module`` (inputs (B, features) -> outputs (B, classes or 1); for
    images, normalized float (B, C, H, W): the run puts its normalizing input stage in front).
    ``resume``: an existing run (``RunDir.open``); ``cfg`` is its config with the overrides a
    resume may make (``recipes/resume.py``), checked here before the data are read.
    """
    # Data-parallel (started by torchrun): join the others; rank 0 prints and writes, the others are quiet.
    replicas = Replicas.join(resolve_device(cfg.train.device))
    console = (console or Console()) if replicas.rank == 0 else Console(quiet=True)
    cfg = with_custom_model(cfg, model)
    if resume is not None:
        resume_changes(with_custom_model(load_config(resume.config), model), cfg)
        resume = RunDir.resume(resume.path)  # locked, leftovers removed, start files checked
    stages = Stages()
    try:
        # ① Data: load, clean, split, fit preprocessing on the training split.
        with stages.time("data"):
            data = prepare_data(cfg.data)
        for line in data.report_lines():
            console.print(line, highlight=False, soft_wrap=True)
        # ② Model: seeded, so the same config gives the same initial weights.
        module = build_module(cfg, data, model)
        run = train_prepared(cfg, data, module, runs_dir=runs_dir, name=name, resume=resume, console=console,
                             replicas=replicas, stages=stages)
    except KeyboardInterrupt as stop:
        if resume is None:
            raise
        raise interrupted(stop, resume) from None
    finally:
        if resume is not None:
            resume.unlock()
    try:
        replicas.close()  # every process leaves once rank 0 has written the results (a failure leaves at once)
    except KeyboardInterrupt as stop:  # the run is whole on disk: nothing to resume
        signum = stop.signum if isinstance(stop, Interrupted) else signal.SIGINT
        raise Interrupted(signum, f"the run had finished; its results are in {run.dir}") from None
    except RuntimeError as error:
        if not peer_lost(error):
            raise
        raise TrainwrightError(f"another process stopped after the run had finished; its results are in {run.dir}") from None
    return run


def train_prepared(cfg: Config, data: Prepared, module: nn.Module, *, runs_dir: str | Path = "runs", name: str | None = None,
                   resume: RunDir | None = None, console: Console | None = None, callbacks: Sequence[Callback] = (),
                   replicas: Replicas | None = None, stages: Stages | None = None) -> Run:
    """Stages ③-⑤ on prepared data and a built model (other recipes reuse it on their own data, adding
    ``callbacks`` to the loop's own: a search's pruning). ``replicas``: data-parallel (``Replicas.join``);
    ``stages``: where the wall time goes (``metrics.json`` compute.stages)."""
    console = console or Console()
    replicas = replicas or Replicas()
    stages = stages or Stages()
    # Beside the network, in forked processes: the preprocessor's files, the classical baselines and the
    # scorer of the network's outputs, started now so they are ready by the time the network is (``setup.Beside``).
    beside = Beside.start(cfg, data, resume=resume is not None, replicas=replicas)
    try:
        return _train_prepared(cfg, data, module, beside, runs_dir=runs_dir, name=name, resume=resume, console=console,
                               callbacks=callbacks, replicas=replicas, stages=stages)
    finally:
        beside.cancel()  # whatever is still running after a failure or an interrupt


def _train_prepared(cfg: Config, data: Prepared, module: nn.Module, beside: Beside, *, runs_dir: str | Path, name: str | None,
                    resume: RunDir | None, console: Console, callbacks: Sequence[Callback], replicas: Replicas,
                    stages: Stages) -> Run:
    device = replicas.device(resolve_device(cfg.train.device))
    check_precision(device, cfg.train.precision)
    check_parallel_settings(cfg, replicas)
    module = module.to(device)
    console.print(model_line(cfg, module, data, device), highlight=False)
    backbone = transfer.describe(cfg, module)  # a run backbone or pretrained weights: what loaded, what is frozen
    if backbone is not None:
        console.print(transfer.summary_line(backbone, cfg.train), highlight=False, soft_wrap=True)

    # train.optimizer.lr: find: a learning-rate sweep picks it (the model and the random streams are restored).
    cfg, sweep = with_found_lr(cfg, data, module, device, console)
    cfg = replicas.from_rank0(cfg)  # data-parallel: every process trains with rank 0's sweep's learning rate

    # ③ The estimate (a few timed steps on a throwaway copy: the model and the random streams are left
    # as they were), then the run directory, created once the data and the model are known to be good.
    with stages.time("estimate"):
        est = estimate_training(cfg, data, module, device, peak_cache=cache_dir())
        if replicas.active:  # each process's share of a step (on its own threads), and the gradients' all-reduce
            machines = replicas.size // replicas.local_size
            est = replace(est, parallel=estimate_data_parallel(cfg, data, module, device, est, replicas.local_size, machines,
                                                               share_threads=False))
    console.print(est.summary(), highlight=False, soft_wrap=True)
    if est.compile.decided_by == "auto":
        console.print(est.compile.line(), highlight=False, soft_wrap=True)
    with stages.time("setup"):  # the run directory and its start files
        if resume is None:
            run_dir = start_run(cfg, data, module, device, runs_dir=runs_dir, name=name, backbone=backbone, files=beside.files)
            if sweep is not None:
                write_sweep(run_dir, sweep)
        else:
            run_dir = resume
            if run_dir.checkpoint.is_file():
                check_same_data(run_dir, data)
            else:  # killed before its first checkpoint: nothing was trained, so it starts again from its start files
                write_start_files(run_dir, cfg, data, module, device, backbone)
    # The run directory is locked from here to the end. A signal outside the loop (the loop defers
    # them to a batch boundary) or a full disk still ends with the command that continues the run.
    trained, run = False, None
    try:
        # ④ The loop.
        if replicas.active:  # what the launcher says if a process dies: the run, and the command that continues it
            resume_with = replicas.resume_command(run_dir.path)
            record_failure(f"the last checkpoint of {run_dir.path} is kept; continue with `{resume_with}`", in_advance=True)
        with stages.time("setup"):
            run = build_fit(cfg, module, data, device, run_dir, console, replicas)
            run_dir.defer = True  # the last checkpoint and history rows are written while ⑤ evaluates; finish settles
            for callback in callbacks:
                run.callbacks.append(callback)
            # train.compile: true, or auto where the estimate projected that it pays. In place: state_dict keys stay
            # the same, so weights and checkpoints load without it.
            if est.compile.enabled:
                compile_forward(module, est.compile.torch_mode)
            previous_seconds = resume_from_checkpoint(run, run_dir, cfg, console) if resume is not None else 0.0
        with stages.time("fit"):
            seconds = previous_seconds + fit_or_diagnose(run, run_dir, console)
        trained = True
        if run.stop_reason:
            console.print(run.stop_reason, highlight=False)

        # ⑤ Evaluate the kept weights on the untouched test split, write everything, diagnose, report.
        return finish_supervised(run_dir, cfg, data, module, device, run, est, seconds, console, stages=stages,
                                 baselines=beside.baselines, scores=beside.scores, worker=beside.worker)
    except KeyboardInterrupt as stop:
        raise interrupted(stop, run_dir, replicas, trained) from None
    except WriteFailed as error:
        resume = f"trainwright train --resume {run_dir.path}"
        raise WriteFailed(f"{error}; when there is room again, continue with `{resume}`") from None
    except RuntimeError as error:
        if not peer_lost(error):
            raise
        raise lost_peer(run_dir, run, replicas) from None
    finally:
        run_dir.unlock()


def resume_from_checkpoint(run: Fit, run_dir: RunDir, cfg: Config, console: Console) -> float:
    """Put the run back where its checkpoint left it, with the changes a resume may make; returns
    the seconds already trained. A run whose training had finished is finished (evaluated, written,
    reported) unless it is complete already."""
    changes = resume_changes(load_config(run_dir.config), cfg)
    if not run_dir.checkpoint.is_file():
        console.print(
            f"resuming {run_dir.path}: it has no checkpoint yet, so it starts from the beginning", highlight=False, soft_wrap=True
        )
        record_resume(run_dir, cfg, "the beginning", changes)
        return 0.0
    state = load_state(run_dir.checkpoint)
    run.load_state_dict(state)
    apply_changes(run, changes)
    where = run.position()
    if run.finished and all(path.is_file() for path in (run_dir.weights, run_dir.metrics, run_dir.report)):
        longer = (
            "raise train.early_stopping.patience to let it go on"
            if run.stop_reason
            else f"to train longer pass --set train.epochs=N with N > {run.epoch}"
        )
        why = run.stop_reason or "every epoch ran"
        raise TrainwrightError(f"{run_dir.path} already finished training ({where}: {why}); {longer}")
    record_resume(run_dir, cfg, where, changes)
    what = "its training had finished; writing its results" if run.finished else f"resuming {run_dir.path} {where}"
    console.print(what + (f" (changed: {changes_text(changes)})" if changes else ""), highlight=False, soft_wrap=True)
    return sum(row["seconds"] for row in run.history) + state.get("epoch_seconds", 0.0)


def fit_or_diagnose(run: Fit, run_dir: RunDir, console: Console) -> float:
    """Run the loop; returns its seconds. A NaN loss still gets its diagnosis and report, then stops the run."""
    started = time.perf_counter()
    try:
        fit(run)
    except TrainingDiverged as error:
        # The run failed, but its history and gradient norms show why: diagnose and report it (rank 0 writes).
        diverged = {"epoch": error.epoch, "loss": error.loss, "lr": run.optimizer.param_groups[0]["lr"]}
        if run_dir.writes:
            finish(run_dir, console, diverged=diverged, trackers=trackers_in(run.callbacks))
        raise
    return time.perf_counter() - started


def lost_peer(run_dir: RunDir, run: Fit | None, replicas: Replicas) -> TrainwrightError:
    """Another process of a data-parallel run died: where the checkpoint holds the run, and how to go on."""
    held = f"{run_dir.path} has no checkpoint yet, so a resume starts from the beginning"
    if run is not None and run.saved_step is not None:
        held = f"the checkpoint of {run_dir.path} holds the run {run.position(run.saved_epoch, run.saved_step)}"
    resume_with = replicas.resume_command(run_dir.path)
    message = f"another process of this run stopped, so every process stops; {held}; continue with `{resume_with}`"
    record_failure(message)
    return TrainwrightError(message)
