"""What the tracking callbacks share: the ``Tracker`` base, the warning they give, the ``track`` extra.

A tracker is a training callback (``training/callbacks``: flat ``on_*`` hooks over the training-state
protocol, so any recipe's loop drives it) with one more step: ``finish(run_dir, metrics)``, which the
shared finish step (``recipes/finish.finish``) calls after the report, then ``close()``. The training
loop closes its callbacks when it stops; a tracker only hands its worker process what waits then, and
closes for good after ``finish`` (a run that never gets there, stopped by an error or Ctrl-C, is closed
by its workers when this process ends).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterable
from pathlib import Path

from trainwright.errors import TrainwrightError
from trainwright.training.callbacks import Callback


class Tracker(Callback):
    """A callback that logs a run somewhere teams look; ``finish`` takes the final metrics and the run's files."""

    order = 90  # after the run's own callbacks: it logs what they settled

    def finish(self, run_dir: str | Path, metrics: dict) -> None:
        """After the report: the final metrics (``metrics.json``, {} for a run that diverged) and the run directory."""

    def summary(self) -> str:
        """One console line: where the run was logged and how to look at it."""
        return ""


def trackers_in(callbacks: Iterable[Callback]) -> list[Tracker]:
    """The trackers among a run's callbacks, for the finish step."""
    return [cb for cb in callbacks if isinstance(cb, Tracker)]


class TrackingWarning(UserWarning):
    """A tracking backend could not take what the run logged; the run itself is unaffected."""


def require(module: str, key: str) -> None:
    """A TrainwrightError naming the ``track`` extra when ``module`` is not installed (nothing is imported)."""
    if importlib.util.find_spec(module) is None:
        raise TrainwrightError(f"{key} needs the {module} package; install it with: pip install 'trainwright[track]'")


def numbers(tree: dict, sep: str = ".", prefix: str = "") -> dict[str, float]:
    """The finite numbers in a nested dict, under flattened keys.

    Example:
        >>> numbers({"test": {"accuracy": 0.9, "classes": ["a"]}, "epochs": 5}, sep="_")
        {'test_accuracy': 0.9, 'epochs': 5.0}
    """
    flat: dict[str, float] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(numbers(value, sep, f"{prefix}{key}{sep}"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            flat[f"{prefix}{key}"] = float(value)
    return flat
