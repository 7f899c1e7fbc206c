"""The run directory as the only writer: the lock, the manifest of checksums, file modes, failed writes."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from trainwright.errors import RunLocked, TrainwrightError, WriteFailed
from trainwright.rundir import RunDir, is_writer

RANK_SCRIPT = textwrap.dedent("""
    import sys, torch.distributed as dist
    from trainwright.rundir import RunDir
    rank, root = int(sys.argv[1]), sys.argv[2]
    dist.init_process_group("gloo", init_method=f"file://{root}/rendezvous", rank=rank, world_size=2)
    run = RunDir(f"{root}/run")
    run.write_text(run.history, f"written by rank {rank}\\n")
    run.write_json(run.metrics, {"rank": rank})
    dist.barrier()
    dist.destroy_process_group()
""")


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


def test_background_writes_land_in_order_before_later_writes_and_a_failed_one_is_raised(tmp_path):
    run = RunDir.create(tmp_path, "run")
    run.defer = True  # as the supervised recipe sets it
    run.in_background(lambda: run.write_text(run.history, "epoch,loss\n1,0.5\n"))
    run.in_background(lambda: run.write_text(run.history, "epoch,loss\n1,0.5\n2,0.4\n"))
    run.write_json(run.metrics, {"epochs": 2})  # waits for the two above: the manifest lists all three
    assert run.history.read_text() == "epoch,loss\n1,0.5\n2,0.4\n"
    assert run.problems(run.history, run.metrics) == {}

    def full_disk(tmp):
        raise OSError(28, "No space left on device")

    run.in_background(lambda: run.write_with(run.history, full_disk, size=1000))
    with pytest.raises(WriteFailed, match="the disk is full"):
        run.unlock()  # the failure of a background write is not lost: it is raised when the run lets go
    assert not run.locked and run.history.read_text() == "epoch,loss\n1,0.5\n2,0.4\n"


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


def test_writes_are_atomic_and_stay_inside_the_run(tmp_path):
    run = RunDir.create(tmp_path, "r")
    run.write_json(run.metrics, {"test": {"accuracy": float("nan")}})
    assert run.read_json(run.metrics) == {"test": {"accuracy": None}}  # strict JSON: NaN is null
    run.write_files({"preprocessor.json": "{}", "blob.bin": b"\x00\x01"})
    assert (run.path / "blob.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(ValueError, match="not inside the run directory"):
        run.write_text(tmp_path / "elsewhere.txt", "x")
    assert {"blob.bin", "checkpoints", "metrics.json", "preprocessor.json"} <= {p.name for p in run.path.iterdir()}
    assert is_writer()  # a single process always writes


def test_only_rank_zero_writes_under_torch_distributed(tmp_path):
    (tmp_path / "run").mkdir()
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    command = [sys.executable, str(script)]
    ranks = [subprocess.Popen([*command, str(rank), str(tmp_path)], stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    for process in ranks:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    run = RunDir(tmp_path / "run")
    assert run.history.read_text() == "written by rank 0\n"
    assert run.read_json(run.metrics) == {"rank": 0}
