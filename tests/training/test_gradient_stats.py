"""GradientStats: per-layer gradient norms and dead ReLU units, read once per epoch, through the real loop."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from trainwright.config import OptimizerConfig, ScheduleConfig, TrainConfig
from trainwright.data.batches import TensorBatches
from trainwright.errors import TrainingDiverged
from trainwright.evaluate.metrics import predict_outputs
from trainwright.rundir import RunDir
from trainwright.training.callbacks import CallbackList, GradientStats
from trainwright.training.checkpoint import load_state, save_state
from trainwright.training.loop import Fit, fit, supervised_loss
from trainwright.training.optim import Schedule, build_optimizer


def make_fit(model, x, y, path, *, epochs=1, lr=0.0, batch_size="full", every=1) -> Fit:
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, optimizer=OptimizerConfig(name="sgd", lr=lr or 1e-12))
    optimizer = build_optimizer(cfg.optimizer, model.parameters())
    batches = TensorBatches(x, y, batch_size)
    validate = lambda m: {"val_loss": float(F.mse_loss(predict_outputs(m, x), y))}
    return Fit(
        model,
        optimizer,
        Schedule(ScheduleConfig(), optimizer, epochs, len(batches)),
        supervised_loss(model, F.mse_loss),
        batches,
        validate,
        cfg,
        torch.Generator().manual_seed(0),
        CallbackList([GradientStats(RunDir(path.parent), every=every)]),
    )


def test_norms_are_the_per_layer_gradient_norms_of_the_step(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    x, y = torch.randn(32, 3), torch.randn(32, 1)
    # By hand: one full-batch step from the same weights.
    reference = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    reference.load_state_dict(model.state_dict())
    F.mse_loss(reference(x), y).backward()
    expected = [reference[0].weight.grad.norm().item(), reference[2].weight.grad.norm().item()]

    fit(make_fit(model, x, y, tmp_path / "gradients.json"))
    stats = json.loads((tmp_path / "gradients.json").read_text())
    assert [layer["name"] for layer in stats["layers"]] == ["0", "2"]
    assert stats["layers"][0] == {"name": "0", "type": "Linear", "shape": [8, 3]}
    assert stats["activations"] == [{"name": "1", "type": "ReLU"}]
    (epoch,) = stats["epochs"]
    assert epoch["epoch"] == 1 and epoch["steps"] == 1
    assert epoch["norm_mean"] == pytest.approx(expected, rel=1e-3)
    assert epoch["norm_max"] == pytest.approx(expected, rel=1e-3)


def test_dead_units_are_those_silent_on_every_validation_row(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    with torch.no_grad():
        model[0].bias[:2] = -1e3  # units 0 and 1 can never fire on inputs of this size: dead
        model[0].bias[2:] = 1e3  # units 2 and 3 always fire
    fit(make_fit(model, torch.randn(64, 3), torch.randn(64, 1), tmp_path / "gradients.json", epochs=2))
    stats = json.loads((tmp_path / "gradients.json").read_text())
    assert [e["dead_share"] for e in stats["epochs"]] == [[0.5], [0.5]]
    assert not model[1]._forward_hooks  # the watch ends with the fit


def test_sampling_every_n_steps_and_the_max_over_steps(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    fit(
        make_fit(
            model, torch.randn(64, 3), torch.randn(64, 1), tmp_path / "gradients.json", epochs=2, lr=1e-2, batch_size=8, every=3
        )
    )
    stats = json.loads((tmp_path / "gradients.json").read_text())
    assert stats["every"] == 3
    assert [epoch["steps"] for epoch in stats["epochs"]] == [3, 3]  # steps 1, 4 and 7 of 8, counted anew each epoch
    for epoch in stats["epochs"]:
        assert all(high >= mean > 0 for high, mean in zip(epoch["norm_max"], epoch["norm_mean"]))
        assert epoch["dead_share"] == []  # no ReLU to watch
    assert stats["epochs"][0]["norm_mean"] != stats["epochs"][1]["norm_mean"]  # each epoch its own steps


def test_a_failed_epoch_keeps_its_norms_marked_partial(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    x, y = torch.randn(64, 3), 1e3 * torch.randn(64, 1)
    with pytest.raises(TrainingDiverged) as failure:
        fit(make_fit(model, x, y, tmp_path / "gradients.json", epochs=5, lr=1e6, batch_size=8))
    assert failure.value.epoch == 1
    (epoch,) = json.loads((tmp_path / "gradients.json").read_text())["epochs"]
    assert epoch["partial"] is True and epoch["epoch"] == 1
    assert None in epoch["norm_max"]  # inf or NaN: JSON has neither, so null


def test_state_survives_a_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    run = fit(make_fit(model, torch.randn(16, 3), torch.randn(16, 1), tmp_path / "gradients.json", epochs=2))
    resumed = GradientStats(RunDir(tmp_path / "other"))
    save_state(RunDir(tmp_path), tmp_path / "c.safetensors", {"stats": run.callbacks[0].state_dict()})
    resumed.load_state_dict(load_state(tmp_path / "c.safetensors")["stats"])
    assert [e["epoch"] for e in resumed.records] == [1, 2]


def test_dead_units_of_a_channels_last_conv_are_counted_per_position(tmp_path):
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 4, 3, padding=1)
    with torch.no_grad():
        conv.bias[:1] = -1e3  # channel 0 never fires: a quarter of the (channel, y, x) units
        conv.bias[1:] = 1e3
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1)).to(
        memory_format=torch.channels_last
    )
    x = torch.randn(16, 2, 5, 5).contiguous(memory_format=torch.channels_last)
    fit(make_fit(model, x, torch.randn(16, 1), tmp_path / "gradients.json"))
    (epoch,) = json.loads((tmp_path / "gradients.json").read_text())["epochs"]
    assert epoch["dead_share"] == [0.25]
