"""The diagnosis on real runs: four deliberately broken configs are each diagnosed with the right
kind, and the built-in sets with their default configs report no problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_cli
from rich.console import Console

import trainwright as tw

QUIET = Console(quiet=True)


def diagnosis(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "diagnosis.json").read_text())["findings"]


def kinds(run_dir: Path) -> list[str]:
    return [f["kind"] for f in diagnosis(run_dir)]


def test_tiny_data_and_a_big_unregularized_net_overfit(tmp_path):
    # 54 training rows (~5 per digit), 2 x 512 units, no dropout, no early stopping.
    cfg = {"data": {"source": "digits", "split": {"train": 0.03, "val": 0.2, "test": 0.77}},
           "model": {"hidden": [512, 512], "dropout": 0.0}, "train": {"epochs": 60, "early_stopping": {"enabled": False}}}
    run = tw.train(cfg, runs_dir=tmp_path, console=QUIET)
    assert kinds(run.dir) == ["overfitting"]
    (finding,) = diagnosis(run.dir)
    assert "score accuracy 1.000 on the training rows" in finding["evidence"] and finding["epoch"] == 60
    assert any("dropout" in remedy for remedy in finding["remedies"])


def test_a_deep_sigmoid_net_with_small_init_has_vanishing_gradients(tmp_path):
    cfg = {"data": {"source": "digits"}, "train": {"epochs": 5},
           "model": {"hidden": [64] * 8, "activation": "sigmoid", "init": "small_normal", "dropout": 0.0}}
    run = tw.train(cfg, runs_dir=tmp_path, console=QUIET)
    assert kinds(run.dir) == ["vanishing_gradients"]
    (finding,) = diagnosis(run.dir)
    assert finding["epoch"] == 1 and finding["layer"] == "0"  # the first Linear layer
    assert any("He initialization" in remedy for remedy in finding["remedies"])


def test_a_far_too_high_learning_rate_is_diagnosed_even_when_the_loss_becomes_nan(tmp_path):
    result = run_cli("train", "--data", "digits", "--runs-dir", str(tmp_path), "--name", "boom",
                     "--set", "train.optimizer={name: sgd, lr: 100.0}")
    assert result.returncode == 2 and "loss became nan in epoch 1" in result.stderr
    run_dir = tmp_path / "boom"
    assert kinds(run_dir)[0] == "lr_too_high" and set(kinds(run_dir)) <= {"lr_too_high", "exploding_gradients"}
    assert "at learning rate 100" in diagnosis(run_dir)[0]["evidence"]
    assert "diagnosis:" in result.stdout and "lr too high (epoch 1)" in result.stdout
    assert (run_dir / "report.html").is_file()  # the failed run still gets its report


def test_a_too_high_learning_rate_without_a_nan(tmp_path):
    # Adam at lr 1.0: the loss blows up in epoch 1, most ReLUs die, and it sits at chance.
    cfg = {"data": {"source": "digits"}, "train": {"epochs": 25, "optimizer": {"name": "adam", "lr": 1.0}}}
    run = tw.train(cfg, runs_dir=tmp_path, console=QUIET)
    assert kinds(run.dir)[0] == "lr_too_high"
    assert "dead_units" in kinds(run.dir)


def test_a_far_too_low_learning_rate_crawls(tmp_path):
    cfg = {"data": {"source": "digits"}, "train": {"epochs": 30, "optimizer": {"name": "adam", "lr": 1e-6}}}
    run = tw.train(cfg, runs_dir=tmp_path, console=QUIET)
    assert kinds(run.dir) == ["lr_too_low"]  # the underfit it causes is not reported twice
    assert "learning rate 1e-06" in diagnosis(run.dir)[0]["evidence"]


@pytest.mark.parametrize("source", ["digits", "iris", "wine", "breast_cancer", "diabetes", "linear"])
def test_builtin_sets_with_default_configs_are_healthy(tmp_path, source):
    run = tw.train({"data": {"source": source}}, runs_dir=tmp_path, console=QUIET)
    assert diagnosis(run.dir) == []


def imbalanced(n: int = 1000, seed: int = 0):
    """A rare class (8%) that the features mark only weakly: a network that guesses 'no' scores accuracy 0.92."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    rare = rng.random(n) < 0.08
    x = rng.normal(size=(n, 4)) + 1.2 * rare[:, None]
    return pd.DataFrame({**{f"x{i}": x[:, i].round(4) for i in range(4)}, "y": np.where(rare, "yes", "no")})


def test_majority_only_is_diagnosed_and_class_weights_or_a_threshold_cure_it(tmp_path):
    path = tmp_path / "rare.csv"
    imbalanced().to_csv(path, index=False)
    base = {"data": {"source": str(path), "target": "y"}, "model": {"hidden": [8]},
            "train": {"epochs": 30, "optimizer": {"lr": 0.003}, "early_stopping": {"enabled": False}}}
    plain = tw.train(base, runs_dir=tmp_path, console=QUIET)
    assert kinds(plain.dir) == ["majority_only"]
    assert plain.metrics["test"]["balanced_accuracy"] == 0.5 and plain.metrics["test"]["accuracy"] > 0.9
    assert "train.class_weight: balanced" in diagnosis(plain.dir)[0]["remedies"][0]
    weighted = tw.train(base, overrides=["train.class_weight=balanced"], runs_dir=tmp_path, console=QUIET)
    assert weighted.metrics["test"]["balanced_accuracy"] > 0.75 and kinds(weighted.dir) == []
    tuned = tw.train(base, overrides=["evaluate.threshold=auto"], runs_dir=tmp_path, console=QUIET)
    threshold = json.loads((tuned.dir / "threshold.json").read_text())["threshold"]
    assert 0 < threshold < 0.5 and tuned.metrics["threshold"] == threshold
    assert tuned.metrics["test"]["balanced_accuracy"] > 0.75 and kinds(tuned.dir) == []
    predicted = tw.load(tuned.dir).predict(imbalanced(50, seed=1))  # predict applies the same threshold
    assert ((predicted["probability_yes"] >= threshold) == (predicted["prediction"] == "yes")).all()
