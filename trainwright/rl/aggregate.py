"""Scores over several seeds: the interquartile mean with a stratified-bootstrap confidence interval.

rliable's recommendation (Agarwal et al. 2021, "Deep RL at the edge of the statistical precipice"):
report the IQM (the mean of the middle 50% of runs, robust to one lucky or unlucky seed) with a
95% percentile-bootstrap interval, resampling runs with replacement within each task (stratified).
Same computation as ``rliable.library.get_interval_estimates`` with ``metrics.aggregate_iqm``,
done with scipy: ``trim_mean(x, 0.25)`` and ``scipy.stats.bootstrap`` over one sample per task.

Example:
    >>> iqm_interval([480.0, 500.0, 500.0, 500.0, 350.0])
    IQMInterval(iqm=493.33..., low=..., high=500.0, runs=5)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class IQMInterval:
    iqm: float
    low: float
    high: float
    runs: int

    def __str__(self) -> str:
        return f"IQM {self.iqm:.1f} [{self.low:.1f}, {self.high:.1f}] (95% CI, {self.runs} runs)"


def iqm(scores: Sequence[float] | np.ndarray) -> float:
    """Mean of the scores between the 25th and 75th percentiles (scipy's trim_mean, as rliable)."""
    return float(stats.trim_mean(np.asarray(scores, dtype=float).reshape(-1), 0.25))


def iqm_interval(
    scores: Sequence[float] | Sequence[Sequence[float]] | np.ndarray,
    confidence: float = 0.95,
    resamples: int = 50_000,
    seed: int = 0,
) -> IQMInterval:
    """IQM over every run of every task and its stratified-bootstrap percentile interval.

    ``scores`` is one score per run (one task), or one sequence of run scores per task; a run's
    score is its mean evaluation return. rliable uses 50,000 resamples as well.
    """
    nested = len(scores) > 0 and np.ndim(scores[0]) > 0
    tasks = [np.asarray(task, dtype=float) for task in (scores if nested else [scores])]

    def statistic(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        return stats.trim_mean(np.concatenate(samples, axis=axis), 0.25, axis=axis)

    point = float(statistic(*tasks))
    runs = sum(len(task) for task in tasks)
    if all(np.ptp(task) == 0 for task in tasks):  # every resample is the same: the interval is the point
        return IQMInterval(point, point, point, runs)
    result = stats.bootstrap(
        tasks, statistic, n_resamples=resamples, confidence_level=confidence, method="percentile",
        vectorized=True, rng=np.random.default_rng(seed),
    )
    return IQMInterval(point, float(result.confidence_interval.low), float(result.confidence_interval.high), runs)
