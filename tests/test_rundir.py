"""The run directory is the only writer of a run's files: atomic writes inside the run, none off rank 0."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

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


def test_writes_are_atomic_and_stay_inside_the_run(tmp_path):
    run = RunDir.create(tmp_path, "r")
    run.write_json(run.metrics, {"test": {"accuracy": float("nan")}})
    assert run.read_json(run.metrics) == {"test": {"accuracy": None}}  # strict JSON: NaN is null
    run.write_files({"preprocessor.json": "{}", "blob.bin": b"\x00\x01"})
    assert (run.path / "blob.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(ValueError, match="not inside the run directory"):
        run.write_text(tmp_path / "elsewhere.txt", "x")
    assert sorted(p.name for p in run.path.iterdir()) == ["blob.bin", "checkpoints", "metrics.json", "preprocessor.json"]
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
