"""A progress display: epochs and steps with the loss, the validation metric and the time left."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from trainwright.training.callbacks.base import Callback
from trainwright.training.state import TrainingState


class ProgressBar(Callback):
    """A rich progress bar (epoch, step, loss, validation metric, ETA); silent off a terminal."""

    order = 40  # last: it shows what the others decided

    def __init__(self, console: Console, total_epochs: int, steps_per_epoch: int, metric: str):
        self.console, self.metric = console, metric
        self.total_epochs, self.steps = total_epochs, steps_per_epoch
        self.progress: Progress | None = None

    def on_train_begin(self, state: TrainingState) -> None:
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

    def on_epoch_end(self, state: TrainingState, logs: dict) -> None:
        if self.progress is None:
            return
        # What this loop logged of the training loss, the validation loss and the monitored metric.
        keys = dict.fromkeys(("train_loss", "val_loss", self.metric))
        status = "  ".join(f"{'loss' if key == 'train_loss' else key} {logs[key]:.4f}" for key in keys if key in logs)
        self.progress.update(self.epochs_task, completed=state.epoch, epoch=f"{state.epoch}/{self.total_epochs}", status=status)
        self.progress.reset(self.steps_task)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
