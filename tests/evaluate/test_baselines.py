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
    assert set(scores) == {"logistic_regression", "hist_gradient_boosting"}
    for metrics in scores.values():
        assert set(metrics) == {"accuracy", "precision", "recall", "f1", "auroc"}
    assert scores["logistic_regression"]["accuracy"] > 0.9


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
    assert set(run.metrics["baselines"]) == {"logistic_regression", "hist_gradient_boosting"}
    assert set(run.metrics["baselines"]["logistic_regression"]) == set(run.metrics["test"])
    off = tw.train(cfg, overrides=["evaluate.baseline=false"], runs_dir=tmp_path, console=QUIET)
    assert "baselines" not in off.metrics
