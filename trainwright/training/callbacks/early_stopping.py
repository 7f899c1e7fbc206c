"""Early stopping: stop when a monitored value stops improving, and keep the best weights."""

from __future__ import annotations

import math

import torch

from trainwright.config import EarlyStoppingConfig
from trainwright.training.callbacks.base import Callback
from trainwright.training.distributed import like, plain
from trainwright.training.state import TrainingState


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs; keep the
    best weights of every module in memory and put them back at the end when ``restore_best``.

    Disabled (``enabled: false``), it still tracks the best epoch, which the run reports.

    Example:
        >>> EarlyStopping(EarlyStoppingConfig(monitor="val_loss", patience=10))
    """

    order = 0  # first: a later callback (the checkpoint) sees this epoch's best weights and stop request

    def __init__(self, cfg: EarlyStoppingConfig):
        self.cfg = cfg
        mode = cfg.mode if cfg.mode != "auto" else ("min" if cfg.monitor.endswith(("loss", "mse", "rmse", "mae")) else "max")
        self.sign = 1.0 if mode == "min" else -1.0  # compare sign * value: smaller is better
        self.best = math.inf
        self.best_epoch = 0
        self.wait = 0
        self.best_weights: dict[str, dict[str, torch.Tensor]] | None = None  # module name -> its state dict

    def on_epoch_end(self, state: TrainingState, logs: dict) -> None:
        if self.cfg.monitor not in logs:
            raise KeyError(f"train.early_stopping.monitor = {self.cfg.monitor!r} is not logged; logged: {', '.join(logs)}")
        value = self.sign * logs[self.cfg.monitor]
        if value < self.best - self.cfg.min_delta:
            self.best, self.best_epoch, self.wait = value, state.epoch, 0
            if self.cfg.enabled and self.cfg.restore_best:
                self.best_weights = {name: {k: v.detach().clone() for k, v in module.state_dict().items()}
                                     for name, module in state.modules.items()}
        else:
            self.wait += 1
            if self.cfg.enabled and self.wait >= self.cfg.patience:
                state.request_stop(
                    f"early stopping: {self.cfg.monitor} has not improved for {self.wait} epochs (best at epoch "
                    f"{self.best_epoch})"
                )

    def on_train_end(self, state: TrainingState) -> None:
        if self.best_weights is not None:
            for name, module in state.modules.items():
                current = module.state_dict()  # FSDP: a checkpoint's full weights sharded as the module's are
                module.load_state_dict({k: like(v, current[k]) for k, v in self.best_weights[name].items()})

    def state_dict(self) -> dict:
        weights = self.best_weights and {name: {k: plain(v) for k, v in kept.items()}  # FSDP: gathered whole
                                         for name, kept in self.best_weights.items()}
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "best_weights": weights}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        weights = state["best_weights"]
        if weights and any(isinstance(v, torch.Tensor) for v in weights.values()):
            weights = {"model": weights}  # a checkpoint from before the states were kept per module
        self.best_weights = weights
