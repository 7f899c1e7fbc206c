"""Callbacks observe a fit through flat ``on_*`` hooks and may ask it to stop; they never
reach into the loop. State a resumed run needs comes from ``state_dict``/``load_state_dict``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from trainwright.config import EarlyStoppingConfig
from trainwright.files import atomic_write
from trainwright.training.checkpoint import Snapshots, write_snapshot

if TYPE_CHECKING:
    from trainwright.training.loop import Fit


class Callback:
    """Base with no-op hooks; subclasses override what they need."""

    def on_train_begin(self, fit: Fit) -> None: ...
    def on_after_backward(self, fit: Fit) -> None:
        """Gradients are in ``.grad``, before clipping and the optimizer step."""
    def on_batch_end(self, fit: Fit) -> None: ...
    def on_validation_begin(self, fit: Fit) -> None: ...
    def on_validation_end(self, fit: Fit) -> None: ...
    def on_epoch_end(self, fit: Fit, logs: dict) -> None: ...
    def on_train_end(self, fit: Fit) -> None: ...
    def close(self) -> None:
        """Release what the callback holds; called after training, also when it fails."""
    def state_dict(self) -> dict:
        return {}
    def load_state_dict(self, state: dict) -> None: ...


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs; keep the
    best weights in memory and put them back at the end when ``restore_best``."""

    def __init__(self, cfg: EarlyStoppingConfig):
        self.cfg = cfg
        mode = cfg.mode if cfg.mode != "auto" else ("min" if cfg.monitor.endswith(("loss", "mse", "rmse", "mae")) else "max")
        self.sign = 1.0 if mode == "min" else -1.0  # compare sign * value: smaller is better
        self.best = math.inf
        self.best_epoch = 0
        self.wait = 0
        self.best_weights: dict[str, torch.Tensor] | None = None

    def on_epoch_end(self, fit: Fit, logs: dict) -> None:
        if self.cfg.monitor not in logs:
            raise KeyError(f"train.early_stopping.monitor = {self.cfg.monitor!r} is not logged; logged: {', '.join(logs)}")
        value = self.sign * logs[self.cfg.monitor]
        if value < self.best - self.cfg.min_delta:
            self.best, self.best_epoch, self.wait = value, fit.epoch, 0
            if self.cfg.enabled and self.cfg.restore_best:
                self.best_weights = {k: v.detach().clone() for k, v in fit.model.state_dict().items()}
        else:
            self.wait += 1
            if self.cfg.enabled and self.wait >= self.cfg.patience:
                fit.request_stop(f"early stopping: {self.cfg.monitor} has not improved for {self.wait} epochs (best at epoch {self.best_epoch})")

    def on_train_end(self, fit: Fit) -> None:
        if self.best_weights is not None:
            fit.model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "best_weights": self.best_weights}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.best_weights = state["best_weights"]


class ThrottledWrite:
    """Hold the latest write and do it at most once every ``interval`` seconds, plus at ``flush``.

    Every epoch's state is captured when it ends; the disk sees it within ``interval`` seconds,
    and always when training ends, fails or is interrupted (``flush`` runs from ``close``). For
    epochs of milliseconds this keeps file writes from dominating training; for real epochs of
    seconds or more, every epoch is written.
    """

    def __init__(self, interval: float):
        self.interval = interval
        self.last = time.monotonic()  # as if written now: the first write comes ``interval`` seconds in
        self.pending: tuple | None = None

    def offer(self, write, *args) -> None:
        self.pending = (write, args)
        if time.monotonic() - self.last >= self.interval:
            self.flush()

    def flush(self) -> None:
        if self.pending is not None:
            write, args = self.pending
            self.pending = None
            write(*args)
            self.last = time.monotonic()


