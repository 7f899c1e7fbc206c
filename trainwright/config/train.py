"""The ``train`` section: epochs, batches, optimizer, schedule, loss, regularization, early stopping,
device and precision."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from trainwright.config.base import Device, Frozen


class OptimizerConfig(Frozen):
    name: Literal["sgd", "adam", "adamw", "rmsprop", "adagrad"] = "adam"
    # find: an exponential learning-rate sweep picks it before training (training/lr_find.py).
    lr: float | Literal["find"] = 1e-3
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)

    @field_validator("lr", mode="before")
    @classmethod
    def _lr(cls, value: Any) -> Any:
        if value == "find":
            return value
        if isinstance(value, str):  # YAML reads 1e-6 (no dot) as text; as before, a number in text is a number
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
        raise ValueError("lr must be a number > 0, or find (an exponential sweep picks it before training)")

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> OptimizerConfig:
        if self.nesterov and (self.name != "sgd" or self.momentum == 0):
            raise ValueError("nesterov needs name: sgd and momentum > 0")
        return self


class ScheduleConfig(Frozen):
    name: Literal["none", "step", "exponential", "cosine", "one_cycle", "plateau"] = "none"
    warmup_epochs: int = Field(0, ge=0, description="linear warmup from lr/10 before the schedule")
    step_size: int = Field(10, ge=1, description="step: epochs between decays")
    gamma: float = Field(0.1, gt=0, le=1, description="step/exponential/plateau decay factor")
    patience: int = Field(5, ge=0, description="plateau: epochs without improvement")
    min_lr: float = Field(0.0, ge=0)
    max_lr: float | None = Field(None, gt=0, description="one_cycle peak (default 10 x lr)")

    @model_validator(mode="after")
    def _warmup_compatible(self) -> ScheduleConfig:
        if self.warmup_epochs and self.name in ("plateau", "one_cycle"):
            raise ValueError(f"warmup_epochs cannot be combined with {self.name} (one_cycle warms up itself)")
        return self


class EarlyStoppingConfig(Frozen):
    enabled: bool = True
    monitor: str = "val_loss"
    mode: Literal["auto", "min", "max"] = "auto"
    patience: int = Field(20, ge=1)
    min_delta: float = Field(0.0, ge=0)
    restore_best: bool = True


class TrainConfig(Frozen):
    epochs: int = Field(100, ge=1)
    batch_size: int | Literal["full"] = 64
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    loss: Literal["auto", "mse", "mae", "huber", "bce", "cross_entropy"] = "auto"
    # Classifiers: balanced weighs each class's rows in the loss by rows / (classes x the class's rows),
    # counted on the training split, so a rare class counts as much as a common one.
    class_weight: Literal["none", "balanced"] = "none"
    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)
    clip_grad_norm: float | None = Field(None, gt=0)
    clip_grad_value: float | None = Field(None, gt=0)
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    seed: int = 0
    device: Device = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="bf16/fp16: autocast; fp16 adds loss scaling")
    compile: bool | Literal["auto"] = Field(
        "auto", description="torch.compile the training step; auto: only when the timed steps project that the saving "
        "over the run exceeds 1.5 x the compile time (a run projected under 120 s of eager training never compiles)")
    accumulate: int = Field(1, ge=1, description="batches per optimizer step (gradient accumulation)")
    strategy: Literal["ddp", "fsdp"] = Field(
        "ddp", description="several processes: ddp keeps a whole model in each (DistributedDataParallel); fsdp shards "
        "parameters, gradients and optimizer state across them (PyTorch's FSDP2, fully_shard)")
    data_placement: Literal["auto", "device", "stream"] = Field(
        "auto", description="device: training data resident on the device; stream: DataLoader workers, pinned memory, "
        "non-blocking copies; auto: device unless the training data would take over half the GPU's free memory")
    loader_workers: int = Field(2, ge=0, description="DataLoader worker processes when the data is streamed")
    # Transfer learning (model.backbone, or pretrained timm/torchvision weights): the epoch from which frozen
    # backbone layers train too, and their learning rate as a share of optimizer.lr whenever they train.
    unfreeze_at_epoch: int | None = Field(None, ge=2, description="a frozen backbone only: unfreeze it from this epoch")
    backbone_lr_scale: float = Field(0.1, gt=0, le=1, description="a backbone (a run's, pretrained) only: lr x this")
    # A kill loses at most this much training: the state is checkpointed at the first batch boundary
    # after each interval (mid-epoch too), stretched to 20x what one checkpoint takes (at most 5%).
    checkpoint_every: str = Field("10s", description="training time between checkpoints: 10s, 90s, 5m, 1h (a number: seconds)")

    @field_validator("batch_size", mode="before")
    @classmethod
    def _batch_size(cls, value: Any) -> int | str:
        if value == "full" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        raise ValueError("batch_size must be an integer >= 1 (1 is stochastic) or 'full' (full-batch)")

    @field_validator("checkpoint_every", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> str:
        seconds = duration_seconds(value)
        if seconds is None or seconds <= 0:
            raise ValueError("checkpoint_every must be a positive duration such as 30s, 5m or 1h (a number means seconds)")
        return value if isinstance(value, str) else f"{value:g}s"

    @property
    def checkpoint_seconds(self) -> float:
        return duration_seconds(self.checkpoint_every)


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def duration_seconds(value: Any) -> float | None:
    """``"90s"``, ``"5m"``, ``"1h"``, ``"250ms"`` or a number of seconds -> seconds; None if it is not one.

    Example:
        >>> duration_seconds("5m"), duration_seconds(30)
        (300.0, 30.0)
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    found = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|min|m|h)?\s*", value) if isinstance(value, str) else None
    return float(found.group(1)) * _UNITS[found.group(2) or "s"] if found else None
