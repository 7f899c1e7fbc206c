"""Metrics per task, computed with torchmetrics' functional API.

Classification (macro-averaged over classes, binary included): accuracy, precision, recall, f1, auroc, plus the
confusion matrix. Regression, in the target's original units: mse, rmse, mae, r2; forecasts add
mape (every step of every test window counts once).

torchmetrics is imported when a metric is first computed, not with this module: importing it
loads every metric it has, matplotlib and scipy.signal (about half a second of CPU), which
``predict_outputs``'s users (the estimate, validation, prediction) do not need.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def predict_outputs(
    model: nn.Module, x: torch.Tensor, batch_size: int = 4096, device: torch.device | None = None
) -> torch.Tensor:
    """Model outputs for ``x`` (N, ...) in eval mode, in batches: (N, outputs); each batch moved to ``device`` when given."""
    model.eval()
    device = device or x.device
    if len(x) <= batch_size:
        return model(x.to(device, non_blocking=True))
    return torch.cat([model(x[i : i + batch_size].to(device, non_blocking=True)) for i in range(0, len(x), batch_size)])


def classification_metrics(probs: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """``probs`` (N, C) class probabilities, ``y`` (N,) class indices.

    Example:
        >>> classification_metrics(torch.tensor([[0.9, 0.1], [0.2, 0.8]]), torch.tensor([0, 1]))["accuracy"]
        1.0
    """
    from torchmetrics.functional import classification as C  # heavy: see the module docstring

    n_classes = probs.shape[1]
    macro = {"num_classes": n_classes, "average": "macro"}
    scores = {
        # Plain fraction correct, not the macro average of per-class recall.
        "accuracy": (probs.argmax(1) == y).float().mean(),
        "precision": C.multiclass_precision(probs, y, **macro),
        "recall": C.multiclass_recall(probs, y, **macro),
        "f1": C.multiclass_f1_score(probs, y, **macro),
    }
    # AUROC is undefined when a class is absent from y; it is reported as NaN then.
    present = len(torch.unique(y)) == n_classes
    if n_classes == 2:
        auroc = C.binary_auroc(probs[:, 1], y) if present else None
    else:
        auroc = C.multiclass_auroc(probs, y, num_classes=n_classes, average="macro") if present else None
    out = {k: float(v) for k, v in scores.items()}
    out["auroc"] = float(auroc) if auroc is not None else float("nan")
    return out


def confusion_matrix(probs: torch.Tensor, y: torch.Tensor) -> list[list[int]]:
    """Rows are true classes, columns predicted classes."""
    from torchmetrics.functional import classification as C  # heavy: see the module docstring

    n = probs.shape[1]
    if n == 2:
        return C.binary_confusion_matrix(probs[:, 1], y).tolist()
    return C.multiclass_confusion_matrix(probs, y, num_classes=n).tolist()


def regression_metrics(pred: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """``pred`` and ``y`` (N,) or (N, 1) in original units."""
    from torchmetrics.functional import regression as R  # heavy: see the module docstring

    pred, y = pred.reshape(-1).double(), y.reshape(-1).double()
    mse = float(R.mean_squared_error(pred, y))
    r2 = float(R.r2_score(pred, y)) if len(y) > 1 else float("nan")
    return {"mse": mse, "rmse": mse**0.5, "mae": float(R.mean_absolute_error(pred, y)), "r2": r2}


def forecast_metrics(pred: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Regression metrics plus MAPE (a fraction: 0.05 is 5%), over every forecast step, in original units.

    Example:
        >>> forecast_metrics(torch.tensor([11.0, 19.0]), torch.tensor([10.0, 20.0]))["mape"]
        0.075
    """
    from torchmetrics.functional import regression as R  # heavy: see the module docstring

    pred, y = pred.reshape(-1).double(), y.reshape(-1).double()
    return {**regression_metrics(pred, y), "mape": float(R.mean_absolute_percentage_error(pred, y))}
