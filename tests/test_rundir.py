"""The run directory as the only writer: the lock, the manifest of checksums, file modes, failed writes."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys

import pytest

from trainwright.errors import RunLocked, TrainwrightError, WriteFailed
from trainwright.rundir import RunDir


def holder(path) -> subprocess.Popen:
    """Another process that locks the run and waits (prints 'locked' once it holds the lock)."""
    code = f"from trainwright.rundir import RunDir; RunDir({str(path)!r}).lock(); print('locked', flush=True); input()"
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    return process


def test_a_second_writer_is_told_the_holders_pid_and_a_dead_holders_lock_is_taken(tmp_path):
    run = RunDir.create(tmp_path, "run")
    run.write_text(run.config, "data: {source: iris}\n")
    run.unlock()
    process = holder(run.path)
    try:
        with pytest.raises(RunLocked, match=f"is being written by process {process.pid} on .*kill {process.pid}"):
            run.lock()
        with pytest.raises(RunLocked, match=str(process.pid)):
            RunDir(run.path).write_text("notes.txt", "x")  # any write takes the lock for its duration
        with pytest.raises(RunLocked):
            RunDir.resume(run.path)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    run.lock()  # the kernel let the dead holder's lock go
    assert run.lock_file.read_text().split()[0] == str(os.getpid())
    run.unlock()


def test_the_manifest_names_a_truncated_or_changed_file(tmp_path):
    run = RunDir.create(tmp_path, "run")
    run.write_json(run.metrics, {"test": {"accuracy": 0.98}})
    run.write_text(run.config, "data: {source: iris}\n")
    run.verify(run.metrics, run.config)
    text = run.metrics.read_bytes()
    run.metrics.write_bytes(text[:-5])
    with pytest.raises(TrainwrightError, match=r"metrics.json is damaged: it holds \d+ bytes, but \d+ were written"):
        run.verify(run.metrics)
    run.metrics.write_bytes(text.replace(b"0.98", b"0.99"))  # same size, one byte changed
    with pytest.raises(TrainwrightError, match="metrics.json is damaged: its sha256 differs"):
        run.verify(run.metrics)
    run.metrics.unlink()
    with pytest.raises(TrainwrightError, match="metrics.json is missing, though manifest.json lists it"):
        run.verify(run.metrics)
    assert set(run.problems(run.metrics, run.config)) == {run.metrics}
    run.unlock()


def test_a_write_that_fails_keeps_the_old_file_its_entry_and_no_temporary_file(tmp_path):
    run = RunDir.create(tmp_path, "run")
    run.write_text(run.history, "epoch,loss\n1,0.5\n")

    def half_then_full_disk(tmp):
        tmp.write_text("epoch,loss\n")
        raise OSError(28, "No space left on device")

    with pytest.raises(WriteFailed) as failure:
        run.write_with(run.history, half_then_full_disk, size=12_345_678)
    message = str(failure.value)
    assert message.startswith(f"cannot write {run.history}: the disk is full (") and "it needs about 12.3 MB" in message
    assert "the previous history.csv is kept as it was" in message
    assert run.history.read_text() == "epoch,loss\n1,0.5\n"
    run.verify(run.history)
    assert not [p for p in run.path.iterdir() if p.name.endswith(".tmp")]
    run.unlock()


def test_files_are_written_with_the_umask_not_0600(tmp_path):
    before = os.umask(0o027)
    try:
        run = RunDir.create(tmp_path, "run")
        run.write_text(run.config, "x: 1\n")
        run.write_tensors(run.checkpoint, {})
    finally:
        os.umask(before)
    for path in (run.config, run.checkpoint, run.manifest):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path
    run.unlock()


def test_resume_removes_a_killed_writers_temporary_files_and_an_empty_leftover_is_reused(tmp_path):
    run = RunDir.create(tmp_path, "run")
    run.write_text(run.config, "x: 1\n")
    run.unlock()
    leftovers = [run.path / ".metrics.json.abc123.tmp", run.path / "checkpoints" / ".last.safetensors.x1y2.tmp"]
    for path in leftovers:
        path.write_bytes(b"half")
    resumed = RunDir.resume(run.path)
    assert not any(path.exists() for path in leftovers)
    resumed.unlock()

    (tmp_path / "killed" / "checkpoints").mkdir(parents=True)  # killed between mkdir and its config
    RunDir.create(tmp_path, "killed").unlock()
    with pytest.raises(TrainwrightError, match="already exists"):
        RunDir.create(tmp_path, "run")
