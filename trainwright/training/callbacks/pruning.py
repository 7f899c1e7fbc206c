"""Pruning: hand each epoch's validation metric to a hyperparameter search and stop when it says so."""

from __future__ import annotations

from collections.abc import Callable

from trainwright.training.callbacks.base import Callback
from trainwright.training.state import TrainingState


class Pruning(Callback):
    """Report ``monitor`` after every epoch through ``report(epoch, value) -> prune?``; a yes stops the run.

    The search engine stays outside the loop: ``recipes/tune.py`` passes a ``report`` that calls
    Optuna's ``trial.report`` and ``trial.should_prune``. ``pruned_at`` is the epoch it stopped at.

    Example:
        >>> Pruning("val_accuracy", lambda epoch, value: value < 0.5 and epoch >= 5)
    """

    order = 5  # after early stopping (0) has seen the epoch, before the history and checkpoint are written

    def __init__(self, monitor: str, report: Callable[[int, float], bool]):
        self.monitor, self.report = monitor, report
        self.pruned_at: int | None = None

    def on_epoch_end(self, state: TrainingState, logs: dict) -> None:
        if self.pruned_at is None and state.stop_reason is None and self.report(state.epoch, logs[self.monitor]):
            self.pruned_at = state.epoch
            state.request_stop(f"pruned by the search at epoch {state.epoch}: {self.monitor} {logs[self.monitor]:.4f} "
                               "is behind the other trials at this epoch")
