"""End to end through the ``trainwright`` command: train on raw text and on a raw series, then predict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from helpers import run_cli

from trainwright.configure import load_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def reviews(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    good, bad = ["great", "moving", "superb", "funny"], ["awful", "boring", "dull", "clumsy"]
    rows = []
    for i in range(n):
        positive = bool(rng.random() < 0.5)
        words = [rng.choice(good if positive else bad), *rng.choice(["the", "plot", "cast", "was", "and", "film"], size=5)]
        rows.append((" ".join(rng.permutation(words)), "positive" if positive else "negative"))
    return pd.DataFrame(rows, columns=["review", "sentiment"])


def test_text_from_a_table_then_predict_new_raw_text(tmp_path):
    reviews(240, 0).to_csv(tmp_path / "reviews.csv", index=False)
    result = run_cli("train", "--data", "reviews.csv", "--text-column", "review", "--target", "sentiment", "--model", "lstm",
                     "--set", "train.epochs=4", "--set", "train.optimizer.lr=0.01", "--runs-dir", "runs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "tokenizer: bpe" in result.stdout and "tfidf_logistic_regression" in result.stdout
    run = tmp_path / result.stdout.strip().splitlines()[-1]
    assert (run / "tokenizer.json").is_file()
    pd.DataFrame({"review": ["superb film and great cast", "dull and boring plot", "the plot was"]}).to_csv(
        tmp_path / "new.csv", index=False
    )
    result = run_cli("predict", str(run), "new.csv", "-o", "preds.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    preds = pd.read_csv(tmp_path / "preds.csv")
    assert preds["prediction"].tolist()[:2] == ["positive", "negative"] and len(preds) == 3


def sensor(n: int) -> pd.DataFrame:
    t = np.arange(n)
    rng = np.random.default_rng(0)
    load = 50 + 5 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.3, n)
    return pd.DataFrame({"timestamp": pd.date_range("2025-03-01", periods=n, freq="h").astype(str), "load": load.round(3)})


def test_series_from_a_table_then_forecast_the_tail_of_a_new_series(tmp_path):
    sensor(600).to_csv(tmp_path / "sensor.csv", index=False)
    result = run_cli(
        "train",
        "--data",
        "sensor.csv",
        "--time-column",
        "timestamp",
        "--target",
        "load",
        "--model",
        "gru",
        "--set",
        "data.window.lookback=48",
        "--set",
        "data.window.horizon=12",
        "--set",
        "data.window.stride=4",
        "--set",
        "train.epochs=3",
        "--runs-dir",
        "runs",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "naive_last_value" in result.stdout and "ridge_autoregression" in result.stdout and "mape" in result.stdout
    assert ", hourly; forecasting 'load'" in result.stdout and "season: 24 rows, a day of hourly rows" in result.stdout
    run = tmp_path / result.stdout.strip().splitlines()[-1]
    sensor(700).iloc[600:].to_csv(tmp_path / "latest.csv", index=False)  # the next 100 hours: forecast after the last
    result = run_cli("predict", str(run), "latest.csv", "-o", "forecast.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    forecast = pd.read_csv(tmp_path / "forecast.csv")
    assert len(forecast) == 12 and forecast["timestamp"].iloc[0] == "2025-03-30 04:00:00"
    assert forecast["prediction"].between(40, 60).all()
    # evaluate: every window of a labelled stretch of the series (48 rows in, the 12 after), beside nothing but the truth
    result = run_cli("evaluate", str(run), "latest.csv", "-o", "scores.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert {"mae", "rmse", "smape", "mase", "mape"} <= set(scores) and scores["mae"] < 5
    assert "mase" in result.stdout


def test_a_series_with_gaps_is_one_line_and_exit_2(tmp_path):
    sensor(200).drop(index=[50]).to_csv(tmp_path / "sensor.csv", index=False)
    result = run_cli("train", "--data", "sensor.csv", "--time-column", "timestamp", "--target", "load", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: the series has gaps") and len(result.stderr.strip().splitlines()) == 1


def test_sequence_examples_are_valid_configs():
    assert load_config(EXAMPLES / "text-transformer.yaml").model.type == "transformer"
    series = load_config(EXAMPLES / "series-lstm.yaml")
    assert series.data.window.horizon == 12 and series.train.clip_grad_norm == 1.0
