"""Data-parallel training through the command line: `trainwright train ... --nproc-per-node 2` (gloo, CPU).

The commands that run in one process (cv, tune, continue, lr-find, play, an RL run, ...) refuse
--nproc-per-node and torchrun (WORLD_SIZE > 1) in one line instead of running N times over one run.

A process killed mid-run ends the whole run with one line that names it and the command that
continues it; the checkpoint rank 0 wrote is intact, and `--resume` (on 2 processes again) finishes
the run to the weights and history of an uninterrupted 2-process run, bit for bit; resumed on 1
process instead, it reaches the same weights up to float rounding. A SIGTERM to the launcher (a
scheduler stopping the job) stops every process at a checkpoint, and rank 0's line is printed once.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import torch
from helpers import TRAINWRIGHT, expect_clear_error, run_cli
from safetensors.torch import load_file

# Digits, 79 steps of 16 rows a epoch; no dropout (each process would draw its own masks).
SETTINGS = ["--data", "digits", "--set", "model.hidden=[32]", "--set", "model.dropout=0", "--set", "train.epochs=5",
            "--set", "train.batch_size=16", "--set", "train.checkpoint_every=0.05s", "--set", "evaluate.baseline=false"]


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (torchrun's agent: the training processes)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def rank_of(pid: int) -> int | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    ranks = [int(v.split(b"=", 1)[1]) for v in environ if v.startswith(b"RANK=")]
    return ranks[0] if ranks else None


def weights_and_history(run: Path) -> tuple[dict[str, torch.Tensor], list[dict]]:
    with (run / "history.csv").open() as file:
        history = [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(file)]
    return load_file(str(run / "model.safetensors")), history


def wait_for_checkpoint(launcher: subprocess.Popen, run: Path) -> None:
    """Until the run's first checkpoint is on disk (a twentieth of a second into its loop)."""
    deadline = time.monotonic() + 240
    while not (run / "checkpoints/last.safetensors").is_file() and launcher.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_killed_process_ends_the_run_in_one_line_and_resume_finishes_it_as_if_never_killed(tmp_path):
    env = {**os.environ, "COLUMNS": "120", "OMP_NUM_THREADS": "1"}
    launcher = subprocess.Popen([str(TRAINWRIGHT), "train", *SETTINGS, "--name", "killed", "--nproc-per-node", "2"],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_checkpoint(launcher, tmp_path / "runs/killed")  # mid-run: the loop goes on for a second or more
    rank1 = [pid for pid in children(launcher.pid) if rank_of(pid) == 1]
    assert rank1, "the second process was not found (or the run had ended)"
    os.kill(rank1[0], signal.SIGKILL)
    out, err = launcher.communicate(timeout=120)

    assert launcher.returncode == 2, (out, err)
    message = err.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in out + err, err
    assert message.startswith("error: process rank 1 was killed by SIGKILL; the run stopped on every process; rank 0: ")
    assert "continue with `trainwright train --resume runs/killed --nproc-per-node 2`" in message
    assert not (tmp_path / "runs/killed/model.safetensors").exists()

    shutil.copytree(tmp_path / "runs/killed", tmp_path / "runs/on-one")  # the same checkpoint, resumed on 1 process
    resumed = run_cli("train", "--resume", "runs/killed", "--nproc-per-node", "2", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming runs/killed after" in resumed.stdout and resumed.stdout.strip().endswith("runs/killed")
    whole = run_cli("train", *SETTINGS, "--name", "whole", "--nproc-per-node", "2", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr

    weights, history = weights_and_history(tmp_path / "runs/killed")
    expected, expected_history = weights_and_history(tmp_path / "runs/whole")
    for name, tensor in expected.items():
        assert torch.equal(weights[name], tensor), name
    assert history == expected_history

    # Checkpoints hold the plain module's weights: the 2-process checkpoint resumes on 1 process, to the same
    # weights up to float rounding (one process sums each batch's gradient in another order).
    on_one = run_cli("train", "--resume", "runs/on-one", cwd=tmp_path)
    assert on_one.returncode == 0, on_one.stderr
    weights, _ = weights_and_history(tmp_path / "runs/on-one")
    for name, tensor in expected.items():
        torch.testing.assert_close(weights[name], tensor, atol=1e-5, rtol=1e-5, msg=name)


def test_a_signal_to_the_launcher_stops_every_process_at_a_checkpoint_and_says_so_once(tmp_path):
    env = {**os.environ, "COLUMNS": "120", "OMP_NUM_THREADS": "1"}
    launcher = subprocess.Popen([str(TRAINWRIGHT), "train", *SETTINGS, "--name", "stopped", "--nproc-per-node", "2"],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_checkpoint(launcher, tmp_path / "runs/stopped")
    launcher.send_signal(signal.SIGTERM)  # a scheduler stopping the job: torchrun's agent passes it to the processes
    out, err = launcher.communicate(timeout=120)

    assert launcher.returncode == 128 + signal.SIGTERM, (out, err)
    message = err.strip()  # said by rank 0, printed once by the launcher
    assert len(message.splitlines()) == 1 and "Traceback" not in out + err, err
    assert message.startswith("error: interrupted by SIGTERM; the checkpoint holds the run after "), message
    assert message.endswith("continue with `trainwright train --resume runs/stopped --nproc-per-node 2`"), message
    assert (tmp_path / "runs/stopped/checkpoints/last.safetensors").is_file()
    assert not (tmp_path / "runs/stopped/model.safetensors").exists()


def test_commands_that_run_in_one_process_refuse_several_in_one_line(tmp_path):
    root = Path(__file__).parents[1]
    expect_clear_error(run_cli("cv", str(root / "examples/digits.yaml"), "--nproc-per-node", "2", cwd=tmp_path),
                       "`trainwright cv` runs in one process", "with --nproc-per-node")
    # As torchrun starts each process: its place in the environment (the refusal comes before any rendezvous).
    torchrun = {**os.environ, "COLUMNS": "120", "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}
    for args, fragments in ((["lr-find", str(root / "examples/digits.yaml")], ["`trainwright lr-find`", "WORLD_SIZE=2"]),
                            (["train", str(root / "examples/rl/cartpole_ppo.yaml")], ["recipe: rl", "2 processes"])):
        result = subprocess.run([str(TRAINWRIGHT), *args], cwd=tmp_path, env=torchrun, capture_output=True, text=True,
                                timeout=120, check=False)
        expect_clear_error(result, *fragments)
    assert not (tmp_path / "runs").exists()


def test_a_run_sharded_with_fsdp_on_two_processes_resumes_and_predicts_on_one(tmp_path):
    from trainwright.data.builtin import BUILTINS

    BUILTINS["iris"].load().head(5).to_csv(tmp_path / "rows.csv", index=False)
    settings = ["--data", "iris", "--set", "train.strategy=fsdp", "--set", "model.dropout=0", "--set", "train.epochs=3",
                "--set", "evaluate.baseline=false", "--name", "sharded"]
    sharded = run_cli("train", *settings, "--nproc-per-node", "2", cwd=tmp_path)
    assert sharded.returncode == 0, sharded.stderr
    run = tmp_path / "runs/sharded"
    weights = load_file(str(run / "model.safetensors"))  # plain full weights, named as the module names them
    first = next(v for k, v in weights.items() if k.endswith("weight"))
    assert first.shape[1] == 4 and not any(k.startswith(("module.", "_fsdp")) for k in weights)  # whole, not a shard
    # The checkpoint (plain weights and optimizer state) continues on one process, and the model predicts there.
    resumed = run_cli("train", "--resume", "runs/sharded", "--set", "train.epochs=5", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming runs/sharded after epoch 3" in resumed.stdout
    predicted = run_cli("predict", "runs/sharded", "rows.csv", "-o", "out.csv", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    assert "wrote 5 predictions" in predicted.stdout
