"""The loss for a task, and how to turn model outputs into probabilities.

Heads: binary -> 1 logit (sigmoid + binary cross-entropy, fused as BCEWithLogits for stability);
multiclass -> C logits (softmax + cross-entropy, fused); regression -> linear values with MSE,
MAE or Huber.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from trainwright.errors import TrainwrightError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_FOR_TASK = {"binary": ("bce",), "multiclass": ("cross_entropy",), "regression": ("mse", "mae", "huber")}


def resolve_loss(task: str, name: str) -> str:
    """The loss name for ``task``; ``auto`` picks the first that fits. A mismatch is a config error."""
    allowed = _FOR_TASK[task]
    if name == "auto":
        return allowed[0]
    if name not in allowed:
        raise TrainwrightError(f"train.loss = {name!r} does not fit a {task} task; use one of: {', '.join(allowed)} (or auto)")
    return name


def build_loss(name: str) -> LossFn:
    """Example: ``build_loss("cross_entropy")(logits (B, C), labels (B,)) -> scalar``."""
    if name == "bce":
        return lambda out, y: F.binary_cross_entropy_with_logits(out.squeeze(1), y.to(out.dtype))
    if name == "cross_entropy":
        return F.cross_entropy
    if name == "mae":
        return F.l1_loss
    if name == "huber":
        return F.huber_loss
    return F.mse_loss


def probabilities(outputs: torch.Tensor, task: str) -> torch.Tensor:
    """(N, C) class probabilities for classification outputs; binary becomes [1 - p, p]."""
    if task == "binary":
        p = torch.sigmoid(outputs.squeeze(1).float())
        return torch.stack([1 - p, p], dim=1)
    return torch.softmax(outputs.float(), dim=1)
