"""Sequence models on the built-in sets: what issue #4 asks of them, on a few CPU seconds each.

- seasonal series: LSTM and Transformer test MAE at least 30% below the naive last-value forecast;
- word-order texts: LSTM and Transformer >= 0.90 test accuracy, a bag of words below 0.70;
- python-docs (real text): the network's accuracy reported beside TF-IDF + logistic regression.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

import trainwright as tw

QUICK = {"early_stopping": {"enabled": False}}


def train(config: dict, tmp_path) -> tw.Run:
    return tw.train(config, runs_dir=tmp_path, console=Console(file=io.StringIO()))


SERIES_MODELS = {
    "lstm": {"type": "lstm", "hidden": 32},
    "transformer": {"type": "transformer", "d_model": 16, "heads": 2, "layers": 1, "ff": 32, "dropout": 0.0},
}


@pytest.mark.parametrize("model", SERIES_MODELS)
def test_forecasts_beat_the_naive_forecast_by_30_percent(model, tmp_path):
    metrics = train({"data": {"source": "seasonal", "window": {"stride": 2}}, "model": SERIES_MODELS[model],
                     "train": {"epochs": 8, "optimizer": {"lr": 0.005 if model == "lstm" else 0.003}, **QUICK}}, tmp_path).metrics
    naive = metrics["baselines"]["naive_last_value"]
    print(
        f"{model}: test MAE {metrics['test']['mae']:.3f}, naive {naive['mae']:.3f}, seasonal naive "
        f"{metrics['baselines']['seasonal_naive']['mae']:.3f}"
    )
    assert metrics["test"]["mae"] <= 0.7 * naive["mae"]
    assert set(metrics["test"]) >= {"mae", "rmse", "mape"} and set(naive) >= {"mae", "rmse", "mape"}
    compute = metrics["compute"]  # issue #6: the estimate printed before training, against the measured time
    ratio = compute["train_seconds"] / compute["estimated_seconds"]
    print(f"{model}: trained {compute['train_seconds']:.2f} s, estimated {compute['estimated_seconds']:.2f} s, ratio {ratio:.2f}")
    # Within +-25% on an idle CPU (benchmarks/estimate_accuracy.py holds it to that);
    # other processes on a shared machine can slow either the timed steps or the run (2.3 seen at a load
    # average of 8 on 2 cores; 3.9 in a CI run, the suite's other process compiling with inductor), so only
    # a gross error fails here.
    assert 0.2 < ratio < 5.0


# The first three epochs of the word-order LSTM below (seed 0, BPE tokenizer, Adam 0.01, clipped at 1.0):
# a change to the tokenizer, packing, init or the loop's numerics shows up here first.
EXPECTED_WORD_ORDER_LSTM_LOSSES = [0.4361, 0.0377, 0.0034]

TEXT_MODELS = {
    "lstm": ({"type": "lstm", "hidden": 32, "embedding": 32}, 8, 0.01),
    "transformer": ({"type": "transformer", "d_model": 32, "heads": 4, "layers": 2, "ff": 64, "dropout": 0.0}, 12, 0.003),
}


@pytest.mark.parametrize("model", TEXT_MODELS)
def test_word_order_needs_a_sequence_model(model, tmp_path):
    config, epochs, lr = TEXT_MODELS[model]
    run = train(
        {"data": {"source": "word-order"}, "model": config, "train": {"epochs": epochs, "optimizer": {"lr": lr}, **QUICK}},
        tmp_path,
    )
    metrics = run.metrics
    bag = metrics["baselines"]["bag_of_words_logistic_regression"]["accuracy"]
    print(f"{model}: test accuracy {metrics['test']['accuracy']:.3f}, bag of words {bag:.3f}")
    assert metrics["test"]["accuracy"] >= 0.90
    assert bag < 0.70
    if model == "lstm":
        assert [round(r["train_loss"], 4) for r in run.history[:3]] == EXPECTED_WORD_ORDER_LSTM_LOSSES


def test_real_text_is_reported_beside_tfidf(tmp_path):
    metrics = train(
        {
            "data": {"source": "python-docs", "tokenizer": {"max_length": 32}},
            "model": {"type": "gru", "hidden": 32, "embedding": 32},
            "train": {"epochs": 5, "optimizer": {"lr": 0.01}, **QUICK},
        },
        tmp_path,
    ).metrics
    tfidf = metrics["baselines"]["tfidf_logistic_regression"]["accuracy"]
    print(f"python-docs: gru test accuracy {metrics['test']['accuracy']:.3f}, TF-IDF + logistic regression {tfidf:.3f}")
    assert 0.2 < metrics["test"]["accuracy"] <= 1 and 0.2 < tfidf <= 1  # reported, whichever wins
