"""Measures over the accuracy matrix R: R[i, j] is the accuracy on task j after training on task i.

Entries above the diagonal (tasks not yet trained on) may be NaN; no measure reads them.
Every function takes a (T, T) array-like (list of lists, numpy or torch) and returns floats.

- average accuracy: mean_j R[T-1, j], the accuracy over all tasks at the end;
- forgetting (Chaudhry et al. 2018, "Riemannian Walk"): mean over j < T-1 of
  max_{l < T-1} R[l, j] - R[T-1, j], how far each old task fell from its best;
- backward transfer (Lopez-Paz & Ranzato 2017, "Gradient Episodic Memory"): mean over j < T-1 of
  R[T-1, j] - R[j, j], negative when learning later tasks hurt earlier ones.
"""

from __future__ import annotations

import math

import numpy as np


def _matrix(r, square: bool = True) -> np.ndarray:
    r = np.asarray(r.cpu() if hasattr(r, "cpu") else r, dtype=np.float64)
    if r.ndim != 2 or (square and r.shape[0] != r.shape[1]):
        raise ValueError(f"the accuracy matrix must be (T, T), got shape {r.shape}")
    return r


def average_accuracy(r) -> float:
    """Mean accuracy over all tasks after the last one (the last row; a (1, T) row of the joint bound too).

    Example:
        >>> average_accuracy([[0.9, float("nan")], [0.5, 0.8]])
        0.65
    """
    return float(np.mean(_matrix(r, square=False)[-1]))


def average_accuracy_curve(r) -> list[float]:
    """After each task i: the mean accuracy over the tasks seen so far, mean_{j <= i} R[i, j].

    Example:
        >>> average_accuracy_curve([[0.9, float("nan")], [0.5, 0.8]])
        [0.9, 0.65]
    """
    r = _matrix(r)
    return [float(np.mean(r[i, : i + 1])) for i in range(len(r))]


def forgetting(r) -> float:
    """Chaudhry et al. 2018: mean over the old tasks of (best accuracy before the end - final accuracy).

    NaN for a single task (nothing to forget).

    Example:
        >>> forgetting([[0.9, float("nan"), float("nan")], [0.95, 0.8, float("nan")], [0.5, 0.6, 0.9]])
        0.325
    """
    r = _matrix(r)
    t = len(r)
    if t < 2:
        return math.nan
    best = np.array([np.max(r[j : t - 1, j]) for j in range(t - 1)])
    return float(np.mean(best - r[-1, : t - 1]))


def backward_transfer(r) -> float:
    """Lopez-Paz & Ranzato 2017: mean over the old tasks of (final accuracy - accuracy right after learning it).

    NaN for a single task.

    Example:
        >>> round(backward_transfer([[0.9, float("nan"), float("nan")], [0.95, 0.8, float("nan")], [0.5, 0.6, 0.9]]), 6)
        -0.3
    """
    r = _matrix(r)
    t = len(r)
    if t < 2:
        return math.nan
    return float(np.mean(r[-1, : t - 1] - np.diag(r)[: t - 1]))


def summary(r) -> dict:
    """Everything for ``continual.json``: the matrix (NaN as None) and its measures.

    Example:
        >>> summary([[1.0, float("nan")], [0.5, 1.0]])["forgetting"]
        0.5
    """
    m = _matrix(r)
    return {
        "matrix": [[None if math.isnan(v) else float(v) for v in row] for row in m],
        "average_accuracy": average_accuracy(m),
        "average_accuracy_curve": average_accuracy_curve(m),
        "forgetting": forgetting(m),
        "backward_transfer": backward_transfer(m),
    }
