"""The supervised training loop: one function, readable top to bottom.

Per batch: the batch's loss (``fit.step_loss``: forward and loss, under autocast for bf16/fp16;
distillation's adds the teacher's view of the same batch) + L1/L2 penalty, backward. Every
``accumulate`` batches: optional clipping, optimizer step (through the fp16 loss scaler), schedule.
The epoch's loss is summed on the device and read once per epoch, so the hot loop never waits on
a host sync. Validation runs once per epoch through ``fit.validate``, between the callbacks'
``on_validation_begin`` and ``on_validation_end``.

After each optimizer step the callbacks' ``on_step_end`` may checkpoint the state mid-epoch: the
state then holds the position in the epoch (batches done, the batch generator's state before the
epoch's shuffle, the loss summed so far), and a resumed fit shuffles the epoch again, skips the
batches done and goes on bit for bit as if never stopped (on the CPU; GPUs add their own
nondeterminism).
"""

from __future__ import annotations

import gc
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from trainwright.config import TrainConfig
from trainwright.data.batches import TensorBatches
from trainwright.errors import TrainingDiverged
from trainwright.training.callbacks import CallbackList
from trainwright.training.distributed import Replicas
from trainwright.training.losses import LossFn
from trainwright.training.optim import Schedule, weight_penalty
from trainwright.training.precision import autocast

StepLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (inputs, targets) of a batch -> its training loss


def supervised_loss(model: nn.Module, loss_fn: LossFn) -> StepLoss:
    """The usual step: the model's outputs on the batch against its targets."""
    return lambda xb, yb: loss_fn(model(xb), yb)


