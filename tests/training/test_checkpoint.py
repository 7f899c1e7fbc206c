import math

import pytest
import torch
from torch.nn import functional as F

from trainwright.config import OptimizerConfig, ScheduleConfig, TrainConfig
from trainwright.data.batches import TensorBatches
from trainwright.errors import Interrupted, TrainingDiverged, TrainwrightError
from trainwright.rundir import RunDir
from trainwright.training.callbacks import Callback, CallbackList, Checkpoint
from trainwright.training.checkpoint import load_state, save_state
from trainwright.training.loop import Fit, fit, supervised_loss
from trainwright.training.optim import Schedule, build_optimizer


def test_round_trip_keeps_tensors_numbers_and_structure(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    state = {"epoch": 3, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "rng": torch.get_rng_state(), "history": [{"loss": float("nan")}], "best": float("inf"), "pair": (1, 2)}
    save_state(RunDir(tmp_path), tmp_path / "c.safetensors", state)
    loaded = load_state(tmp_path / "c.safetensors")
    assert loaded["epoch"] == 3 and loaded["pair"] == (1, 2) and loaded["best"] == float("inf")
    assert loaded["history"][0]["loss"] != loaded["history"][0]["loss"]  # NaN survives
    assert torch.equal(loaded["rng"], state["rng"])
    fresh = torch.optim.Adam(model.parameters())
    fresh.load_state_dict(loaded["optimizer"])  # integer state keys survive too
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


def test_garbage_is_a_clear_error_and_overwrite_is_atomic(tmp_path):
    path = tmp_path / "c.safetensors"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(TrainwrightError, match="not a trainwright checkpoint"):
        load_state(path)
    save_state(RunDir(tmp_path), path, {"epoch": 1})
    save_state(RunDir(tmp_path), path, {"epoch": 2})
    assert load_state(path)["epoch"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "c.safetensors", "manifest.json"]  # no temporary files


class Recorder(Callback):
    """Where the checkpoint held the run at each epoch's end (after the Checkpoint callback ran)."""

    def __init__(self) -> None:
        self.saved: list[tuple[int, int | None]] = []

    def on_epoch_end(self, fit, logs) -> None:
        self.saved.append((fit.saved_epoch, fit.saved_step))


def fit_with_checkpoint(tmp_path, every: float, epochs: int = 6, lr: float = 1e-2, accumulate: int = 1,
                        extra: tuple = ()) -> tuple[Recorder, Fit]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.3), torch.nn.Linear(8, 1))
    x, y = torch.randn(32, 3), torch.randn(32, 1)
    cfg = TrainConfig(epochs=epochs, batch_size=8, accumulate=accumulate, optimizer=OptimizerConfig(name="sgd", lr=lr))
    optimizer = build_optimizer(cfg.optimizer, model.parameters())
    recorder = Recorder()
    run = Fit(
        model,
        optimizer,
        Schedule(ScheduleConfig(), optimizer, epochs, 4),
        supervised_loss(model, F.mse_loss),
        TensorBatches(x, y, 8),
        lambda m: {"val_loss": float(F.mse_loss(m(x).detach(), y))},
        cfg,
        torch.Generator().manual_seed(0),
        CallbackList([Checkpoint(RunDir(tmp_path), every=every, max_share=math.inf), recorder, *extra]),
    )
    return recorder, run


def test_checkpoints_come_by_time_and_at_the_end(tmp_path):
    recorder, run = fit_with_checkpoint(tmp_path / "a", every=1e9)  # a fit far shorter than the interval
    fit(run)
    assert recorder.saved == [(0, None)] * 5 + [(6, 0)]  # only the end of training
    state = load_state(RunDir(tmp_path / "a").checkpoint)
    assert state["epoch"] == 6 and state["step"] == 0 and torch.equal(state["model"]["2.weight"], run.model[2].weight.detach())

    recorder, run = fit_with_checkpoint(tmp_path / "b", every=1e-9)  # due at every step
    fit(run)
    assert recorder.saved == [(epoch, 0) for epoch in range(1, 7)]


class Crash(Callback):
    """Stops the process's training (as a kill would) after ``step`` batches of epoch ``epoch``."""

    order = 35  # after the checkpoint

    def __init__(self, epoch: int, step: int) -> None:
        self.at = (epoch, step)

    def on_step_end(self, fit) -> None:
        if (fit.epoch + 1, fit.step) == self.at:
            raise SystemExit("killed")


@pytest.mark.parametrize("accumulate", [1, 3])
def test_a_fit_resumed_mid_epoch_goes_on_bit_for_bit(tmp_path, accumulate):
    _, whole = fit_with_checkpoint(tmp_path / "whole", every=1e9, accumulate=accumulate)
    fit(whole)
    _, cut = fit_with_checkpoint(tmp_path / "cut", every=1e-9, accumulate=accumulate, extra=(Crash(3, 3),))
    with pytest.raises(SystemExit):
        fit(cut)
    state = load_state(RunDir(tmp_path / "cut").checkpoint)
    assert (state["epoch"], state["step"]) == (2, 3)  # a checkpoint at every optimizer step: the last is mid-epoch 3
    _, resumed = fit_with_checkpoint(tmp_path / "cut", every=1e9, accumulate=accumulate)
    torch.manual_seed(123)  # the resumed process's own random state must not matter
    resumed.load_state_dict(state)
    fit(resumed)
    for a, b in zip(whole.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    assert [r["train_loss"] for r in whole.history] == [r["train_loss"] for r in resumed.history]


class SignalDuringCopy(Callback):
    """Sends SIGINT to this process while the checkpoint's copy of the state is being taken (its
    ``state_dict`` is called from inside the copy), once the fit is past epoch 2."""

    def __init__(self) -> None:
        self.sent = False

    def state_dict(self) -> dict:
        import os
        import signal

        if not self.sent and self.fit.epoch >= 2:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)
        return {}

    def on_train_begin(self, fit) -> None:
        self.fit = fit


def test_ctrl_c_during_the_copy_keeps_the_checkpoint_whole(tmp_path):
    _, run = fit_with_checkpoint(tmp_path, every=1e-9, extra=(SignalDuringCopy(),))
    with pytest.raises(Interrupted) as stop:
        fit(run)
    assert stop.value.exit_code == 130 and "the checkpoint holds the run after" in str(stop.value.detail)
    state = load_state(RunDir(tmp_path).checkpoint)
    # The label and the tensors are of the same moment: the model's weights now, where the fit stopped.
    assert (state["epoch"], state["step"]) == (run.epoch, run.step) == (run.saved_epoch, run.saved_step)
    assert all(torch.equal(state["model"][k], v) for k, v in run.model.state_dict().items())


def test_a_nan_keeps_the_last_good_checkpoint(tmp_path):
    _, run = fit_with_checkpoint(tmp_path / "a", every=1e-9, epochs=50, lr=2.0)  # grows until inf
    with pytest.raises(TrainingDiverged) as failure:
        fit(run)
    where = run.position(run.saved_epoch, run.saved_step)
    assert failure.value.epoch > 1 and f"the last good checkpoint ({where}) is kept" in str(failure.value)
    state = load_state(RunDir(tmp_path / "a").checkpoint)
    assert (state["epoch"], state["step"]) == (run.saved_epoch, run.saved_step)
    assert all(torch.isfinite(t).all() for t in state["model"].values())

    _, run = fit_with_checkpoint(tmp_path / "b", every=1e9, epochs=50, lr=2.0)
    with pytest.raises(TrainingDiverged, match="no checkpoint was written, so a resume starts from the beginning"):
        fit(run)
    assert not RunDir(tmp_path / "b").checkpoint.exists()
