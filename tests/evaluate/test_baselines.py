"""Classical baselines: fitted on the same split tensors and scored with the network's metric functions."""

from __future__ import annotations

from rich.console import Console

import trainwright as tw
from trainwright.config import DataConfig
from trainwright.data.tabular import prepare_tabular
from trainwright.evaluate.baselines import fit_baselines

QUIET = Console(quiet=True)


def test_classification_baselines_score_like_the_network():
    scores = fit_baselines(prepare_tabular(DataConfig(source="iris")))
    assert set(scores) == {"majority_class", "logistic_regression", "hist_gradient_boosting"}
    for metrics in scores.values():
        assert set(metrics) == {"accuracy", "balanced_accuracy", "precision", "recall", "f1", "auroc"}
    assert scores["logistic_regression"]["accuracy"] > 0.9
    assert scores["majority_class"]["balanced_accuracy"] == 1 / 3  # one class always: recall 1, 0, 0


def test_regression_baselines_are_in_the_targets_units():
    data = prepare_tabular(DataConfig(source="diabetes"))
    scores = fit_baselines(data)
    assert set(scores) == {"ridge", "hist_gradient_boosting"}
    assert set(scores["ridge"]) == {"mse", "rmse", "mae", "r2"}
    # Diabetes progression is ~25-350; an error measured on the standardized scale would be ~1.
    assert 30 < scores["ridge"]["mae"] < 80


def test_train_records_baselines_unless_turned_off(tmp_path):
    cfg = {"data": {"source": "breast_cancer"}, "train": {"epochs": 3}}
    run = tw.train(cfg, runs_dir=tmp_path, console=QUIET)
    assert set(run.metrics["baselines"]) == {"majority_class", "logistic_regression", "hist_gradient_boosting"}
    assert set(run.metrics["baselines"]["logistic_regression"]) == set(run.metrics["test"])
    comparison = run.metrics["comparison"]  # the network against the best baseline, on the same test rows
    assert comparison["metric"] == "accuracy" and comparison["rows"] == sum(map(sum, run.metrics["confusion_matrix"]["matrix"]))
    low, high = comparison["interval"]
    assert low <= comparison["difference"] <= high and comparison["level"] == (low <= 0 <= high)
    test_intervals = run.metrics["intervals"]["test"]
    assert set(test_intervals) == {"accuracy", "balanced_accuracy", "f1"}
    assert test_intervals["accuracy"][0] <= run.metrics["test"]["accuracy"] <= test_intervals["accuracy"][1]
    off = tw.train(cfg, overrides=["evaluate.baseline=false"], runs_dir=tmp_path, console=QUIET)
    assert "baselines" not in off.metrics


def test_verdicts_call_a_winner_only_beyond_the_noise():
    import numpy as np

    from trainwright.evaluate.baselines import verdict
    from trainwright.evaluate.intervals import compare, metric_intervals, wilson

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    good = np.where(rng.random(300) < 0.95, y, 1 - y)  # right 95% of the time
    close = np.where(rng.random(300) < 0.94, y, 1 - y)
    poor = np.where(rng.random(300) < 0.75, y, 1 - y)
    clear = compare(good, poor, y, "binary")
    assert not clear["level"] and clear["difference"] > 0 and clear["interval"][0] > 0
    level = compare(good, close, y, "binary")
    assert level["level"] and level["interval"][0] < 0 < level["interval"][1]
    metrics = {"held_out": True, "baselines": {"logistic_regression": {}},
               "comparison": {"baseline": "logistic_regression", **level}}
    assert " are level: the difference is within the noise (paired bootstrap 95% interval" in verdict(metrics)
    tiny = compare(y[:3], 1 - y[:3], y[:3], "binary")  # 3 test rows: the network right on all, the baseline on none
    assert tiny["level"] and tiny["interval"] == [1.0, 1.0]  # the bootstrap is sure; 3 rows are not
    small = {"held_out": True, "baselines": {"ridge": {}}, "comparison": {"baseline": "ridge", **tiny}}
    assert verdict(small).endswith("cannot be told apart: 3 rows are too few to call a winner")
    three = metric_intervals(y[:3], y[:3], "binary", 2)
    assert three["accuracy"] == list(wilson(3, 3)) and three["accuracy"][0] < 0.5  # 3 of 3 right says little
    worse = {"held_out": True, "baselines": {"ridge": {}},
             "comparison": {"baseline": "ridge", **compare(poor, good, y, "binary")}}
    assert verdict(worse).endswith(": a classical model is the better choice here")
    forecast = compare(np.zeros((50, 3)), np.ones((50, 3)), np.zeros((50, 3)), "regression")
    assert forecast["metric"] == "mae" and forecast["difference"] == 1.0 and not forecast["level"]
