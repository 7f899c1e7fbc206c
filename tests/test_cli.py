"""End to end: the ``trainwright`` command, run in a subprocess as a new user would."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import run_cli
from rich.console import Console
from safetensors.torch import load_file

import trainwright as tw
from trainwright.training.checkpoint import load_state

QUIET = Console(quiet=True)

RUN_FILES = {"config.yaml", "environment.json", "data.json", "preprocessor.skops", "preprocessor.json",
             "model.safetensors", "model.json", "history.csv", "metrics.json", "checkpoints",
             "gradients.json", "predictions_test.csv", "diagnosis.json", "report.html"}


def test_datasets_lists_the_builtins():
    result = run_cli("datasets")
    assert result.returncode == 0, result.stderr
    for name in ("digits", "iris", "wine", "breast_cancer", "diabetes", "linear"):
        assert name in result.stdout


def test_quick_mode_trains_predicts_and_evaluates_a_messy_csv(tmp_path, penguins_csv):
    result = run_cli("train", "--data", str(penguins_csv), "--target", "species", "--runs-dir", str(tmp_path / "runs"),
                     "--set", "train.epochs=15", "--name", "penguins")
    assert result.returncode == 0, result.stderr
    run_dir = Path(result.stdout.strip().splitlines()[-1])  # the last line is the run directory
    assert run_dir == tmp_path / "runs" / "penguins"
    assert RUN_FILES <= {p.name for p in run_dir.iterdir()}
    # Cleaning was reported with its counts.
    assert "6 rows repeat an earlier row exactly (6 sets of identical rows): kept, each set on one side" in result.stdout
    assert "dropped 2 rows whose target 'species' is missing" in result.stdout
    assert "categorical (2): island (3 categories), sex (2 categories)" in result.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"test", "val", "best_epoch", "epochs", "train_seconds"} <= metrics.keys()
    assert set(metrics["test"]) == {"accuracy", "balanced_accuracy", "precision", "recall", "f1", "auroc"}
    assert metrics["test"]["accuracy"] > 0.9
    with open(run_dir / "history.csv") as handle:
        history = list(csv.DictReader(handle))
    assert len(history) == metrics["epochs"]
    assert {"epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"} <= set(history[0])
    assert load_file(str(run_dir / "model.safetensors"))  # weights are plain safetensors

    new_rows = pd.read_csv(penguins_csv).drop(columns=["species"]).head(20)
    new_rows.loc[0, "island"] = "Atlantis"  # a category never seen in training
    new_rows.to_csv(tmp_path / "new.csv", index=False)
    result = run_cli("predict", str(run_dir), str(tmp_path / "new.csv"), "-o", str(tmp_path / "out.csv"))
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(tmp_path / "out.csv")
    assert len(out) == 20 and list(out.columns[: len(new_rows.columns)]) == list(new_rows.columns)
    probability_columns = ["probability_Adelie", "probability_Chinstrap", "probability_Gentoo"]
    assert set(out["prediction"]) <= {"Adelie", "Chinstrap", "Gentoo"}
    assert out[probability_columns].sum(axis=1).round(5).eq(1).all()

    result = run_cli("evaluate", str(run_dir), str(penguins_csv), "-o", str(tmp_path / "eval.json"))
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "eval.json").read_text())["accuracy"] > 0.9


def test_config_file_with_overrides_and_regression_predictions(tmp_path):
    config = tmp_path / "diabetes.yaml"
    config.write_text("data: {source: diabetes}\nmodel: {hidden: [32]}\ntrain: {epochs: 5}\n")
    result = run_cli("train", str(config), "--set", "train.optimizer.lr=0.01", "--set", "model.hidden=[16,8]",
                     "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    assert run_dir.name.startswith("diabetes-mlp-")
    assert "input 10 features -> 1 output, device" in result.stdout  # one output, not "1 outputs"
    resolved = (run_dir / "config.yaml").read_text()
    assert "lr: 0.01" in resolved and "- 16\n  - 8" in resolved
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["test"]) == {"mse", "rmse", "mae", "r2"}


def test_linear_one_neuron_predicts_eleven_at_six(tmp_path):
    result = run_cli("train", "--data", "linear", "--runs-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "too few" in result.stdout  # the set is too small to split, and the output says so
    run_dir = result.stdout.strip().splitlines()[-1]
    pd.DataFrame({"x": [6.0]}).to_csv(tmp_path / "x.csv", index=False)
    assert run_cli("predict", run_dir, str(tmp_path / "x.csv"), "-o", str(tmp_path / "y.csv")).returncode == 0
    assert pd.read_csv(tmp_path / "y.csv")["prediction"][0] == pytest.approx(11.0, abs=0.05)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    # Warmup raises the learning rate towards 2.0: epoch 1 is fine, epoch 2 diverges.
    # A checkpoint every millisecond (stretched to 20x what one takes): the last good one is close to the NaN.
    result = run_cli("train", "--data", "diabetes", "--runs-dir", str(tmp_path), "--name", "boom", "--set", "train.epochs=12",
                     "--set", "train.optimizer={name: sgd, lr: 2.0}", "--set", "train.schedule.warmup_epochs=10",
                     "--set", "train.checkpoint_every=1ms")
    assert result.returncode == 2
    state = load_state(tmp_path / "boom" / "checkpoints" / "last.safetensors")
    epoch, step = state["epoch"], state["step"]
    where = rf"after {step} of \d+ batches of epoch {epoch + 1}" if step else f"after epoch {epoch}"
    assert re.search(rf"loss became nan in epoch 2; the last good checkpoint \({where}\) is kept", result.stderr), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert state["epoch"] in (0, 1) and all(torch.isfinite(t).all() for t in state["model"].values())

    result = run_cli(
        "train", "--data", "diabetes", "--runs-dir", str(tmp_path), "--set", "train.optimizer={name: sgd, lr: 100.0}"
    )
    assert result.returncode == 2 and "no checkpoint was written, so a resume starts from the beginning" in result.stderr


def test_estimate_prints_the_arithmetic_and_writes_nothing(tmp_path):
    config = tmp_path / "digits.yaml"
    config.write_text("data: {source: digits}\nmodel: {hidden: [64]}\n")
    result = run_cli("estimate", str(config), "--epochs", "7", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # The per-layer table: 61 inputs -> 64 -> 10 on batch 64; the first layer has no input gradient.
    assert "FLOPs per step (batch 64" in out and f"{2 * 64 * 61 * 64:,}" in out and f"{3 * 2 * 64 * 64 * 10:,}" in out
    for fragment in (
        "20 steps per epoch",
        "matmul peak",
        "measured by a matmul probe",
        "measured over",
        "total: 7 epochs",
        "parameters",
        "optimizer state",
        "activations",
        "fits",
    ):
        assert fragment in out, fragment
    assert list(tmp_path.iterdir()) == [config]  # no run directory
    gpu = run_cli("estimate", str(config), "--device", "H100", "--set", "train.precision=bf16")
    assert gpu.returncode == 0, gpu.stderr
    assert "H100 SXM (nominal)" in gpu.stdout and "NVIDIA H100 datasheet" in gpu.stdout and "assumed" in gpu.stdout


def test_estimate_takes_the_quick_mode_options_of_train(tmp_path):
    rows = 200
    pd.DataFrame({"when": pd.date_range("2020-01-01", periods=rows, freq="D").astype(str),
                  "load": np.sin(np.arange(rows) / 3)}).to_csv(tmp_path / "load.csv", index=False)
    result = run_cli("estimate", "--data", "load.csv", "--time-column", "when", "--target", "load", "--model", "gru",
                     "--device", "H100", "--epochs", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert ", daily; forecasting 'load'" in result.stdout and "model: gru" not in result.stderr
    assert "total: 2 epochs" in result.stdout
    nothing = run_cli("estimate")
    assert nothing.returncode == 2 and "nothing to estimate" in nothing.stderr


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    """One ``train --data iris`` with the defaults (baselines, diagnosis, report), read by the two tests below."""
    runs = tmp_path_factory.mktemp("iris-runs")
    return runs, run_cli("train", "--data", "iris", "--runs-dir", str(runs), "--name", "iris")


def test_train_prints_the_estimate_before_and_the_measurement_after(iris_run):
    _, result = iris_run
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    metrics = json.loads((Path(lines[-1]) / "metrics.json").read_text())
    before = next(i for i, line in enumerate(lines) if line.startswith("estimate: "))
    after = next(i for i, line in enumerate(lines) if line.startswith(f"trained {metrics['epochs']} epochs in "))
    assert before < after and "actual/estimate" in lines[after] and "MFU" in lines[after]
    # train.compile: auto says what it chose and why: a run of a fraction of a second never compiles.
    assert lines[before + 1].startswith("compile: eager, ") and "under the 120 s a compile needs to pay" in lines[before + 1]
    compute = metrics["compute"]
    assert compute["flops_per_step"] > 0 and compute["device"].startswith("cpu")
    assert compute["compile"]["mode"] == "eager" and compute["compile"]["decided_by"] == "auto"
    assert "<td>compile</td><td>eager (auto): " in (Path(lines[-1]) / "report.html").read_text()  # the report's compute section


def test_train_ends_with_baselines_a_diagnosis_and_the_report(iris_run):
    tmp_path, result = iris_run
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == str(tmp_path / "iris")
    assert lines[-2] == f"report: {tmp_path / 'iris' / 'report.html'}"
    assert "diagnosis: no training problems found" in result.stdout
    assert "logistic_regression" in result.stdout and "hist_gradient_boosting" in result.stdout
    # 23 test rows: too few for the verdict to call a winner, and it says so
    assert "On the 23 test rows the network (accuracy" in result.stdout
    assert "23 rows are too few to call a winner" in result.stdout
    metrics = json.loads((tmp_path / "iris" / "metrics.json").read_text())
    assert set(metrics["baselines"]) == {"majority_class", "logistic_regression", "hist_gradient_boosting"}
    assert json.loads((tmp_path / "iris" / "diagnosis.json").read_text()) == {"findings": []}


def test_runs_lists_and_compare_diffs_configs_and_metrics(tmp_path):
    runs = tmp_path / "runs"
    for name, lr in (("slow", "0.001"), ("fast", "0.01")):  # trained in this process: runs and compare are under test
        tw.train({"data": {"source": "iris"}}, overrides=["train.epochs=5", f"train.optimizer.lr={lr}",
                 "evaluate.baseline=false"], runs_dir=runs, name=name, console=QUIET)
    (runs / "not-a-run").mkdir()  # ignored: no config.yaml

    result = run_cli("runs", str(runs))
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "iris" in line and "mlp" in line]
    assert len(rows) == 2 and "not-a-run" not in result.stdout
    slow = json.loads((runs / "slow" / "metrics.json").read_text())
    row = next(line for line in rows if "slow" in line)
    assert f"accuracy {slow['test']['accuracy']:.4f}" in row and " 5 " in row

    result = run_cli("compare", str(runs / "slow"), str(runs / "fast"))
    assert result.returncode == 0, result.stderr
    assert "train.optimizer.lr" in result.stdout and "0.001" in result.stdout and "0.01" in result.stdout
    assert "data.source" not in result.stdout  # only what differs
    assert "accuracy" in result.stdout and "train_seconds" in result.stdout


def test_runs_and_compare_reject_bad_input_in_one_line(tmp_path):
    for args in (
        ("runs", str(tmp_path / "nowhere")),
        ("compare", str(tmp_path)),
        ("compare", str(tmp_path), str(tmp_path / "x")),
    ):
        result = run_cli(*args)
        assert result.returncode == 2, args
        assert (
            result.stderr.startswith("error: ")
            and len(result.stderr.strip().splitlines()) == 1
            and "Traceback" not in result.stderr
        )
