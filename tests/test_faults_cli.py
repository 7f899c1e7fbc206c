"""What a user sees when things go wrong around a run: a full disk, two writers, damaged files."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import TRAINWRIGHT, expect_clear_error, run_cli
from rich.console import Console

import trainwright as tw
from trainwright.data.builtin import BUILTINS
from trainwright.rundir import RunDir

IRIS = {"data": {"source": "iris"}, "train": {"epochs": 5, "batch_size": 16}, "evaluate": {"baseline": False}}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished iris run; tests change copies of it."""
    runs = tmp_path_factory.mktemp("runs")
    return tw.train(IRIS, runs_dir=runs, name="iris", console=Console(quiet=True)).dir


def copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / run.name))


def test_a_full_disk_fails_cleanly_keeps_earlier_runs_and_the_checkpoint_and_resume_finishes(tmp_path, finished):
    earlier = copy(finished, tmp_path)

    def small_files():  # as a nearly full disk would: the report (~300 kB) does not fit, the rest (< 200 kB) does
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    args = ["train", "--data", "iris", "--set", "train.epochs=5", "--set", "train.batch_size=16"]
    args += ["--set", "evaluate.baseline=false"]
    result = subprocess.run(
        [str(TRAINWRIGHT), *args, "--runs-dir", str(tmp_path), "--name", "full"],
        capture_output=True, text=True, timeout=300, preexec_fn=small_files, check=False,
    )
    expect_clear_error(
        result,
        f"cannot write {tmp_path / 'full'}/report.html: the file would pass this process's file size limit",
        "the run's other files are intact",
        f"continue with `trainwright train --resume {tmp_path / 'full'}`",
    )
    run = RunDir(tmp_path / "full")
    assert not [p for p in run.path.rglob("*.tmp")]
    run.verify(*(p for p in run.path.rglob("*") if p.is_file()))  # every file it did write is whole
    RunDir(earlier).verify(*(p for p in earlier.rglob("*") if p.is_file()))
    assert sorted(p.name for p in earlier.iterdir()) == sorted(p.name for p in finished.iterdir())

    resumed = run_cli("train", "--resume", str(run.path))  # with room again: the checkpoint is whole, the run finishes
    assert resumed.returncode == 0, resumed.stderr
    assert "its training had finished; writing its results" in resumed.stdout
    assert run.report.is_file() and run.metrics.is_file()


def test_a_second_writer_gets_one_line_naming_the_first(tmp_path):
    # A long run (compiling is not what this tests: off, so the command does not time a compile first).
    args = ["train", "--data", "digits", "--set", "train.epochs=100000", "--set", "train.early_stopping.enabled=false",
            "--set", "train.compile=false"]
    first = subprocess.Popen(
        [str(TRAINWRIGHT), *args, "--runs-dir", str(tmp_path), "--name", "busy"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "busy" / "config.yaml").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = run_cli("train", "--resume", str(tmp_path / "busy"))
        expect_clear_error(second, f"{tmp_path / 'busy'} is being written by process {first.pid}", f"kill {first.pid}")
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert first.returncode == 143


def test_damaged_files_are_named_by_predict_evaluate_and_resume(tmp_path, finished):
    run = copy(finished, tmp_path)
    rows = tmp_path / "rows.csv"
    BUILTINS["iris"].load().head(5).to_csv(rows, index=False)
    facts = run / "preprocessor.json"
    original = facts.read_bytes()
    facts.write_bytes(original.replace(b"setosa", b"setosb", 1))  # one flipped byte, still valid JSON
    predicted = run_cli("predict", str(run), str(rows))
    expect_clear_error(predicted, f"{facts} is damaged: its sha256 differs", "predict will not use it")
    expect_clear_error(run_cli("evaluate", str(run), str(rows)), f"{facts} is damaged")
    facts.write_bytes(original)

    checkpoint = run / "checkpoints" / "last.safetensors"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    expect_clear_error(
        run_cli("train", "--resume", str(run), "--set", "train.epochs=8"),
        f"{checkpoint} is damaged: it holds 1,000 bytes", "cannot be resumed",
    )


def test_report_names_a_truncated_history_and_leaves_it_out(tmp_path, finished):
    run = copy(finished, tmp_path)
    history = run / "history.csv"
    history.write_bytes(history.read_bytes()[:-30])  # cut in the middle of the last row
    result = run_cli("report", str(run))
    assert result.returncode == 0, result.stderr
    assert f"warning: {history} is damaged: it holds" in result.stderr and "the report leaves it out" in result.stderr
    assert "history.csv is damaged" in (run / "report.html").read_text()

    (run / "manifest.json").unlink()  # a run written before manifests: the whole rows are drawn
    result = run_cli("report", str(run))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr


def test_resume_refuses_a_key_it_may_not_change(tmp_path, finished):
    run = copy(finished, tmp_path)
    result = run_cli("train", "--resume", str(run), "--set", "train.batch_size=32")
    expect_clear_error(result, "--resume cannot change train.batch_size", "a resume may change train.epochs, train.optimizer.lr")
    assert os.path.getsize(run / "config.yaml") == os.path.getsize(finished / "config.yaml")
