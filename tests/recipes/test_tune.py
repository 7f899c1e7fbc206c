"""trainwright tune end to end on SQLite and the journal file: trials as run directories, pruning, best.yaml,
the report, resuming, bad input in one line (nothing in the study lost), and dead workers' trials retried."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import optuna
import pytest
import yaml
from helpers import expect_clear_error, run_cli
from rich.console import Console

from trainwright.configure import load_config
from trainwright.errors import TrainwrightError
from trainwright.recipes import study as study_module
from trainwright.recipes.study import fail_dead_trials, open_study
from trainwright.recipes.tune import tune

QUIET = Console(quiet=True)

SPACE = {"train.optimizer.lr": {"log_uniform": [1.0e-3, 1.0e-1]}, "model.hidden": {"choice": [[8], [16, 8]]}}


def write(tmp_path, space=None, **tune) -> str:
    config = {"data": {"source": "iris"}, "model": {"type": "mlp", "hidden": [8], "dropout": 0.0},
              "train": {"epochs": 8, "optimizer": {"lr": 0.01}, "early_stopping": {"patience": 4}},
              "tune": {"space": SPACE if space is None else space, "pruner": "median", **tune}}
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_tune_runs_trials_writes_best_yaml_and_report_then_resumes(tmp_path):
    config = write(tmp_path)
    first = run_cli("tune", config, "--trials", "4", "--runs-dir", str(tmp_path), "--name", "s")
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "study s (new, in sqlite:///" in out and "trial 0: val_accuracy" in out
    assert "the config as written (trial 0)" in out and "best: trial" in out
    study_dir = tmp_path / "s"
    result = json.loads((study_dir / "study.json").read_text())
    assert result["counts"]["finished"] == 4 and result["metric"] == "val_accuracy"
    assert result["all"][0]["params"] == {"train.optimizer.lr": 0.01, "model.hidden": [8]}  # the config as written first
    best = load_config(study_dir / "best.yaml")  # the best trial's resolved config, ready to train
    assert best.train.optimizer.lr == result["best"]["params"]["train.optimizer.lr"]
    assert (study_dir / "trials" / f"trial-{result['best']['number']:04d}" / "model.safetensors").is_file()
    report = (study_dir / "report.html").read_text()
    assert "optimization history" in report and report.count("<img") >= 2
    # The same command with a larger budget resumes the study.
    again = run_cli("tune", config, "--trials", "5", "--runs-dir", str(tmp_path), "--name", "s")
    assert again.returncode == 0, again.stderr
    assert "study s (resuming" in again.stdout and "4 of 5 trials finished" in again.stdout
    assert json.loads((study_dir / "study.json").read_text())["counts"]["finished"] == 5

    # Bad input: one line, exit 2, and the study keeps its trials.
    other = write(tmp_path, space={"train.optimizer.lr": {"uniform": [0.001, 0.1]}})
    expect_clear_error(run_cli("tune", other, "--trials", "9", "--runs-dir", str(tmp_path), "--name", "s"),
                       "was created with another search space")
    expect_clear_error(run_cli("tune", config, "--trials", "9", "--workers", "2", "--runs-dir", str(tmp_path), "--name", "s"),
                       "cannot take 2 workers", "--storage postgresql://")
    storage = optuna.storages.RDBStorage(f"sqlite:///{study_dir / 'study.db'}")
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 5


def test_a_bad_search_space_is_one_line(tmp_path):
    expect_clear_error(run_cli("tune", write(tmp_path, space={"train.optimiser.lr": {"uniform": [0.1, 0.2]}}),
                               "--runs-dir", str(tmp_path)), "'train.optimiser.lr' is not a key of this config")
    cases = [
        ({"train.optimiser.lr": {"log_uniform": [1e-4, 1e-1]}}, "'train.optimiser.lr' is not a key of this config"),
        ({"model.hidden": {"uniform": [0.0, 1.0]}}, "tune.space model.hidden: the value 0.0 does not fit"),
        ({"model.dropout": {"int": [0, 1]}}, "tune.space model.dropout: the value 1 does not fit"),
        ({}, "the search space is empty"),
        ({"train.epochs": {"log_uniform": [0, 10]}}, "log_uniform needs low > 0"),
    ]
    for space, fragment in cases:  # in this process: the same code path as the command, without its start-up
        with pytest.raises(TrainwrightError, match=re.escape(fragment)):
            tune(load_config(write(tmp_path, space=space)), trials=1, runs_dir=tmp_path / "runs", console=QUIET)
    for storage, workers, fragment in (("sqlite:///x.db", 3, "cannot take 3 workers"),
                                       ("postgresql://nobody@127.0.0.1:9/none", 1, "127.0.0.1:9")):
        with pytest.raises(TrainwrightError, match=re.escape(fragment)):
            tune(load_config(write(tmp_path)), trials=1, storage=storage, workers=workers, runs_dir=tmp_path / "runs",
                 console=QUIET)
    assert not list((tmp_path / "runs").glob("*/trials"))  # no trial ran


def test_workers_share_a_journal_file(tmp_path):
    result = run_cli("tune", write(tmp_path), "--trials", "4", "--workers", "2", "--runs-dir", str(tmp_path), "--name", "j",
                     timeout=600)
    assert result.returncode == 0, result.stderr
    assert "in journal:" in result.stdout and (tmp_path / "j" / "study.journal").is_file()
    saved = json.loads((tmp_path / "j" / "study.json").read_text())
    assert saved["counts"]["finished"] == 4 and saved["counts"]["running"] == 0


def test_a_trial_whose_process_died_is_failed_and_retried_on_the_journal(tmp_path):
    cfg = load_config(write(tmp_path))
    (tmp_path / "d").mkdir()
    study, _ = open_study(cfg, tmp_path / "d", storage=f"journal:{tmp_path / 'd' / 'study.journal'}", workers=1,
                          direction="maximize", metric="val_accuracy", seed=0)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    trial = study.ask()
    trial.suggest_float("train.optimizer.lr", 1e-3, 1e-1, log=True)
    trial.set_user_attr("host", __import__("socket").gethostname())
    trial.set_user_attr("pid", int(dead.stdout))  # a process that has exited
    assert fail_dead_trials(study, max_retry=3) == [trial.number]
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]
    assert study.trials[1].system_attrs["failed_trial"] == trial.number
    assert study.trials[1].params == study.trials[0].params


def dead_trial(study: optuna.Study) -> optuna.Trial:
    """A running trial whose worker, a process on this machine, has exited."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    trial = study.ask()
    trial.suggest_float("train.optimizer.lr", 1e-3, 1e-1, log=True)
    trial.set_user_attr("host", __import__("socket").gethostname())
    trial.set_user_attr("pid", int(dead.stdout))
    return trial


