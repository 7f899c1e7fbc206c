"""The Python API: tw.train / tw.load, determinism, resume, a user's own module."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import TRAINWRIGHT, run_cli
from rich.console import Console
from safetensors.torch import load_file
from torch import nn

import trainwright as tw

QUIET = Console(quiet=True)


def iris(epochs: int = 3, **train) -> dict:
    return {"data": {"source": "iris"}, "train": {"epochs": epochs, "batch_size": 16, **train}}


def test_train_returns_a_run_and_load_predicts(tmp_path):
    run = tw.train(iris(epochs=30), runs_dir=tmp_path, name="iris", console=QUIET)
    assert run.dir == tmp_path / "iris"
    assert run.metrics["test"]["accuracy"] >= 0.85
    model = tw.load(run.dir)
    frame = pd.read_csv(run.dir / "history.csv")  # any frame: here we need iris rows
    from trainwright.data.builtin import BUILTINS

    rows = BUILTINS["iris"].load().drop(columns=["species"]).head(5)
    predicted = model.predict(rows)
    assert list(predicted.columns[:4]) == list(rows.columns)
    assert set(predicted["prediction"]) <= set(model.classes)
    assert model.predict_proba(rows).shape == (5, 3)
    assert len(frame) == run.metrics["epochs"]


def test_same_seed_same_result(tmp_path):
    a = tw.train(iris(epochs=4), runs_dir=tmp_path, name="a", console=QUIET)
    b = tw.train(iris(epochs=4), runs_dir=tmp_path, name="b", console=QUIET)
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]
    wa, wb = load_file(str(a.dir / "model.safetensors")), load_file(str(b.dir / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c = tw.train(iris(epochs=4, seed=1), runs_dir=tmp_path, name="c", console=QUIET)
    assert [r["train_loss"] for r in c.history] != [r["train_loss"] for r in a.history]


# The first three epochs of iris (seed 0, batch 16, Adam 1e-3, MLP 128-64, dropout 0.2): a change to the
# numerics (init, batching order, loss, optimizer) shows up here before it shows up anywhere else.
# (104 training rows since iris's one repeated row is kept beside its twin: data.clean.duplicates.)
EXPECTED_IRIS_LOSSES = [1.1591, 0.5097, 0.4168]


def test_stored_loss_trajectory(tmp_path):
    run = tw.train(iris(epochs=3), runs_dir=tmp_path, console=QUIET)
    losses = [round(r["train_loss"], 4) for r in run.history]
    assert losses == EXPECTED_IRIS_LOSSES


DIGITS_ARGS = [
    *("--data", "digits", "--set", "train.epochs=30", "--set", "train.batch_size=16"),
    *("--set", "train.early_stopping.enabled=false", "--set", "model.dropout=0.1"),
    *("--set", "train.checkpoint_every=0.3s", "--set", "evaluate.baseline=false"),
]


@pytest.fixture(scope="module")
def whole_digits(tmp_path_factory) -> Path:
    """An uninterrupted seeded digits run, for the interrupted ones to match: the same settings as DIGITS_ARGS,
    trained in this process (the interrupted runs and their resumes are the commands under test)."""
    runs = tmp_path_factory.mktemp("whole")
    overrides = [value for flag, value in zip(DIGITS_ARGS[2::2], DIGITS_ARGS[3::2], strict=True) if flag == "--set"]
    assert DIGITS_ARGS[:2] == ["--data", "digits"] and len(overrides) == 6
    return tw.train({"data": {"source": "digits"}}, overrides=overrides, runs_dir=runs, name="whole", console=QUIET).dir


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_resume_after_a_signal_matches_an_uninterrupted_run(tmp_path, whole_digits, sig):
    args = [*DIGITS_ARGS, "--runs-dir", str(tmp_path)]
    process = subprocess.Popen(
        [str(TRAINWRIGHT), "train", *args, "--name", "cut"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    # Signal it as soon as its first checkpoint is on disk (about 0.3 s into a fit of a few seconds; waiting longer
    # can let a fit on a quiet machine end first).
    checkpoint = tmp_path / "cut" / "checkpoints" / "last.safetensors"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(sig)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + sig, err  # 130 for SIGINT, 143 for SIGTERM
    name = signal.Signals(sig).name
    assert err.startswith(f"error: interrupted by {name}; the checkpoint holds the run after"), err
    assert f"continue with `trainwright train --resume {tmp_path / 'cut'}`" in err and "Traceback" not in err

    resumed = run_cli("train", "--resume", str(tmp_path / "cut"))
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {tmp_path / 'cut'} after" in resumed.stdout  # it really was cut mid-run
    a, b = load_file(str(whole_digits / "model.safetensors")), load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    for column in ("train_loss", "val_loss", "val_accuracy", "lr"):
        assert (
            pd.read_csv(whole_digits / "history.csv")[column].tolist()
            == pd.read_csv(tmp_path / "cut" / "history.csv")[column].tolist()
        )
    if sig == signal.SIGTERM:  # once is enough: a finished run is refused whichever signal had cut it
        again = run_cli("train", "--resume", str(tmp_path / "cut"))
        assert again.returncode == 2 and "already finished training (after epoch 30: every epoch ran)" in again.stderr


class TwoLayer(nn.Module):
    def __init__(self, inputs: int = 4, classes: int = 3):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(inputs, 16), nn.Tanh(), nn.Linear(16, classes))

    def forward(self, x):
        return self.body(x)


def test_a_users_own_module(tmp_path):
    run = tw.train(iris(epochs=40), model=TwoLayer(), runs_dir=tmp_path, name="mine", console=QUIET)
    assert run.config.model.type == "custom"
    assert run.metrics["test"]["accuracy"] > 0.8
    with pytest.raises(tw.TrainwrightError, match="pass a fresh instance"):
        tw.load(run.dir)
    model = tw.load(run.dir, model=TwoLayer())
    from trainwright.data.builtin import BUILTINS

    assert len(model.predict(BUILTINS["iris"].load().head(3))) == 3
    with pytest.raises(tw.TrainwrightError, match=r"needs \(2, 3\)"):
        tw.train(iris(), model=TwoLayer(classes=5), runs_dir=tmp_path, console=QUIET)


def test_api_errors_are_trainwright_errors(tmp_path):
    with pytest.raises(tw.TrainwrightError, match="early_stopping.monitor"):
        tw.train(iris(early_stopping={"monitor": "val_f1"}), runs_dir=tmp_path, console=QUIET)
    with pytest.raises(tw.TrainwrightError, match="batch norm"):
        tw.train({**iris(), "model": {"batch_norm": True}, "train": {"batch_size": 1}}, runs_dir=tmp_path, console=QUIET)
    assert not any(Path(tmp_path).iterdir())


def test_predict_takes_a_dict_of_columns_or_a_list_of_rows_and_reads_files_with_the_trained_delimiter(tmp_path):
    from helpers import penguins_like

    frame = penguins_like()
    frame.to_csv(tmp_path / "penguins.csv", sep=";", index=False)
    run = tw.train({"data": {"source": str(tmp_path / "penguins.csv"), "target": "species", "delimiter": ";"},
                    "train": {"epochs": 2}, "evaluate": {"baseline": False}}, runs_dir=tmp_path, console=QUIET)
    model = tw.load(run.dir)
    rows = frame.drop(columns="species").head(3)
    expected = model.predict(rows)["prediction"].tolist()
    assert model.predict(rows.to_dict(orient="list"))["prediction"].tolist() == expected  # a dict of columns
    assert model.predict(rows.to_dict(orient="records"))["prediction"].tolist() == expected  # a list of rows
    assert model.predict(rows.iloc[0].to_dict())["prediction"].tolist() == expected[:1]  # one row as a dict of values
    rows.to_csv(tmp_path / "new.csv", sep=";", index=False)
    assert model.predict(tmp_path / "new.csv")["prediction"].tolist() == expected
    with pytest.raises(tw.TrainwrightError, match="cannot predict from a int: pass a pandas DataFrame"):
        model.predict(42)
    with pytest.raises(tw.TrainwrightError, match="the dict of columns does not make a table"):
        model.predict({"island": ["Dream", "Biscoe"], "sex": ["male"]})
