"""A seeded fit killed at random moments (SIGKILL in the first moments and while a checkpoint is
being written, SIGTERM, SIGINT) and resumed from its checkpoint ends bit for bit where the
uninterrupted fit ends. Each fit runs in a forked process, killed by a real signal.
(``benchmarks/kills.py`` does 20 trials through the real ``trainwright train``.)"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.nn import functional as F

from trainwright.config import EarlyStoppingConfig, OptimizerConfig, ScheduleConfig, TrainConfig
from trainwright.data.batches import TensorBatches
from trainwright.errors import Interrupted
from trainwright.rundir import RunDir
from trainwright.training.callbacks import CallbackList, Checkpoint, EarlyStopping, GradientStats
from trainwright.training.checkpoint import load_state
from trainwright.training.loop import Fit, fit, supervised_loss
from trainwright.training.optim import Schedule, build_optimizer

EPOCHS = 6


def build(run_dir: RunDir) -> Fit:
    """The same seeded fit every time: an MLP with dropout, Adam, a step schedule, shuffled batches."""
    torch.manual_seed(0)
    x, y = torch.randn(1024, 256), torch.randint(0, 4, (1024,))
    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Dropout(0.2), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 4))
    schedule = ScheduleConfig(name="step", step_size=2)
    cfg = TrainConfig(epochs=EPOCHS, batch_size=32, optimizer=OptimizerConfig(lr=1e-3), schedule=schedule)
    optimizer = build_optimizer(cfg.optimizer, model.parameters())
    callbacks = CallbackList(
        [EarlyStopping(EarlyStoppingConfig(patience=50)), GradientStats(run_dir, every=3), Checkpoint(run_dir, every=0.02)]
    )
    return Fit(
        model, optimizer, Schedule(cfg.schedule, optimizer, EPOCHS, 32), supervised_loss(model, F.cross_entropy),
        TensorBatches(x, y, 32), lambda m: {"val_loss": float(F.cross_entropy(m(x[:64]).detach(), y[:64]))}, cfg,
        torch.Generator().manual_seed(0), callbacks,
    )


def train(path: str) -> None:
    """A forked child: resume from the checkpoint if there is one, train to the end, save the weights."""
    torch.set_num_threads(1)
    run_dir = RunDir(path)
    run = build(run_dir)
    if run_dir.checkpoint.is_file():
        run.load_state_dict(load_state(run_dir.checkpoint))
    try:
        fit(run)
    except Interrupted as stop:
        os._exit(stop.exit_code)
    run_dir.save_weights(run.model)
    os._exit(0)


def start(path: Path) -> multiprocessing.Process:
    process = multiprocessing.get_context("fork").Process(target=train, args=(str(path),))
    process.start()
    return process


def writing_checkpoint(folder: Path, process: multiprocessing.Process) -> None:
    """Return as soon as a checkpoint's temporary file exists beside an earlier checkpoint: a write is under way."""
    deadline = time.monotonic() + 60
    while process.is_alive() and time.monotonic() < deadline:
        names = os.listdir(folder)
        if "last.safetensors" in names and any(name.endswith(".tmp") for name in names):
            return


def training(folder: Path, process: multiprocessing.Process) -> None:
    """Return once the fit has written its first checkpoint: the loop is running."""
    deadline = time.monotonic() + 60
    while process.is_alive() and time.monotonic() < deadline and not RunDir(folder).checkpoint.exists():
        time.sleep(0.001)


def test_killed_fits_resume_bit_identically(tmp_path):
    # One fit here first: torch's lazy set-up (kernels, autograd) is then done once, before the forks.
    warm = build(RunDir(tmp_path / "warm"))
    warm.cfg = warm.cfg.model_copy(update={"epochs": 1})
    fit(warm)
    whole = tmp_path / "whole"
    (whole / "checkpoints").mkdir(parents=True)
    process = start(whole)
    training(whole, process)
    started = time.monotonic()
    process.join()
    assert process.exitcode == 0
    span = time.monotonic() - started  # from the first checkpoint to the end
    reference = load_file(str(RunDir(whole).weights))

    draw = random.Random(0)

    def later(p: multiprocessing.Process, folder: Path) -> None:
        training(folder, p)
        time.sleep(draw.uniform(0.1, 0.9) * span)

    trials = [
        (signal.SIGKILL, lambda p, folder: time.sleep(draw.uniform(0, 0.01))),  # before any checkpoint (20 ms of training)
        (signal.SIGKILL, lambda p, folder: writing_checkpoint(folder / "checkpoints", p)),
        (signal.SIGTERM, later),
        (signal.SIGINT, later),
        (signal.SIGKILL, later),
    ]
    positions = []
    for i, (sig, wait) in enumerate(trials):
        folder = tmp_path / f"cut{i}"
        (folder / "checkpoints").mkdir(parents=True)
        process = start(folder)
        wait(process, folder)
        os.kill(process.pid, sig)
        process.join()
        # SIGTERM and SIGINT in the loop: a checkpoint, then exit code 128 + the signal (outside it, the default)
        assert process.exitcode in (0, -sig, 128 + sig)
        checkpoint = RunDir(folder).checkpoint
        positions.append((load_state(checkpoint)["epoch"], load_state(checkpoint)["step"]) if checkpoint.exists() else None)
        assert not [name for name in os.listdir(folder / "checkpoints") if name.endswith(".tmp")] or sig == signal.SIGKILL
        RunDir(folder).remove_leftovers()
        resumed = start(folder)
        resumed.join()
        assert resumed.exitcode == 0
        weights = load_file(str(RunDir(folder).weights))
        assert all(torch.equal(reference[k], weights[k]) for k in reference), (sig, positions[-1])
        assert json_records(folder) == json_records(whole)
    assert positions[0] is None and positions[1] is not None  # none yet; the one before the write being killed
    assert any(p is not None and 0 < p[1] for p in positions), positions  # at least one resumed mid-epoch


def json_records(folder: Path) -> list:
    return json.loads((folder / "gradients.json").read_text())["epochs"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_stops_at_once(tmp_path, sig):
    """The first signal asks for a checkpoint at the next batch boundary; a second one stops at once."""
    from trainwright.training.signals import StopSignals

    signals = StopSignals().install()
    try:
        os.kill(os.getpid(), sig)
        assert signals.received == sig
        with pytest.raises(Interrupted) as stop:
            os.kill(os.getpid(), sig)
        assert stop.value.exit_code == 128 + sig
    finally:
        signals.restore()
