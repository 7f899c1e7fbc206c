"""trainwright cv end to end: per-fold scores of the network and the baselines, means with intervals, a verdict,
fold runs beneath the cv directory, --refit for predict, and bad input in one line."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from helpers import expect_clear_error, run_cli
from rich.console import Console

from trainwright.configure import load_config
from trainwright.evaluate.resampling import mean_interval, paired_comparison
from trainwright.recipes.cv import cross_validate


def write(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


def test_cv_of_a_regression_prints_mse_mae_r2_for_the_network_and_the_baselines(tmp_path):
    config = write(tmp_path, "data: {source: diabetes}\nmodel: {type: mlp, hidden: [16]}\n"
                             "train: {epochs: 15, batch_size: 32, early_stopping: {patience: 5}}\n")
    result = run_cli("cv", config, "--folds", "3", "--refit", "--runs-dir", str(tmp_path), "--name", "dia")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for column in ("net mse", "net mae", "net r2", "ridge mse", "hgb r2"):
        assert column in out
    assert "training the 3 folds together as one batched model" in out
    assert "inner validation part" in out and ("no clear winner" in out or "beats" in out)
    cv_dir = tmp_path / "dia"
    assert out.strip().splitlines()[-1] == str(cv_dir)
    saved = json.loads((cv_dir / "cv.json").read_text())
    assert saved["batched"] and len(saved["per_fold"]) == 3 and saved["comparison"]["metric"] == "mse"
    for fold in saved["per_fold"]:
        assert set(fold["baselines"]) == {"ridge", "hist_gradient_boosting"}  # paired: fitted on the same fold
        assert (cv_dir / "folds" / f"fold-{fold['fold']:02d}" / "metrics.json").is_file()
    mse = saved["summary"]["network"]["mse"]
    assert mse["low"] < mse["mean"] < mse["high"]
    assert "<img" in (cv_dir / "report.html").read_text()
    # --refit: the configuration on all rows, a run predict can use.
    rows = pd.DataFrame({f"x{i}": [0.01 * i, -0.02] for i in range(10)})
    rows.columns = json.loads((cv_dir / "refit" / "preprocessor.json").read_text())["feature_columns"]
    rows.to_csv(tmp_path / "new.csv", index=False)
    predicted = run_cli("predict", str(cv_dir / "refit"), str(tmp_path / "new.csv"), "-o", str(tmp_path / "p.csv"))
    assert predicted.returncode == 0, predicted.stderr
    assert len(pd.read_csv(tmp_path / "p.csv")) == 2


def test_cv_one_after_another_gives_the_same_folds(tmp_path):
    config = write(tmp_path, "data: {source: iris}\nmodel: {type: mlp, hidden: [8], dropout: 0}\ntrain: {epochs: 5}\n"
                             "evaluate: {baseline: false}\n")
    # The batched folds in this process (the command's batched cv is run by the regression test above).
    cross_validate(load_config(config), folds=2, runs_dir=tmp_path, name="b", console=Console(quiet=True))
    alone = run_cli("cv", config, "--folds", "2", "--sequential", "--runs-dir", str(tmp_path), "--name", "s")
    assert alone.returncode == 0, alone.stderr
    assert "one after another (--sequential)" in alone.stdout
    b, s = (json.loads((tmp_path / name / "cv.json").read_text()) for name in ("b", "s"))
    for x, y in zip(b["per_fold"], s["per_fold"]):
        assert x["network"]["accuracy"] == pytest.approx(y["network"]["accuracy"], abs=1e-6)
        assert x["rows"] == y["rows"]


def test_cv_bad_input_is_one_line(tmp_path):
    config = write(tmp_path, "data: {source: iris}\n")
    expect_clear_error(run_cli("cv", config, "--folds", "60", "--runs-dir", str(tmp_path)), "too few for 60 stratified folds")
    config = write(tmp_path, "data: {source: iris, split: {groups: plant}}\n")
    expect_clear_error(run_cli("cv", config, "--folds", "3", "--runs-dir", str(tmp_path)), "not a column")
    assert not list(tmp_path.glob("iris-*"))  # nothing written


def test_intervals_are_corrected_for_shared_training_rows():
    values = [0.9, 0.95, 0.92, 0.97, 0.93]
    naive = mean_interval(values, test_train_ratio=0.0)
    corrected = mean_interval(values, test_train_ratio=1 / 4)
    assert corrected["mean"] == naive["mean"] and corrected["high"] - corrected["low"] > naive["high"] - naive["low"]
    assert math.isclose((corrected["high"] - corrected["low"]) / (naive["high"] - naive["low"]), math.sqrt((1 / 5 + 1 / 4) * 5))
    clear = paired_comparison([0.9, 0.91, 0.92, 0.9], [0.8, 0.8, 0.81, 0.8], 1 / 3, higher_is_better=True)
    assert clear["winner"] == "ours" and clear["folds_won"] == 4
    noise = paired_comparison([0.9, 0.8, 0.92, 0.78], [0.85, 0.86, 0.84, 0.83], 1 / 3, higher_is_better=True)
    assert noise["winner"] is None
