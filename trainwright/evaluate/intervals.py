"""How sure a test score is: 95% intervals for the headline metrics, and a paired comparison of two models.

- Accuracy: the Wilson score interval of a binomial proportion (scipy's ``binomtest``), exact
  enough from a handful of rows up and never outside [0, 1].
- Every other headline metric (balanced accuracy, macro F1; MAE, RMSE, R²; a forecast's MAE, RMSE,
  sMAPE, MASE): a percentile bootstrap over the test rows (1000 resamples, seed 0). Forecast
  windows overlap and their errors run together, so they are resampled in blocks of consecutive
  windows (a moving-block bootstrap, blocks of max(horizon, N^(1/3)) windows).
- Two models on the same test rows (the network and a baseline): the difference of their scores on
  each resample of the rows, a paired bootstrap. A winner is called only when the 95% interval of
  the difference excludes 0 and there are at least 30 test rows (or windows); otherwise the two are level.

Example:
    >>> wilson(265, 270)
    (0.957..., 0.992...)
    >>> compare(net, base, y, "multiclass")["level"]   # class indices (N,) predicted by each, true y (N,)
    False
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import binomtest

CONFIDENCE = 0.95
RESAMPLES = 1000
MIN_ROWS = 30  # fewer test rows (or windows): the bootstrap cannot be trusted to tell two models apart
CHUNK = 5_000_000  # rows x resamples held at once


def wilson(correct: int, n: int) -> tuple[float, float]:
    """The 95% Wilson interval of ``correct`` successes in ``n`` trials."""
    if n == 0:
        return (math.nan, math.nan)
    ci = binomtest(int(correct), int(n)).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return (float(ci.low), float(ci.high))


def resamples(n: int, block: int = 1, count: int = RESAMPLES, seed: int = 0, width: int = 1):
    """Chunks of bootstrap resamples of ``range(n)``: int arrays (B, n); ``block`` > 1 draws runs of consecutive rows.
    ``width``: values per row (a forecast's horizon), so a chunk holds about ``CHUNK`` values."""
    rng = np.random.default_rng(seed)
    block = min(block, n)
    per_chunk = max(1, CHUNK // max(n * width, 1))
    done = 0
    while done < count:
        size = min(per_chunk, count - done)
        if block <= 1:
            yield rng.integers(0, n, size=(size, n))
        else:
            starts = rng.integers(0, n - block + 1, size=(size, math.ceil(n / block)))
            yield (starts[:, :, None] + np.arange(block)).reshape(size, -1)[:, :n]
        done += size


def _interval(samples: np.ndarray) -> list[float]:
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.nanpercentile(samples, [tail, 100 - tail])
    return [float(low), float(high)]


# ── per-resample scores, vectorized over the resamples ─────────────────────────────────
def _confusions(pred: np.ndarray, y: np.ndarray, idx: np.ndarray, n_classes: int) -> np.ndarray:
    """(B, C, C) confusion counts (rows true, columns predicted) of each resample."""
    cell = (y * n_classes + pred)[idx]  # (B, n)
    offset = np.arange(len(idx))[:, None] * n_classes * n_classes
    counts = np.bincount((cell + offset).ravel(), minlength=len(idx) * n_classes * n_classes)
    return counts.reshape(len(idx), n_classes, n_classes)


def class_scores(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, balanced accuracy (mean recall over the classes present) and macro F1 of (..., C, C) confusions."""
    tp = np.diagonal(confusion, axis1=-2, axis2=-1).astype(np.float64)
    support, predicted = confusion.sum(-1), confusion.sum(-2)
    total = support.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, tp / np.maximum(support, 1), np.nan)
        f1 = np.where(support + predicted > 0, 2 * tp / np.maximum(support + predicted, 1), np.nan)
        return {
            "accuracy": tp.sum(-1) / np.maximum(total, 1),
            "balanced_accuracy": np.nanmean(recall, axis=-1),
            "f1": np.nanmean(f1, axis=-1),
        }


def _regression_scores(pred: np.ndarray, y: np.ndarray, idx: np.ndarray) -> dict[str, np.ndarray]:
    p, t = pred[idx], y[idx]  # (B, n)
    sse = ((p - t) ** 2).sum(1)
    sst = ((t - t.mean(1, keepdims=True)) ** 2).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(sst > 0, 1 - sse / sst, np.nan)
    return {"mae": np.abs(p - t).mean(1), "rmse": np.sqrt(sse / t.shape[1]), "r2": r2}


def _forecast_scores(pred: np.ndarray, y: np.ndarray, idx: np.ndarray, scale: float | None) -> dict[str, np.ndarray]:
    p, t = pred[idx], y[idx]  # (B, n, horizon)
    error = np.abs(p - t)
    total = np.abs(p) + np.abs(t)
    smape = np.where(total > 0, 2 * error / np.where(total > 0, total, 1), 0.0)
    out = {"mae": error.mean((1, 2)), "rmse": np.sqrt(((p - t) ** 2).mean((1, 2))), "smape": smape.mean((1, 2))}
    if scale:
        out["mase"] = out["mae"] / scale
    return out


def _scores(kind: str, pred: np.ndarray, y: np.ndarray, idx: np.ndarray, n_classes: int, scale: float | None):
    if kind == "classification":
        return class_scores(_confusions(pred, y, idx, n_classes))
    if kind == "forecast":
        return _forecast_scores(pred, y, idx, scale)
    return _regression_scores(pred, y, idx)


def _kind(task: str, y: np.ndarray) -> str:
    return "regression" if task == "regression" and y.ndim == 1 else "forecast" if task == "regression" else "classification"


def _block(kind: str, y: np.ndarray) -> int:
    return max(y.shape[1], round(len(y) ** (1 / 3))) if kind == "forecast" else 1


def _width(y: np.ndarray) -> int:
    return int(np.prod(y.shape[1:])) if y.ndim > 1 else 1


def metric_intervals(pred: np.ndarray, y: np.ndarray, task: str, n_classes: int = 0, scale: float | None = None) -> dict:
    """95% intervals of the headline metrics on the test rows: ``{metric: [low, high]}``.

    ``pred`` and ``y``: class indices (N,) for classifiers, values (N,) for regression, forecasts (N, horizon).
    """
    pred, y = np.asarray(pred), np.asarray(y)
    if len(y) == 0:
        return {}
    kind = _kind(task, y)
    if kind == "classification":
        pred, y = pred.astype(np.int64), y.astype(np.int64)
        n_classes = n_classes or int(max(pred.max(), y.max())) + 1
    samples: dict[str, list[np.ndarray]] = {}
    for idx in resamples(len(y), _block(kind, y), width=_width(y)):
        for name, values in _scores(kind, pred, y, idx, n_classes, scale).items():
            samples.setdefault(name, []).append(values)
    out = {name: _interval(np.concatenate(values)) for name, values in samples.items()}
    if kind == "classification":
        out["accuracy"] = list(wilson(int((pred == y).sum()), len(y)))
    return out


def key_metric(task: str, forecast: bool = False) -> tuple[str, bool]:
    """The metric a verdict compares on, and whether higher is better."""
    if task != "regression":
        return "accuracy", True
    return ("mae", False) if forecast else ("r2", True)


def compare(ours: np.ndarray, theirs: np.ndarray, y: np.ndarray, task: str, n_classes: int = 0,
            scale: float | None = None) -> dict:
    """Paired bootstrap of the key metric on the same test rows: ours minus theirs (for an error metric,
    theirs minus ours), so a positive difference means ours is better. ``level`` when the 95% interval
    of the difference holds 0, or the rows are fewer than ``MIN_ROWS`` (three rows that all favour one
    model resample to an interval of one point, yet a sign test gives them p = 0.25)."""
    ours, theirs, y = np.asarray(ours), np.asarray(theirs), np.asarray(y)
    kind = _kind(task, y)
    metric, higher = key_metric(task, kind == "forecast")
    if kind == "classification":
        ours, theirs, y = ours.astype(np.int64), theirs.astype(np.int64), y.astype(np.int64)
        n_classes = n_classes or int(max(ours.max(), theirs.max(), y.max())) + 1
    full = np.arange(len(y))[None, :]
    a = _scores(kind, ours, y, full, n_classes, scale)[metric][0]
    b = _scores(kind, theirs, y, full, n_classes, scale)[metric][0]
    diffs = []
    for idx in resamples(len(y), _block(kind, y), seed=1, width=_width(y)):
        d = _scores(kind, ours, y, idx, n_classes, scale)[metric] - _scores(kind, theirs, y, idx, n_classes, scale)[metric]
        diffs.append(d if higher else -d)
    low, high = _interval(np.concatenate(diffs))
    difference = float(a - b if higher else b - a)
    return {"metric": metric, "higher_is_better": higher, "ours": float(a), "theirs": float(b), "difference": difference,
            "interval": [low, high], "level": bool(low <= 0 <= high or len(y) < MIN_ROWS), "rows": len(y),
            "unit": "windows" if kind == "forecast" else "rows", "confidence": CONFIDENCE}
