"""Seconds per training step and per validation pass, timed here on a throwaway copy of the model.

The steps run through the real loop (``training.loop.fit``: the same autocast, loss scaling,
accumulation, clipping and optimizer), on a deep copy of the model with a fresh optimizer, inside
a forked RNG: the run's weights, optimizer and random streams are exactly as if nothing had run,
so a seeded run stays bit-for-bit the same.

Example:
    >>> timing = time_steps(cfg.train, model, x_train, y_train, loss_fn, batch_size=64)
    >>> timing.seconds_per_step, timing.steps
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

from trainwright.compute.compiling import MODES
from trainwright.compute.peak import synchronize
from trainwright.config import ScheduleConfig, TrainConfig
from trainwright.data.batches import TensorBatches
from trainwright.errors import TrainingDiverged, TrainwrightError
from trainwright.evaluate.metrics import predict_outputs
from trainwright.training.compiled import compile_forward
from trainwright.training.loop import Fit, fit, supervised_loss
from trainwright.training.losses import LossFn
from trainwright.training.optim import Schedule, build_optimizer
from trainwright.training.precision import grad_scaler

STEPS_PER_ROUND = 4  # batches per timed round; rounds repeat until the budget is spent, and their median counts


@dataclass(frozen=True)
class StepTiming:
    seconds_per_step: float  # median over rounds: one stall on a busy machine does not skew it
    steps: int  # steps timed (after warm-up)
    warmup_seconds: float  # the first steps: allocation, optimizer state, and compilation with train.compile


def time_steps(cfg: TrainConfig, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn,
               batch_size: int, budget: float = 0.2, transform=None) -> StepTiming:
    """Time training steps of ``model`` on batches of ``x`` (N, ...) -> ``y`` for about ``budget`` seconds.

    ``transform`` is the run's per-batch training transform (image augmentation): part of a step's cost.
    Compiled with ``train.compile: true``; ``auto`` times eager steps (``time_compiled`` times both).
    """
    compiled = cfg.compile is True
    run = _timing_fit(cfg, model, x, y, loss_fn, batch_size, transform, "inductor" if compiled else None)
    with torch.random.fork_rng(devices=_cuda_index(x.device)):
        try:
            warmup = _fit_seconds(run, x.device)
        except Exception as error:
            if not compiled:
                raise
            detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise TrainwrightError(
                f"train.compile: torch.compile failed on this machine ({type(error).__name__}: {detail}); set train.compile: "
                "false"
            ) from None
        rounds: list[float] = []
        # Huge models: fewer rounds (a round takes longer than the budget); at least two.
        while len(rounds) < 2 or (sum(rounds) * len(run.batches) < budget and len(rounds) < 50):
            rounds.append(_fit_seconds(run, x.device) / len(run.batches))
    return StepTiming(statistics.median(rounds), len(rounds) * len(run.batches), warmup)


@dataclass(frozen=True)
class CompiledTiming:
    eager_step_s: float  # median over the rounds
    compiled_step_s: float  # the eager median x the median of the paired compiled/eager ratios
    compile_s: float  # the compiled copy's first two rounds less the eager copy's first two
    pairs: int


def time_compiled(cfg: TrainConfig, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn, batch_size: int,
                  mode: str, budget: float = 3.0, transform=None) -> CompiledTiming:
    """Eager and compiled (``mode``: "inductor" or "reduce-overhead") training steps, timed in alternation on two
    copies for about ``budget`` seconds: a slow stretch of a shared machine hits both sides of a pair, and the
    median ratio drops the pairs it split. torch.compile's errors propagate (the caller trains eagerly)."""
    eager = _timing_fit(cfg, model, x, y, loss_fn, batch_size, transform, None)
    compiled = _timing_fit(cfg, model, x, y, loss_fn, batch_size, transform, mode)
    steps = len(eager.batches)
    with torch.random.fork_rng(devices=_cuda_index(x.device)):
        # Two rounds each: CUDA graphs record on a later call than the one that compiles.
        eager_warmup = _fit_seconds(eager, x.device) + _fit_seconds(eager, x.device)
        compile_s = max(0.0, _fit_seconds(compiled, x.device) + _fit_seconds(compiled, x.device) - eager_warmup)
        eagers: list[float] = []
        ratios: list[float] = []
        while len(ratios) < 3 or (sum(eagers) * 2 < budget and len(ratios) < 25):
            eagers.append(_fit_seconds(eager, x.device) / steps)
            ratios.append(_fit_seconds(compiled, x.device) / steps / eagers[-1])
    eager_step = statistics.median(eagers)
    return CompiledTiming(eager_step, eager_step * statistics.median(ratios), compile_s, len(ratios))


def _timing_fit(cfg: TrainConfig, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn, batch_size: int,
                transform, mode: str | None) -> Fit:
    """A one-epoch fit of a deep copy of ``model`` over a few whole batches; compiled when ``mode`` is given."""
    work = copy.deepcopy(model)
    if mode is not None:
        compile_forward(work, MODES[mode])
    # A round holds whole accumulation groups, so optimizer steps come as often as in the run.
    whole_groups = cfg.accumulate * -(-STEPS_PER_ROUND // cfg.accumulate)
    steps = max(1, min(whole_groups, len(x) // batch_size))
    rows = min(len(x), steps * batch_size)  # whole batches only: the real epoch has at most one partial
    optimizer = build_optimizer(cfg.optimizer, work.parameters())
    one_epoch = cfg.model_copy(update={"epochs": 1})
    batches = TensorBatches(x[:rows], y[:rows], batch_size, transform=transform)
    return Fit(work, optimizer, Schedule(ScheduleConfig(), optimizer, 1, len(batches)), supervised_loss(work, loss_fn), batches,
               validate=lambda _: {"val_loss": 0.0}, cfg=one_epoch, generator=torch.Generator(device=x.device).manual_seed(0),
               scaler=grad_scaler(x.device, cfg.precision))


def _cuda_index(device: torch.device) -> list[int]:
    return [device.index or 0] if device.type == "cuda" else []


def _fit_seconds(run: Fit, device: torch.device) -> float:
    """One epoch of ``run`` through the real loop, in seconds; a diverging loss is fine for timing."""
    run.epoch, run.history = 0, []
    synchronize(device)
    started = time.perf_counter()
    try:
        fit(run)  # reads the loss once at the epoch's end: the device is synchronized by then
    except TrainingDiverged:
        pass
    return time.perf_counter() - started


def time_validation(model: nn.Module, x: torch.Tensor, batch_size: int, repeats: int = 3) -> float:
    """Median seconds of one forward pass over ``x`` in eval mode, as the per-epoch validation runs it."""
    if len(x) == 0:
        return 0.0
    work = copy.deepcopy(model)
    predict_outputs(work, x, batch_size)  # warm-up
    times = []
    for _ in range(repeats):
        synchronize(x.device)
        started = time.perf_counter()
        predict_outputs(work, x, batch_size).sum().item()
        times.append(time.perf_counter() - started)
    return statistics.median(times)