def test_two_workers_that_find_the_same_dead_trial_retry_it_once(tmp_path, monkeypatch):
    # Worker a lists the running trials and finds the dead one; before it fails it, worker b (another process on the
    # same journal file) does the whole check. Only one of the two may fail the trial and enqueue its retry.
    cfg = load_config(write(tmp_path))
    (tmp_path / "d").mkdir()
    url = f"journal:{tmp_path / 'd' / 'study.journal'}"
    a, b = (open_study(cfg, tmp_path / "d", storage=url, workers=1, direction="maximize", metric="val_accuracy",
                       seed=seed)[0] for seed in (0, 1))
    trial = dead_trial(a)
    alive = study_module.alive

    def b_checks_first(pid: int) -> bool:
        monkeypatch.setattr(study_module, "alive", alive)
        assert fail_dead_trials(b, max_retry=3) == [trial.number]
        return alive(pid)

    monkeypatch.setattr(study_module, "alive", b_checks_first)
    failed_by_a = fail_dead_trials(a, max_retry=3)
    states = [t.state for t in a.get_trials(deepcopy=False)]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]  # one retry, not two
    assert failed_by_a == []


def test_on_a_database_the_heartbeat_finds_a_dead_trial_and_it_is_retried_once(tmp_path):
    # A database (here SQLite; PostgreSQL in test_tune_postgres.py) goes by the heartbeat, not the process id: a dead
    # process's trial with a fresh heartbeat stays running until its heartbeat is older than grace_seconds.
    cfg = load_config(write(tmp_path, heartbeat_seconds=1, grace_seconds=2))
    (tmp_path / "d").mkdir()
    study, _ = open_study(cfg, tmp_path / "d", storage=f"sqlite:///{tmp_path / 'd' / 'study.db'}", workers=1,
                          direction="maximize", metric="val_accuracy", seed=0)
    trial = dead_trial(study)
    study._storage.record_heartbeat(trial._trial_id)
    assert fail_dead_trials(study, max_retry=3) == []
    time.sleep(3.5)
    assert fail_dead_trials(study, max_retry=3) == [trial.number]
    assert fail_dead_trials(study, max_retry=3) == []
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]
    assert trials[1].system_attrs["failed_trial"] == trial.number and trials[1].params == trials[0].params