@dataclass
class Fit:
    """Everything one supervised training run holds; a checkpoint is ``state_dict()`` of this.
    It is the ``TrainingState`` its callbacks see (``training/state.py``)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    step_loss: StepLoss  # (xb, yb) -> the batch's loss; ``supervised_loss(model, loss_fn)`` for most runs
    batches: TensorBatches
    validate: Callable[[nn.Module], dict[str, float]]  # model -> {"val_loss": ..., "val_<metric>": ...}
    cfg: TrainConfig
    generator: torch.Generator  # shuffles the batches; its own stream, so dropout draws don't shift it
    callbacks: CallbackList = field(default_factory=CallbackList)
    scaler: torch.amp.GradScaler = field(default_factory=lambda: torch.amp.GradScaler("cpu", enabled=False))  # fp16 only
    replicas: Replicas = field(default_factory=Replicas)  # data-parallel: the processes training this model together
    epoch: int = 0  # epochs completed
    step: int = 0  # batches done of epoch ``epoch + 1``
    saved_epoch: int = 0  # where the checkpoint holds the run (set by the Checkpoint callback);
    saved_step: int | None = None  # None: no checkpoint written yet
    history: list[dict] = field(default_factory=list)
    stop_reason: str | None = None
    # The running epoch, which a mid-epoch checkpoint holds: the batch generator's state before the
    # epoch's shuffle, the loss summed so far (on the device), and when the epoch started.
    epoch_rng: torch.Tensor | None = None
    loss_sum: torch.Tensor | None = None
    epoch_started: float = 0.0

    @property
    def max_epochs(self) -> int:
        return self.cfg.epochs

    @property
    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": self.optimizer}

    @property
    def finished(self) -> bool:
        """Training is over: every epoch ran, or a callback stopped it."""
        return self.stop_reason is not None or self.epoch >= self.cfg.epochs

    def request_stop(self, reason: str) -> None:
        self.stop_reason = reason

    def position(self, epoch: int | None = None, step: int | None = None) -> str:
        """Where the run is (or a checkpoint holds it): 'after epoch 3', 'after 12 of 20 batches of epoch 4'."""
        epoch, step = (self.epoch, self.step) if epoch is None else (epoch, step or 0)
        if step:
            return f"after {step} of {len(self.batches)} batches of epoch {epoch + 1}"
        return f"after epoch {epoch}" if epoch else "before its first step"

    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state(), "batches": self.generator.get_state() if self.generator is not None else None}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        mid_epoch = self.step > 0
        model, optimizer = self.replicas.full_state(self.model, self.optimizer)  # FSDP: gathered, plain, on rank 0
        return {
            # History is plain numbers: one JSON string, not thousands of nodes to walk each epoch.
            "epoch": self.epoch, "history": json.dumps(self.history), "model": model,
            "optimizer": optimizer, "schedule": self.schedule.state_dict(), "rng": rng,
            "scaler": self.scaler.state_dict(),  # {} unless fp16
            "callbacks": self.callbacks.state_dict(),
            "stop_reason": self.stop_reason,
            "step": self.step,
            "epoch_rng": self.epoch_rng if mid_epoch else None,
            "loss_sum": self.replicas.each(self.loss_sum) if mid_epoch else None,  # data-parallel: every process's
            "epoch_seconds": time.perf_counter() - self.epoch_started if mid_epoch else 0.0,
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.history = state["epoch"], json.loads(state["history"])
        self.stop_reason, self.step = state.get("stop_reason"), state.get("step", 0)
        self.saved_epoch, self.saved_step = self.epoch, self.step
        self.replicas.load_full_state(self.model, self.optimizer, state["model"], state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        if self.step:
            self.epoch_rng = state["epoch_rng"]
            self.loss_sum = self.replicas.own_share(state["loss_sum"]).to(self.batches.device)
            self.epoch_started = time.perf_counter() - state["epoch_seconds"]
        if self.generator is not None and state["rng"]["batches"] is not None:
            try:
                self.generator.set_state(state["rng"]["batches"])
            except RuntimeError:  # resumed on another kind of device, whose generator keeps another state
                self.generator.manual_seed(self.cfg.seed + self.epoch)  # the rest of this epoch is shuffled anew
                self.epoch_rng = self.generator.get_state()
        self.callbacks.load_state_dict(state["callbacks"])


def fit(run: Fit) -> Fit:
    """Train ``run.model`` from epoch ``run.epoch + 1`` to ``cfg.epochs`` or until a callback stops it."""
    cfg, model, optimizer, scaler = run.cfg, run.model, run.optimizer, run.scaler
    penalized = bool(cfg.l1 or cfg.l2)
    clipping = cfg.clip_grad_value is not None or cfg.clip_grad_norm is not None
    steps, every, size, rows = len(run.batches), cfg.accumulate, run.batches.batch_size, run.batches.rows
    callbacks, replicas = run.callbacks, run.replicas
    # What a step does is decided here, once: fp32 enters no autocast, one process no no_sync, a disabled
    # scaler is not called, and a batch's loss is weighted only where a group or the processes share a step.
    amp = autocast(run.batches.device, cfg.precision) if cfg.precision != "fp32" else None
    weighted, scaling, parallel = every > 1 or replicas.active, scaler.is_enabled(), replicas.active

    def backward(xb: torch.Tensor, yb: torch.Tensor, n: int, step: int) -> torch.Tensor:
        """The batch's loss (returned), and its gradients added to ``.grad``."""
        if amp is None:
            loss = run.step_loss(xb, yb)
        else:
            with amp:
                loss = run.step_loss(xb, yb)  # fp32 scalar, also under autocast
        objective = loss + weight_penalty(model, cfg.l1, cfg.l2) if penalized else loss
        if weighted:
            # Gradients add up over a group of `every` batches (and over the processes, which average
            # them). Weighting each batch's mean loss by its share of the group's rows makes the sum the
            # gradient of the group's mean loss, as one big batch would give, also for a shorter last
            # group, a partial last batch, or shares of a batch that differ by a row.
            objective = objective * (n * replicas.size / min(every * size, rows - step // every * every * size))
        (scaler.scale(objective) if scaling else objective).backward()
        return loss

    optimizer.zero_grad(set_to_none=True)  # gradients left on a module from elsewhere must not reach step 1
    callbacks.on_train_begin(run)
    # The per-batch hooks that some callback overrides (most batches call none but the checkpoint's clock).
    after_backward, batch_end, step_end = (callbacks.hooks(name) for name in ("on_after_backward", "on_batch_end", "on_step_end"))
    # The objects made before training (data, config, imports: hundreds of thousands) stay out of the
    # garbage collector's passes while it trains; it still collects what the loop itself leaves. Where the
    # caller froze objects already (a server before forking), what this froze stays frozen too.
    frozen_before = gc.get_freeze_count()
    gc.freeze()
    try:
        for epoch in range(run.epoch + 1, cfg.epochs + 1):
            if run.stop_reason:  # a resumed run that a callback had stopped
                break
            model.train()
            done = run.step  # batches of this epoch trained before a checkpoint it resumes from
            if done and run.generator is not None:
                run.generator.set_state(run.epoch_rng)  # the same shuffle as when it began
            else:
                run.epoch_rng = run.generator.get_state() if run.generator is not None else None
                run.loss_sum = torch.zeros((), device=run.batches.device)  # summed on device: no per-step sync
                run.epoch_started = time.perf_counter()
            loss_sum = run.loss_sum
            for step, (xb, yb) in enumerate(run.batches.epoch(run.generator, start=done), start=done):
                stepped = (step + 1) % every == 0 or step + 1 == steps
                n = len(xb)
                if parallel and not stepped:
                    # Data-parallel: xb is this process's share of the global batch; the gradients are averaged
                    # over the processes in the backward of the group's last batch only.
                    with replicas.no_sync(unless=False):
                        loss = backward(xb, yb, n, step)
                else:
                    loss = backward(xb, yb, n, step)
                if stepped:
                    for hook in after_backward:  # the group's whole gradients, before clipping and the step
                        hook(run)
                    if clipping:
                        scaler.unscale_(optimizer)  # clip the true gradients, not fp16-scaled ones
                    if cfg.clip_grad_value is not None:
                        nn.utils.clip_grad_value_(model.parameters(), cfg.clip_grad_value)
                    if cfg.clip_grad_norm is not None:
                        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
                    if scaling:
                        scaler.step(optimizer)  # fp16: skipped when a gradient overflowed, and the scale lowered
                        scaler.update()
                    else:
                        optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    run.schedule.step_batch()
                if n:  # a process's share of a last batch smaller than the processes may be empty (its loss: nan)
                    loss_sum += loss.detach() * n
                run.step = step + 1
                for hook in batch_end:
                    hook(run)
                if stepped:
                    for hook in step_end:  # the whole state is consistent: a checkpoint may be taken
                        hook(run)

            # Once per epoch: read the loss, validate, log, let callbacks decide.
            train_loss = (replicas.sum(loss_sum) / rows).item()
            if not math.isfinite(train_loss):
                kept = (
                    f"the last good checkpoint ({run.position(run.saved_epoch, run.saved_step)}) is kept"
                    if run.saved_step is not None
                    else "no checkpoint was written, so a resume starts from the beginning"
                )
                raise TrainingDiverged(
                    f"the training loss became {train_loss} in epoch {epoch}; {kept}. "
                    "Lower train.optimizer.lr, set train.clip_grad_norm (e.g. 1.0), or check the data for extreme values",
                    epoch=epoch,
                    loss=train_loss,
                )
            logs = {"epoch": epoch, "train_loss": train_loss, **validate(run), "lr": optimizer.param_groups[0]["lr"]}
            run.schedule.step_epoch(logs["val_loss"])
            logs["seconds"] = time.perf_counter() - run.epoch_started
            run.epoch, run.step = epoch, 0
            run.history.append(logs)
            callbacks.on_epoch_end(run, logs)
            run.stop_reason = replicas.from_rank0(run.stop_reason)  # decided once: every process stops together
            if run.stop_reason:
                break
        callbacks.on_train_end(run)
    finally:
        if not frozen_before:
            gc.unfreeze()
        callbacks.close()  # finish pending writes, stop the progress display
    return run


def validate(run: Fit) -> dict[str, float]:
    """The epoch's validation pass, between the callbacks' validation hooks."""
    run.callbacks.on_validation_begin(run)
    try:
        return run.validate(run.model)
    finally:
        run.callbacks.on_validation_end(run)
