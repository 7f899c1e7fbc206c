"""Data-parallel training (torch.distributed, gloo on the CPU): 2 processes train what 1 process trains.

Each process takes its share of every global batch from the same shuffle, and DistributedDataParallel
averages the gradients, so the final weights of 1 and 2 processes agree to float rounding (1e-6, as
Accelerate's ``training_check`` asks), for an MLP and a CNN, with and without gradient accumulation,
and for the distillation recipe's student; a GAN's three networks through its recipe agree to 1e-5
(``test_a_gan_on_two_processes_...``: why not 1e-6).
The 2-process runs are one torchrun launch on loopback with a free port (``ddp_parity.py``, ``gan_parity.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from trainwright.data.batches import TensorBatches
from trainwright.training.distributed import Replicas
from trainwright.training.launch import failure_message

sys.path.insert(0, str(Path(__file__).parent))
from ddp_parity import ACCUMULATE, CASES, distilled_weights, train_weights
from gan_parity import gan_weights

ROOT = Path(__file__).parents[2]


def torchrun(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node 2`` on loopback, its rendezvous on a free port (port 0: the store picks one)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--rdzv-backend", "c10d",
               "--rdzv-endpoint", "localhost:0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False, cwd=ROOT)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    result = torchrun(str(Path(__file__).with_name("ddp_parity.py")), str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.mark.parametrize("accumulate", ACCUMULATE)
@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_train_the_same_weights_as_one(case, accumulate, two_processes, tmp_path):
    torch.set_num_threads(1)
    weights, history = train_weights(case, accumulate, tmp_path, Replicas())
    theirs = load_file(str(two_processes / f"{case}-{accumulate}.safetensors"))
    assert weights.keys() == theirs.keys()
    for name, tensor in weights.items():
        torch.testing.assert_close(theirs[name], tensor, atol=1e-6, rtol=1e-6, msg=name)
    their_history = json.loads((two_processes / f"{case}-{accumulate}.json").read_text())
    for ours, their in zip(history, their_history, strict=True):  # losses reduced over the processes, val gathered
        for key in ("train_loss", "val_loss"):
            assert their[key] == pytest.approx(ours[key], rel=1e-6, abs=1e-6)


def test_distillation_on_two_processes_teaches_the_same_student_as_on_one(two_processes, tmp_path):
    torch.set_num_threads(1)
    weights = distilled_weights(tmp_path, Replicas())
    theirs = load_file(str(two_processes / "distilled.safetensors"))
    for name, tensor in weights.items():
        torch.testing.assert_close(theirs[name], tensor, atol=1e-6, rtol=1e-6, msg=name)


def test_a_gan_on_two_processes_trains_the_weights_one_process_trains(tmp_path):
    """Both networks and the generator's moving average, through the GAN recipe (setup, loop, finish).

    1e-5, not 1e-6: a discriminator's gradients are differences of two nearly equal terms (its slope on real
    and on generated samples), so the rounding of a sum taken in another order is large against the gradient,
    and Adam, which divides by the gradient's own scale, carries it into the weights (6e-6 on the first
    layer's bias after 20 steps, 1e-8 elsewhere). A share drawing its own noise instead of its rows of the
    global batch's differs by 5e-3."""
    torch.set_num_threads(1)
    result = torchrun(str(Path(__file__).with_name("gan_parity.py")), str(tmp_path / "two"))
    assert result.returncode == 0, result.stderr[-3000:]
    theirs = load_file(str(tmp_path / "two/gan.safetensors"))
    weights = gan_weights(tmp_path / "one/runs")
    assert weights.keys() == theirs.keys() and any(k.startswith("generator_ema.") for k in weights)
    for name, tensor in weights.items():
        torch.testing.assert_close(theirs[name], tensor, atol=1e-5, rtol=1e-5, msg=name)
    one, two = (pd.read_csv(tmp_path / where / f"runs/gan-{n}/history.csv") for where, n in (("one", 1), ("two", 2)))
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "g_grad_norm", "quality"):  # summed over the processes
        assert two[key].tolist() == pytest.approx(one[key].tolist(), abs=1e-6), key


def test_each_process_takes_its_share_of_the_same_global_batches():
    x, y = torch.arange(11.0)[:, None], torch.arange(11)
    generator = lambda: torch.Generator().manual_seed(0)
    whole = [xb.flatten().tolist() for xb, _ in TensorBatches(x, y, 4).epoch(generator())]
    shares = [[xb.flatten().tolist() for xb, _ in TensorBatches(x, y, 4).shard(r, 2).epoch(generator())] for r in range(2)]
    assert [a + b for a, b in zip(*shares)] == whole  # every row once, in the same global batches
    assert [len(s) for s in shares[0]] == [2, 2, 1] and [len(s) for s in shares[1]] == [2, 2, 2]


def test_rows_split_across_processes_cover_each_row_once():
    shards = [Replicas(rank, 3).shard_rows(10) for rank in range(3)]
    assert [list(range(10))[s] for s in shards] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]


def test_a_dead_process_is_named_with_what_the_others_said():
    class Failure:  # torchrun's ProcessFailure, as its agent reports it
        def __init__(self, exitcode, message, prerecorded=False):
            self.exitcode, self.message, self.error_file_data = exitcode, message, {"prerecorded": prerecorded}

    # Rank 1 was killed; rank 0 saw it, said so, and was then sent the agent's SIGTERM.
    said = {"message": "another process of this run stopped; continue with `x`", "extraInfo": {"timestamp": "0"}}
    message = failure_message({0: Failure(-15, said),
                               1: Failure(-9, "Signal 9 (SIGKILL) received by PID 12")})
    assert message == ("process rank 1 was killed by SIGKILL; the run stopped on every process; "
                       "rank 0: another process of this run stopped; continue with `x`")
    # Rank 0 itself was killed: what it left in advance says where the run is.
    message = failure_message({0: Failure(-9, "the last checkpoint of runs/x is kept; continue with `x`", prerecorded=True),
                               1: Failure(-15, "Signal 15 (SIGTERM) received by PID 13")})
    assert message == ("process rank 0 was killed by SIGKILL; the run stopped on every process; "
                       "rank 0: the last checkpoint of runs/x is kept; continue with `x`")
    # Bad input: every process says the same, and the launcher says it once, as one process would.
    refused = "train.unfreeze_at_epoch changes which weights train"
    assert failure_message({0: Failure(2, refused), 1: Failure(2, refused)}) == refused
    # Rank 0 failed on its own (a full disk); the agent then stopped rank 1 with SIGTERM.
    full = "no space left on the device for runs/x/checkpoints/last.safetensors"
    assert failure_message({0: Failure(2, full), 1: Failure(-15, "Signal 15 (SIGTERM) received by PID 13")}) == full
