"""``history.csv``: one row per epoch, kept up to date on disk."""

from __future__ import annotations

import csv
import io

from trainwright.rundir import RunDir
from trainwright.training.callbacks.base import Callback, ThrottledWrite
from trainwright.training.state import TrainingState


class HistoryCSV(Callback):
    """Keep ``history.csv`` (one row per epoch, the columns of the first row) up to date, written atomically.

    Example:
        >>> HistoryCSV(run_dir)   # writes run_dir.history
    """

    order = 20

    def __init__(self, run_dir: RunDir, interval: float = 2.0):
        self.run_dir = run_dir
        self.writes = ThrottledWrite(interval, run_dir.in_background)  # off the training thread

    def on_train_begin(self, state: TrainingState) -> None:
        if state.history:  # a resumed run: the file may hold epochs past its checkpoint, or miss some
            self.writes.offer(self._write, list(state.history))

    def on_epoch_end(self, state: TrainingState, logs: dict) -> None:
        self.writes.offer(self._write, list(state.history))

    def _write(self, history: list[dict]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(history[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)
        self.run_dir.write_text(self.run_dir.history, buffer.getvalue())

    def close(self) -> None:
        self.writes.flush()  # the last rows, written while the run goes on
