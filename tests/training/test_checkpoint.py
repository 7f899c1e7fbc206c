import pytest
import torch
from torch.nn import functional as F

from trainwright.config import OptimizerConfig, ScheduleConfig, TrainConfig
from trainwright.data.batches import TensorBatches
from trainwright.errors import TrainingDiverged, TrainwrightError
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
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]  # no temporary files left behind


class Recorder(Callback):
    """Which epoch the checkpoint held at each epoch's end (after the Checkpoint callback ran)."""

    def __init__(self) -> None:
        self.saved: list[int] = []

    def on_epoch_end(self, fit, logs) -> None:
        self.saved.append(fit.saved_epoch)


def fit_with_checkpoint(tmp_path, every: float, epochs: int = 6, lr: float = 1e-2) -> tuple[Recorder, Fit]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    x, y = torch.randn(32, 3), torch.randn(32, 1)
    cfg = TrainConfig(epochs=epochs, batch_size=8, optimizer=OptimizerConfig(name="sgd", lr=lr))
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
        CallbackList([Checkpoint(RunDir(tmp_path), every=every), recorder]),
    )
    return recorder, run


def test_short_epochs_are_copied_first_last_and_every_so_often(tmp_path):
    recorder, run = fit_with_checkpoint(tmp_path, every=1e9)  # epochs far shorter than `every`
    fit(run)
    assert recorder.saved == [1, 1, 1, 1, 1, 6]  # the first epoch, then only the last
    state = load_state(RunDir(tmp_path).checkpoint)
    assert state["epoch"] == 6 and torch.equal(state["model"]["weight"], run.model.weight.detach())

    recorder, run = fit_with_checkpoint(tmp_path, every=0.0)  # epochs longer than `every`: each one
    fit(run)
    assert recorder.saved == [1, 2, 3, 4, 5, 6]


def test_a_nan_keeps_the_copy_the_checkpoint_says_it_holds(tmp_path):
    _, run = fit_with_checkpoint(tmp_path, every=1e9, epochs=50, lr=2.0)  # grows until inf in epoch 8
    with pytest.raises(TrainingDiverged) as failure:
        fit(run)
    assert failure.value.epoch > 1 and f"the last good checkpoint (epoch {run.saved_epoch}) is kept" in str(failure.value)
    state = load_state(RunDir(tmp_path).checkpoint)
    assert state["epoch"] == run.saved_epoch == 1 and all(torch.isfinite(t).all() for t in state["model"].values())
