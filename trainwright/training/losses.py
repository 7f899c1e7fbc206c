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


def build_loss(name: str, class_weights: torch.Tensor | None = None) -> LossFn:
    """Example: ``build_loss("cross_entropy")(logits (B, C), labels (B,)) -> scalar``.

    ``class_weights`` (C,): each row's loss weighted by its class's weight, the mean taken over the
    weights (PyTorch's weighted cross-entropy; the same for the binary loss).
    """
    if name == "bce":
        if class_weights is None:
            return lambda out, y: F.binary_cross_entropy_with_logits(out.squeeze(1), y.to(out.dtype))

        def weighted_bce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            w = class_weights[y]  # (B,)
            return (F.binary_cross_entropy_with_logits(out.squeeze(1), y.to(out.dtype), reduction="none") * w).sum() / w.sum()

        return weighted_bce
    if name == "cross_entropy":
        return F.cross_entropy if class_weights is None else lambda out, y: F.cross_entropy(out, y, weight=class_weights)
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


def balanced_class_weights(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """rows / (classes x the class's rows) for each class of ``y`` (N,) (scikit-learn's "balanced"); a class
    absent from ``y`` gets weight 0 (it has no rows to weigh).

    Example:
        >>> balanced_class_weights(torch.tensor([0, 0, 0, 1]), 2)
        tensor([0.6667, 2.0000])
    """
    counts = torch.bincount(y, minlength=n_classes).double()
    return torch.where(counts > 0, len(y) / (n_classes * counts.clamp_min(1)), 0.0).float()