class HistoryCSV(Callback):
    """Keep ``history.csv`` (one row per epoch) up to date, written atomically."""

    def __init__(self, path: Path, interval: float = 2.0):
        self.path = path
        self.writes = ThrottledWrite(interval)

    def on_epoch_end(self, fit: Fit, logs: dict) -> None:
        self.writes.offer(self._write, list(fit.history))

    def _write(self, history: list[dict]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(history[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)
        atomic_write(self.path, buffer.getvalue())

    def close(self) -> None:
        self.writes.flush()


class Checkpoint(Callback):
    """Save everything a resumed run needs to ``path``, atomically.

    The state is copied (a consistent snapshot, ~1 MB for a small MLP, into buffers reused from
    one copy to the next) at the end of the first epoch, the last one, and every epoch that ends
    ``every`` seconds or more after the previous copy: every epoch once epochs take that long,
    and for epochs of milliseconds no copy dominates the training time. The disk write is
    throttled as ``ThrottledWrite`` says. So when training ends the checkpoint holds its last
    epoch, and after Ctrl-C or a NaN loss one at most ``every`` seconds of training back;
    ``fit.saved_epoch`` says which.
    """

    def __init__(self, path: Path, interval: float = 2.0, every: float = 0.5):
        self.path, self.every = path, every
        self.writes = ThrottledWrite(interval)
        self.snapshots = Snapshots()  # one set of buffers: a pending write is always the latest copy
        self.taken = -math.inf

    def on_epoch_end(self, fit: Fit, logs: dict) -> None:
        last = fit.stop_reason is not None or fit.epoch >= fit.cfg.epochs  # a callback before this one may stop it
        if not last and time.monotonic() - self.taken < self.every:
            return
        self.writes.offer(write_snapshot, self.path, *self.snapshots.take(fit.state_dict()))
        self.taken = time.monotonic()
        fit.saved_epoch = fit.epoch

    def close(self) -> None:
        self.writes.flush()


class ProgressBar(Callback):
    """A rich progress bar (epoch, step, loss, validation metric, ETA); silent off a terminal."""

    def __init__(self, console: Console, total_epochs: int, steps_per_epoch: int, metric: str):
        self.console, self.metric = console, metric
        self.total_epochs, self.steps = total_epochs, steps_per_epoch
        self.progress: Progress | None = None

    def on_train_begin(self, fit: Fit) -> None:
        if not self.console.is_terminal:
            return
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=self.console, transient=False,
        )
        self.progress.start()
        self.epochs_task = self.progress.add_task("epochs", total=self.total_epochs, completed=fit.epoch, epoch=f"{fit.epoch}/{self.total_epochs}", status="")
        self.steps_task = self.progress.add_task("steps", total=self.steps, epoch="  step", status="")
        self.last = time.monotonic()

    def on_batch_end(self, fit: Fit) -> None:
        if self.progress is not None:
            self.progress.advance(self.steps_task)

    def on_epoch_end(self, fit: Fit, logs: dict) -> None:
        if self.progress is None:
            return
        status = f"loss {logs['train_loss']:.4f}  val_loss {logs['val_loss']:.4f}"
        if self.metric in logs and self.metric != "val_loss":
            status += f"  {self.metric} {logs[self.metric]:.4f}"
        self.progress.update(self.epochs_task, completed=fit.epoch, epoch=f"{fit.epoch}/{self.total_epochs}", status=status)
        self.progress.reset(self.steps_task)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


class GradientStats(Callback):
    """Per-layer gradient norms and the share of dead ReLU units, per epoch, kept in ``gradients.json``.

    A layer is a module with a weight matrix (Linear, Conv, ...); its gradient norm is the L2
    norm of that weight's gradient, taken after backward and before clipping (so clipping
    does not hide an explosion), on the first optimizer step of each epoch and every ``every``-th
    after it (``evaluate.gradient_every``; a norm costs ~5% of a small MLP's step, so sampling keeps
    the diagnosis out of the training time; 1 watches every step). A ReLU unit is dead in an epoch when
    it outputs 0 for every row of that epoch's validation pass (forward hooks registered for
    that pass only, so training steps pay nothing). Both are accumulated on the device
    and read with one host sync per epoch.

    ``gradients.json`` (20 steps an epoch: 2 sampled)::

        {"every": 10, "layers": [{"name": "0", "type": "Linear", "shape": [128, 61]}, ...],
         "activations": [{"name": "1", "type": "ReLU"}, ...],
         "epochs": [{"epoch": 1, "steps": 2, "norm_mean": [...], "norm_max": [...], "dead_share": [...]}]}

    ``norm_mean``/``norm_max`` hold one value per layer (null when a norm was inf or NaN). If
    training fails mid-epoch (a NaN loss), that epoch's norms are kept with ``"partial": true``.
    """

    def __init__(self, path: Path, every: int = 10, interval: float = 2.0):
        self.path, self.every = path, every
        self.writes = ThrottledWrite(interval)
        self.records: list[dict] = []
        self.fit: Fit | None = None
        self.hooks: list = []

    def on_train_begin(self, fit: Fit) -> None:
        self.fit = fit
        self.layers = [(name, m) for name, m in fit.model.named_modules()
                       if isinstance(getattr(m, "weight", None), torch.nn.Parameter) and m.weight.ndim >= 2 and m.weight.requires_grad]
        self.activations = [(name, m) for name, m in fit.model.named_modules() if isinstance(m, torch.nn.ReLU)]
        device = fit.batches.device
        self.no_grad = torch.zeros((), device=device)  # stands in for a layer that got no gradient this step
        self._reset(device)

    def _reset(self, device: torch.device) -> None:
        self.norm_sum = torch.zeros(len(self.layers), device=device)  # (L,)
        self.norm_max = torch.zeros(len(self.layers), device=device)  # (L,)
        self.sampled = 0
        self.epoch_steps = 0  # optimizer steps so far this epoch
        self.alive: list[torch.Tensor | None] = [None] * len(self.activations)  # per ReLU: (units,) bool

    def on_validation_begin(self, fit: Fit) -> None:
        # Hooked for the validation pass only: a module with a hook takes torch's slow call path
        # (~10 us a call), which training steps should not pay.
        self.hooks = [m.register_forward_hook(self._watch(i)) for i, (_, m) in enumerate(self.activations)]

    def on_validation_end(self, fit: Fit) -> None:
        self._unhook()

    def _unhook(self) -> None:
        for handle in self.hooks:
            handle.remove()
        self.hooks = []

    def _watch(self, index: int):
        def hook(module, inputs, output):
            # A unit fired on some row when its largest output is > 0. The units are laid out in the
            # output's own memory order (channels-last for convs), so the (rows, units) view is free
            # and the max runs over contiguous rows: ~5x faster than comparing every value.
            out = output.detach()
            order = sorted(range(1, out.dim()), key=lambda d: -out.stride(d))
            fired = out.permute(0, *order).reshape(len(out), -1).amax(0) > 0  # (units,)
            seen = self.alive[index]
            self.alive[index] = fired if seen is None else seen | fired
        return hook

    def on_after_backward(self, fit: Fit) -> None:
        self.epoch_steps += 1
        if not self.layers or (self.epoch_steps - 1) % self.every:
            return
        grads = [m.weight.grad if m.weight.grad is not None else self.no_grad for _, m in self.layers]
        # One fused kernel for all L norms (what clip_grad_norm_ uses); stays on the device.
        norms = torch.stack(torch._foreach_norm(grads))  # (L,)
        self.norm_sum += norms
        torch.maximum(self.norm_max, norms, out=self.norm_max)  # NaN propagates, so it is seen
        self.sampled += 1

    def on_epoch_end(self, fit: Fit, logs: dict) -> None:
        self.records.append({"epoch": fit.epoch, **self._read()})
        self._reset(self.norm_sum.device)
        self.writes.offer(self._write, list(self.records))

    def _read(self) -> dict:
        """This epoch's numbers, copied to the host in one transfer."""
        dead = [1 - alive.float().mean() for alive in self.alive if alive is not None]
        parts = [self.norm_sum / max(self.sampled, 1), self.norm_max, torch.stack(dead) if dead else self.norm_max[:0]]
        values = torch.cat([part.reshape(-1).float() for part in parts]).tolist()  # the one sync per epoch
        n = len(self.layers)
        record = {"steps": self.sampled, "norm_mean": [], "norm_max": []}
        if self.sampled:
            record["norm_mean"] = [_finite_or_none(v) for v in values[:n]]
            record["norm_max"] = [_finite_or_none(v) for v in values[n : 2 * n]]
        record["dead_share"] = [round(v, 4) for v in values[2 * n :]]
        return record

    def _write(self, records: list[dict]) -> None:
        facts = {
            "every": self.every,
            "layers": [{"name": name, "type": type(m).__name__, "shape": list(m.weight.shape)} for name, m in self.layers],
            "activations": [{"name": name, "type": type(m).__name__} for name, m in self.activations],
            "epochs": records,
        }
        atomic_write(self.path, json.dumps(facts, allow_nan=False) + "\n")

    def close(self) -> None:
        self._unhook()  # a validation pass that failed
        # A run that failed mid-epoch (NaN loss) keeps the norms of that epoch: they show why.
        if self.fit is not None and self.layers and self.sampled:
            self.records.append({"epoch": self.fit.epoch + 1, "partial": True, **self._read(), "dead_share": []})
            self.writes.offer(self._write, list(self.records))
            self.sampled = 0
        self.writes.flush()

    def state_dict(self) -> dict:
        return {"records": json.dumps(self.records)}

    def load_state_dict(self, state: dict) -> None:
        self.records = json.loads(state.get("records", "[]"))


def _finite_or_none(value: float) -> float | None:
    """4 significant digits are plenty for a diagnosis; JSON has no inf or NaN, so those are null."""
    return float(f"{value:.4g}") if math.isfinite(value) else None
