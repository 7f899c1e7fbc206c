"""What the tracking callbacks rely on: the training-state protocol, a no-op callback base, the extra.

Any training loop (supervised, GAN, ...) drives a callback through flat ``on_*`` hooks, passing a
state with ``epoch`` (epochs completed), ``history`` (one dict of numbers per epoch), ``modules`` and
``optimizers`` (by name) and ``request_stop(reason)``.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Protocol

import torch
from torch import nn

from trainwright.errors import TrainwrightError


class State(Protocol):
    epoch: int
    history: list[dict]
    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]

    def request_stop(self, reason: str) -> None: ...


class Callback:
    """Base with no-op hooks; subclasses override what they need."""

    def on_train_begin(self, state: State) -> None: ...
    def on_after_backward(self, state: State) -> None:
        """Gradients are in ``.grad``, before clipping and the optimizer step."""
    def on_batch_end(self, state: State) -> None: ...
    def on_epoch_end(self, state: State, logs: dict) -> None: ...
    def on_train_end(self, state: State) -> None: ...
    def close(self) -> None:
        """Release what the callback holds; called after training, also when it fails."""
    def state_dict(self) -> dict:
        return {}
    def load_state_dict(self, state: dict) -> None: ...


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
