"""The loop's compute options: gradient accumulation, bf16/fp16 autocast with loss scaling, torch.compile."""

from __future__ import annotations

import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file
from torch import nn
from torch.nn import functional as F

import trainwright as tw
from trainwright.config import OptimizerConfig, ScheduleConfig, TrainConfig
from trainwright.data.batches import TensorBatches
from trainwright.data.builtin import BUILTINS
from trainwright.training.checkpoint import load_state
from trainwright.training.loop import Fit, fit, supervised_loss
from trainwright.training.optim import Schedule, build_optimizer
from trainwright.training.precision import grad_scaler

QUIET = Console(quiet=True)


def one_epoch(rows: int, batch_size: int | str, accumulate: int, precision: str = "fp32") -> nn.Module:
    """A linear model after one epoch of plain SGD on fixed data, unshuffled."""
    torch.manual_seed(0)
    x, y = torch.randn(rows, 6), torch.randint(0, 3, (rows,))
    model = nn.Linear(6, 3)
    cfg = TrainConfig(
        epochs=1, batch_size=batch_size, accumulate=accumulate, precision=precision, optimizer=OptimizerConfig(name="sgd", lr=0.5)
    )
    optimizer = build_optimizer(cfg.optimizer, model.parameters())
    batches = TensorBatches(x, y, batch_size)
    steps = -(-len(batches) // accumulate)
    run = Fit(
        model,
        optimizer,
        Schedule(ScheduleConfig(), optimizer, 1, steps),
        supervised_loss(model, F.cross_entropy),
        batches,
        validate=lambda _: {"val_loss": 0.0},
        cfg=cfg,
        generator=None,
        scaler=grad_scaler(torch.device("cpu"), precision),
    )
    fit(run)
    return model


@pytest.mark.parametrize("rows", [64, 56, 61])  # whole groups; a short last group; a partial last batch too
def test_accumulating_small_batches_equals_one_big_batch(rows):
    # 4 x 16 rows accumulated take one step on the mean loss of the group, as one batch of 64 rows does.
    big = one_epoch(rows, "full", accumulate=1)
    accumulated = one_epoch(rows, 16, accumulate=4)
    for a, b in zip(big.parameters(), accumulated.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.equal(one_epoch(rows, 16, accumulate=1).weight, big.weight)  # without accumulation: 4 steps


def test_accumulation_counts_optimizer_steps_for_the_schedule(tmp_path):
    run = tw.train(
        {
            "data": {"source": "iris"},
            "train": {"epochs": 2, "batch_size": 16, "accumulate": 3, "schedule": {"name": "one_cycle"}},
        },
        runs_dir=tmp_path,
        console=QUIET,
    )  # one_cycle fails if stepped too often
    assert run.metrics["epochs"] == 2


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_low_precision_trains_and_checkpoints_its_loss_scale(tmp_path, precision):
    run = tw.train(
        {"data": {"source": "iris"}, "train": {"epochs": 30, "batch_size": 16, "precision": precision}},
        runs_dir=tmp_path,
        name=precision,
        console=QUIET,
    )
    assert run.metrics["test"]["accuracy"] > 0.8
    losses = [row["train_loss"] for row in run.history]
    assert losses[-1] < losses[0]
    scaler = load_state(run.dir / "checkpoints" / "last.safetensors")["scaler"]
    assert (scaler.get("scale", 0) > 0) == (precision == "fp16")  # the fp16 loss scale resumes where it was


def test_compile_trains_the_same_model_and_saves_plain_weights(tmp_path):
    from torch._dynamo.utils import counters

    counters.clear()
    config = {"data": {"source": "iris"}, "model": {"hidden": [16]}, "train": {"epochs": 3, "batch_size": 16, "compile": True}}
    run = tw.train(config, runs_dir=tmp_path, name="compiled", console=QUIET)
    assert counters["stats"]["unique_graphs"] >= 1  # dynamo really traced the model (nn.Module.compile() would not)
    weights = load_file(str(run.dir / "model.safetensors"))
    assert set(weights) == {"0.weight", "0.bias", "3.weight", "3.bias"}  # no "_orig_mod." prefix
    rows = BUILTINS["iris"].load().drop(columns=["species"]).head(3)
    assert len(tw.load(run.dir).predict(rows)) == 3  # loads into a plain, uncompiled model
    assert run.metrics["compute"]["compile"]["mode"] == "inductor"
    assert run.metrics["compute"]["compile"]["decided_by"] == "config"

    # The same config, eager (auto: a run this short is never compiled): the same losses and weights, to rounding.
    config["train"]["compile"] = "auto"
    eager = tw.train(config, runs_dir=tmp_path, name="eager", console=QUIET)
    choice = eager.metrics["compute"]["compile"]
    assert (choice["mode"], choice["decided_by"], choice["compiled_step_s"]) == ("eager", "auto", None)  # nothing compiled
    assert [r["train_loss"] for r in eager.history] == pytest.approx([r["train_loss"] for r in run.history], rel=1e-5)
    for name, value in load_file(str(eager.dir / "model.safetensors")).items():
        torch.testing.assert_close(weights[name], value, rtol=1e-4, atol=1e-5)
