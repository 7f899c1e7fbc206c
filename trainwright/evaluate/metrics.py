"""Metrics per task, computed with torchmetrics' functional API.

Classification (macro-averaged over classes, binary included): accuracy, balanced accuracy, precision, recall,
f1, auroc, plus the confusion matrix. Regression, in the target's original units: mse, rmse, mae, r2; forecasts add
smape, mase and mape where it is defined (every step of every test window counts once).

torchmetrics is imported when a metric is first computed, not with this module: importing it
loads every metric it has, matplotlib and scipy.signal (about half a second of CPU), which
``predict_outputs``'s users (the estimate, validation, prediction) do not need.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from trainwright.evaluate.intervals import class_scores


def load_metrics() -> None:
    """Load torchmetrics now (heavy: see the module docstring): a process that scores later loads it early."""
    from torchmetrics.functional import classification, regression  # noqa: F401


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


def predicted_classes(probs: torch.Tensor, threshold: float | None = None) -> torch.Tensor:
    """(N,) class indices: the most probable class, or for two classes p(second) >= ``threshold`` when one is set."""
    if threshold is not None and probs.shape[1] == 2:
        return (probs[:, 1] >= threshold).long()
    return probs.argmax(1)


def classification_metrics(probs: torch.Tensor, y: torch.Tensor, threshold: float | None = None) -> dict[str, float]:
    """``probs`` (N, C) class probabilities, ``y`` (N,) class indices; ``threshold``: a binary decision threshold.

    Balanced accuracy is the mean recall over the classes present (scikit-learn's definition): on
    data that are 95% one class, always predicting it scores accuracy 0.95 but balanced accuracy 0.5.

    Example:
        >>> classification_metrics(torch.tensor([[0.9, 0.1], [0.2, 0.8]]), torch.tensor([0, 1]))["accuracy"]
        1.0
    """
    from torchmetrics.functional import classification as C  # heavy: see the module docstring

    n_classes = probs.shape[1]
    preds = predicted_classes(probs, threshold)
    macro = {"num_classes": n_classes, "average": "macro"}
    cells = np.bincount((y * n_classes + preds).numpy(), minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    scores = {
        # Plain fraction correct, not the macro average of per-class recall.
        "accuracy": (preds == y).float().mean(),
        "balanced_accuracy": class_scores(cells)["balanced_accuracy"],
        "precision": C.multiclass_precision(preds, y, **macro),
        "recall": C.multiclass_recall(preds, y, **macro),
        "f1": C.multiclass_f1_score(preds, y, **macro),
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


def choose_threshold(probs: torch.Tensor, y: torch.Tensor) -> float:
    """The binary decision threshold on p(second class) with the best balanced accuracy on these rows (the
    validation split), ties to the one nearest 0.5: on imbalanced data the usual 0.5 can leave the rare
    class almost never predicted.

    Example:
        >>> choose_threshold(torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.6, 0.4], [0.8, 0.2]]), torch.tensor([0, 1, 1, 0]))
        0.25
    """
    p, positive = probs[:, 1].double().numpy(), y.numpy() == 1
    if positive.all() or not positive.any():
        return 0.5
    values = np.unique(p)
    candidates = np.concatenate([[values[0]], (values[1:] + values[:-1]) / 2, [values[-1] + 1e-9]])  # between the scores
    tpr = np.array([(p[positive] >= t).mean() for t in candidates])
    tnr = np.array([(p[~positive] < t).mean() for t in candidates])
    score = (tpr + tnr) / 2
    best = np.flatnonzero(score >= score.max() - 1e-12)
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


def confusion_matrix(probs: torch.Tensor, y: torch.Tensor, threshold: float | None = None) -> list[list[int]]:
    """Rows are true classes, columns predicted classes."""
    from torchmetrics.functional import classification as C  # heavy: see the module docstring

    n = probs.shape[1]
    return C.multiclass_confusion_matrix(predicted_classes(probs, threshold), y, num_classes=n).tolist()


def regression_metrics(pred: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """``pred`` and ``y`` (N,) or (N, 1) in original units."""
    from torchmetrics.functional import regression as R  # heavy: see the module docstring

    pred, y = pred.reshape(-1).double(), y.reshape(-1).double()
    mse = float(R.mean_squared_error(pred, y))
    r2 = float(R.r2_score(pred, y)) if len(y) > 1 else float("nan")
    return {"mse": mse, "rmse": mse**0.5, "mae": float(R.mean_absolute_error(pred, y)), "r2": r2}


def forecast_metrics(pred: torch.Tensor, y: torch.Tensor, scale: float | None = None) -> dict[str, float]:
    """Forecast errors over every forecast step, in original units: MAE, RMSE, sMAPE, MASE (when ``scale``,
    the in-sample naive forecast's MAE on the training part, is given), MAPE (only where it is defined:
    no actual value is zero), then MSE and R².

    sMAPE is the mean of 2|F - A| / (|A| + |F|) (a fraction from 0 to 2; 0 where both are 0); MASE is
    the MAE over ``scale`` (below 1: better than the naive forecast was on the training part).

    Example:
        >>> forecast_metrics(torch.tensor([11.0, 19.0]), torch.tensor([10.0, 20.0]))["mape"]
        0.075
    """
    from torchmetrics.functional import regression as R  # heavy: see the module docstring

    pred, y = pred.reshape(-1).double(), y.reshape(-1).double()
    base = regression_metrics(pred, y)
    out = {"mae": base["mae"], "rmse": base["rmse"]}
    total = y.abs() + pred.abs()
    out["smape"] = float(torch.where(total > 0, 2 * (pred - y).abs() / total.clamp_min(1e-300), 0.0).mean())
    if scale:
        out["mase"] = base["mae"] / scale
    # MAPE divides by each actual value: a zero (or a value a millionth of the largest) makes it meaningless.
    if len(y) and bool((y.abs() > 1e-6 * y.abs().max()).all()):
        out["mape"] = float(R.mean_absolute_percentage_error(pred, y))
    return {**out, "mse": base["mse"], "r2": base["r2"]}
