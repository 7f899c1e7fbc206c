"""What a callback sees of a training run: a small protocol that every recipe's loop state meets.

A supervised fit holds one model and one optimizer; a GAN two of each; an RL loop a policy and
no data set. Callbacks (early stopping, checkpoints, the history writer, the progress bar) work
against this protocol only, so each loop reuses them unchanged.

Example:
    >>> def on_epoch_end(self, state: TrainingState, logs: dict) -> None:
    ...     if logs["val_loss"] > 10:
    ...         state.request_stop("the validation loss blew up")
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn


class TrainingState(Protocol):
    """The run as callbacks see it."""

    epoch: int  # epochs completed
    history: list[dict]  # one dict of numbers per finished epoch
    stop_reason: str | None  # set by request_stop
    saved_epoch: int  # the epoch the checkpoint holds (set by the Checkpoint callback)

    @property
    def max_epochs(self) -> int:
        """The epochs the run plans to train."""

    @property
    def modules(self) -> dict[str, nn.Module]:
        """The trained networks by name: {"model": ...}, or {"generator": ..., "discriminator": ...}."""

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Their optimizers by name."""

    def request_stop(self, reason: str) -> None:
        """Ask the loop to stop after this epoch; ``reason`` is printed and recorded."""

    def state_dict(self) -> dict:
        """Everything a resumed run needs (a checkpoint is this)."""

    def load_state_dict(self, state: dict) -> None: ...
