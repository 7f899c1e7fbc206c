"""A progress display: epochs and steps with the loss, the validation metric and the time left.

On a terminal, a live bar. Off a terminal (a log file, nohup, CI) a bar would print nothing useful,
so a plain line instead: at the end of an epoch when ``every`` seconds (10) have passed since the
last line, and within a long epoch every ``within`` seconds (30), so ``train ... > log`` always shows
progress.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from trainwright.training.callbacks.base import Callback
from trainwright.training.state import TrainingState


class ProgressBar(Callback):
    """A rich progress bar (epoch, step, loss, validation metric, ETA) on a terminal; plain lines off one."""

    order = 40  # last: it shows what the others decided

    def __init__(self, console: Console, total_epochs: int, steps_per_epoch: int, metric: str, every: float = 10.0,
                 within: float = 30.0):
        self.console, self.metric = console, metric
        self.total_epochs, self.steps = total_epochs, steps_per_epoch
        self.every, self.within = every, within
        self.progress: Progress | None = None
        self.started = self.last = time.monotonic()
        self.step = 0

    def on_train_begin(self, state: TrainingState) -> None:
        self.started = self.last = time.monotonic()
        self.first_epoch = state.epoch
        if not self.console.is_terminal:
            return
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=self.console, transient=False,
        )
        self.progress.start()
        self.epochs_task = self.progress.add_task(
            "epochs", total=self.total_epochs, completed=state.epoch, epoch=f"{state.epoch}/{self.total_epochs}", status=""
        )
        self.steps_task = self.progress.add_task(
            "steps", total=self.steps, completed=getattr(state, "step", 0), epoch="  step", status=""
        )  # a run resumed mid-epoch starts part-way
        self.last = time.monotonic()

    def on_batch_end(self, state: TrainingState) -> None:
        if self.progress is not None:
            self.progress.advance(self.steps_task)
            return
        self.step += 1
        now = time.monotonic()
        if now - self.last >= self.within:  # a long epoch: say where it is
            self.last = now
            self.console.print(f"epoch {state.epoch + 1}/{self.total_epochs}: step {self.step}/{self.steps} "
                               f"({_duration(now - self.started)} so far)", highlight=False)

    def on_epoch_end(self, state: TrainingState, logs: dict) -> None:
        if self.progress is None:
            self.step, now = 0, time.monotonic()
            if now - self.last >= self.every:
                self.last = now
                done = state.epoch - self.first_epoch
                left = (now - self.started) / max(done, 1) * (self.total_epochs - state.epoch)
                self.console.print(f"epoch {state.epoch}/{self.total_epochs}: {self.status(logs)} "
                                   f"({_duration(now - self.started)}, at most {_duration(left)} left)", highlight=False)
            return
        self.progress.update(self.epochs_task, completed=state.epoch, epoch=f"{state.epoch}/{self.total_epochs}",
                             status=self.status(logs))
        self.progress.reset(self.steps_task)

    def status(self, logs: dict) -> str:
        """What this loop logged of the training loss, the validation loss and the monitored metric."""
        keys = dict.fromkeys(("train_loss", "val_loss", self.metric))
        return "  ".join(f"{'loss' if key == 'train_loss' else key} {logs[key]:.4f}" for key in keys if key in logs)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _duration(seconds: float) -> str:
    """12 s, 4.5 min, 2.1 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"
