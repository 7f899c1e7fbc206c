"""Resuming a run: what it may change (and records), and finishing what was started from any point."""

from __future__ import annotations

import json

import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file

import trainwright as tw
from trainwright.configure import load_config
from trainwright.recipes.resume import resume_changes

QUIET = Console(quiet=True)


def iris(**train) -> dict:
    return {"data": {"source": "iris"}, "train": {"batch_size": 16, **train}, "evaluate": {"baseline": False}}


def test_what_a_resume_may_change():
    saved = load_config(iris(epochs=10))
    changed = load_config(iris(epochs=20, optimizer={"lr": 0.01}, checkpoint_every="1m", device="cpu"))
    assert resume_changes(saved, changed) == {
        "train.epochs": (10, 20),
        "train.optimizer.lr": (0.001, 0.01),
        "train.checkpoint_every": ("10s", "1m"),
        "train.device": ("auto", "cpu"),
    }
    refused = r"--resume cannot change train.batch_size, train.seed: .* may change train.epochs"
    with pytest.raises(tw.TrainwrightError, match=refused):
        resume_changes(saved, load_config(iris(epochs=10, batch_size=32, seed=1)))
    with pytest.raises(tw.TrainwrightError, match="cannot change train.epochs of a run with schedule cosine"):
        resume_changes(load_config(iris(schedule={"name": "cosine"})), load_config(iris(epochs=200, schedule={"name": "cosine"})))


def test_a_resume_applies_and_records_a_new_learning_rate(tmp_path):
    run = tw.train(iris(epochs=3), runs_dir=tmp_path, name="run", console=QUIET)
    resumed = tw.train(resume=run.dir, overrides=["train.epochs=5", "train.optimizer.lr=0.01"], console=QUIET)
    assert [row["lr"] for row in resumed.history] == [0.001, 0.001, 0.001, 0.01, 0.01]  # the optimizer's state does not win
    assert resumed.config.train.optimizer.lr == 0.01
    saved = load_config(run.dir / "config.yaml").train
    assert (saved.epochs, saved.optimizer.lr) == (5, 0.01)
    (note,) = json.loads((run.dir / "resumes.json").read_text())
    assert note["from"] == "after epoch 3" and note["changed"] == {"train.epochs": [3, 5], "train.optimizer.lr": [0.001, 0.01]}


def test_an_early_stopped_run_killed_before_its_results_is_finished_not_trained_on(tmp_path):
    config = iris(epochs=300, early_stopping={"patience": 3}, optimizer={"lr": 0.05})
    run = tw.train(config, runs_dir=tmp_path, name="run", console=QUIET)
    assert run.metrics["stopped_early"] and run.metrics["epochs"] < 300
    weights = load_file(str(run.dir / "model.safetensors"))
    for name in ("model.safetensors", "metrics.json", "report.html"):  # what a kill after the last epoch leaves out
        (run.dir / name).unlink()
    again = tw.train(resume=run.dir, console=QUIET)
    assert again.history == run.history and again.metrics["epochs"] == run.metrics["epochs"]  # no extra epoch
    assert again.metrics["test"] == run.metrics["test"] and again.metrics["best_epoch"] == run.metrics["best_epoch"]
    finished = load_file(str(run.dir / "model.safetensors"))
    assert all(torch.equal(weights[k], finished[k]) for k in weights)
    finished_early = "already finished training .*early stopping.*; raise train.early_stopping.patience"
    with pytest.raises(tw.TrainwrightError, match=finished_early):
        tw.train(resume=run.dir, console=QUIET)
    longer = tw.train(resume=run.dir, overrides=["train.early_stopping.patience=10"], console=QUIET)
    assert longer.metrics["epochs"] > run.metrics["epochs"]  # a longer patience lets it go on


def test_a_run_killed_before_its_first_checkpoint_starts_again_and_ends_the_same(tmp_path):
    run = tw.train(iris(epochs=4), runs_dir=tmp_path, name="run", console=QUIET)
    weights = load_file(str(run.dir / "model.safetensors"))
    manifest = json.loads((run.dir / "manifest.json").read_text())
    for path in [run.dir / "checkpoints" / "last.safetensors", *run.dir.glob("*.csv"), run.dir / "metrics.json"]:
        path.unlink()  # as a run killed before its first checkpoint was written has none of these
        del manifest["files"][path.relative_to(run.dir).as_posix()]
    (run.dir / "manifest.json").write_text(json.dumps(manifest))
    again = tw.train(resume=run.dir, console=QUIET)
    assert again.history[-1]["train_loss"] == run.history[-1]["train_loss"]
    finished = load_file(str(run.dir / "model.safetensors"))
    assert all(torch.equal(weights[k], finished[k]) for k in weights)
