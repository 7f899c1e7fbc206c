"""Statistics over cross-validation folds: a mean with its 95% interval, and a paired comparison.

Folds share most of their training rows, so their scores are correlated and the naive standard
error s / sqrt(n) is too small. Nadeau & Bengio ("Inference for the Generalization Error", Machine
Learning 52, 2003) correct the variance of the mean over n resamples to (1/n + n_test/n_train) s²;
Bouckaert & Frank (2004) apply it to repeated k-fold ("corrected repeated k-fold cv test"). The
intervals here use that variance with Student's t on n - 1 degrees of freedom. A comparison is
paired: the network and a baseline are scored on the same folds, and the interval is that of the
per-fold differences.

Example:
    >>> mean_interval([0.97, 0.98, 0.96, 0.99], test_train_ratio=1 / 3)["mean"]
    0.975
"""

from __future__ import annotations

import math
import statistics

from scipy import stats


def mean_interval(values: list[float], test_train_ratio: float, level: float = 0.95) -> dict[str, float]:
    """``{"mean", "std", "low", "high"}`` of per-fold ``values`` (NaNs left out; fewer than 2: no interval)."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return {"mean": math.nan, "std": math.nan, "low": math.nan, "high": math.nan}
    mean = statistics.fmean(values)
    if len(values) < 2:
        return {"mean": mean, "std": math.nan, "low": math.nan, "high": math.nan}
    std = statistics.stdev(values)
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * math.sqrt((1 / len(values) + test_train_ratio) * std**2)
    return {"mean": mean, "std": std, "low": mean - half, "high": mean + half}


def paired_comparison(ours: list[float], theirs: list[float], test_train_ratio: float, higher_is_better: bool) -> dict:
    """The per-fold differences ours - theirs: their mean and interval, and which side wins.

    ``winner`` is ``"ours"`` or ``"theirs"`` when the interval excludes 0 (the difference is larger
    than the fold-to-fold noise), else None.
    """
    diffs = [a - b for a, b in zip(ours, theirs) if math.isfinite(a) and math.isfinite(b)]
    summary = mean_interval(diffs, test_train_ratio)
    winner = None
    if math.isfinite(summary["low"]) and (summary["low"] > 0 or summary["high"] < 0):
        ours_better = (summary["mean"] > 0) == higher_is_better
        winner = "ours" if ours_better else "theirs"
    wins = sum(1 for d in diffs if (d > 0) == higher_is_better and d != 0)
    return {**summary, "winner": winner, "folds_won": wins, "folds": len(diffs)}
