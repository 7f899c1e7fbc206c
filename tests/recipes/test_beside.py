"""Work beside the network (the baselines, the preprocessor's files): the same results as when done after it."""

from __future__ import annotations

import json
import multiprocessing
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_cli
from rich.console import Console

import trainwright as tw
from trainwright.background import WORKER_ENV, claim_worker, cores, forks, spare_cores, start_worker
from trainwright.config import DataConfig
from trainwright.configure import load_config
from trainwright.data.sources import load_source
from trainwright.data.tabular import TabularPreprocessor, prepare_tabular
from trainwright.evaluate.baselines import fit_baselines, score_baselines
from trainwright.recipes.setup import Beside

QUIET = Console(quiet=True)


def test_the_baselines_and_files_made_beside_equal_those_made_here(tmp_path):
    cfg = load_config({"data": {"source": "wine"}})
    data = prepare_tabular(cfg.data)
    beside = Beside.start(cfg, data)
    forked = forks() and spare_cores(torch.get_num_threads()) > 0  # tests train on one thread: forked on 2+ cores
    assert beside.baselines.forked == beside.files.forked == forked
    try:
        predictions, scores = beside.baselines.result()
        files = beside.files.result()
    finally:
        beside.cancel()  # stops its worker
    assert scores == fit_baselines(data) == score_baselines(predictions, data)
    # The preprocessor written from the child loads back and transforms the rows as the one fitted here.
    assert files["preprocessor.json"] == data.preprocessor.files()["preprocessor.json"]
    (tmp_path / "preprocessor.json").write_text(files["preprocessor.json"])
    (tmp_path / "preprocessor.skops").write_bytes(files["preprocessor.skops"])
    frame = load_source("wine")[0]
    assert np.array_equal(TabularPreprocessor.load(tmp_path).transform(frame), data.preprocessor.transform(frame))


def test_a_run_records_the_same_baselines_and_leaves_no_process_behind(tmp_path):
    run = tw.train({"data": {"source": "iris"}, "train": {"epochs": 2}}, runs_dir=tmp_path, console=QUIET)
    assert run.metrics["baselines"] == fit_baselines(prepare_tabular(DataConfig(source="iris")))
    assert multiprocessing.active_children() == []


def test_a_cancelled_start_leaves_no_process_behind():
    cfg = load_config({"data": {"source": "iris"}})
    Beside.start(cfg, prepare_tabular(cfg.data)).cancel()
    assert multiprocessing.active_children() == []


@pytest.mark.skipif(not forks() or cores() < 2, reason="the worker forks, on Linux with two or more cores")
def test_a_run_with_the_command_lines_worker_writes_what_a_run_without_it_writes(tmp_path, monkeypatch):
    cfg = {"data": {"source": "iris"}, "train": {"epochs": 3}}
    monkeypatch.setenv(WORKER_ENV, "1")
    start_worker()  # as `trainwright train` does first thing; this run claims it
    with_worker = tw.train(cfg, runs_dir=tmp_path / "worker", console=QUIET)
    assert claim_worker() is None and multiprocessing.active_children() == []  # claimed, and closed by the run
    without = tw.train(cfg, runs_dir=tmp_path / "here", console=QUIET)
    assert with_worker.metrics["baselines"] == without.metrics["baselines"]
    assert with_worker.metrics["test"] == without.metrics["test"]
    assert (with_worker.dir / "preprocessor.json").read_text() == (without.dir / "preprocessor.json").read_text()
    frame = load_source("iris")[0]  # the skops file (a zip with its own timestamps) loads back to the same transformer
    transformed = [TabularPreprocessor.load(run.dir).transform(frame) for run in (with_worker, without)]
    assert np.array_equal(*transformed)
    figures = [len(re.findall("data:image/png;base64,", (run.dir / "report.html").read_text())) for run in (with_worker, without)]
    assert figures[0] == figures[1] >= 4


@pytest.mark.skipif(not forks() or cores() < 2, reason="the worker forks, on Linux with two or more cores")
def test_the_train_command_with_its_worker_writes_the_whole_run(tmp_path, monkeypatch):
    monkeypatch.setenv(WORKER_ENV, "1")  # as on an idle machine: `train` starts it before it imports torch
    result = run_cli("train", "--data", "iris", "--set", "train.epochs=2", "--runs-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    run = Path(result.stdout.strip().splitlines()[-1])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["baselines"] == fit_baselines(prepare_tabular(DataConfig(source="iris")))
    assert (run / "preprocessor.skops").is_file() and "data:image/png;base64," in (run / "report.html").read_text()
