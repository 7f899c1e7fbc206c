"""Batched fits: each member equals the same fit run alone (folds of different sizes, members that stop
early, per-member learning rates and schedules), and what cannot be batched says why."""

from __future__ import annotations

import math

import pytest
import torch
from rich.console import Console

from trainwright.configure import load_config
from trainwright.data.folds import cv_folds
from trainwright.data.prepare import load_data
from trainwright.recipes.setup import build_fit, build_module, start_run
from trainwright.training.batched import BatchedFit, batchable
from trainwright.training.batched_forward import StackedForward, vmap_problem
from trainwright.training.callbacks import EarlyStopping
from trainwright.training.loop import fit

QUIET = Console(quiet=True)


def folds_of(overrides: list[str], k: int = 3):
    cfg = load_config({"data": {"source": "iris"}}, overrides)
    rows = load_data(cfg.data)
    return cfg, [rows.prepare(f.split) for f in cv_folds(rows, cfg.data, k)]


def alone(cfg, data, tmp_path, name):
    """The fit as the supervised recipe runs it, one fold by itself."""
    module = build_module(cfg, data)
    run_dir = start_run(cfg, data, module, torch.device("cpu"), runs_dir=tmp_path, name=name)
    run = build_fit(cfg, module, data, torch.device("cpu"), run_dir, QUIET)
    fit(run)
    return module, run


def together(cfgs, datas):
    modules = [build_module(c, d) for c, d in zip(cfgs, datas)]
    return BatchedFit.build(
        [c.train for c in cfgs], modules, [(d.x_train, d.y_train, d.x_val, d.y_val) for d in datas], task=datas[0].task,
        loss="cross_entropy", device=torch.device("cpu"), callbacks=lambda k: [EarlyStopping(cfgs[k].train.early_stopping)],
    ).fit()


def assert_same_fit(module, run, member):
    assert len(member.history) == len(run.history) and member.stop_reason == run.stop_reason
    for mine, theirs in zip(member.history, run.history):
        for key in ("train_loss", "val_loss", "val_accuracy", "lr"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-6), (key, mine["epoch"])
    for (name, a), b in zip(module.state_dict().items(), member.model.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)


def test_each_member_equals_its_fit_alone_and_stops_on_its_own(tmp_path):
    # Folds of 110-111 training rows (a partial last batch each), batch 16, a patience short enough to stop
    # the members at different epochs; no dropout (with dropout each member draws its own masks).
    cfg, datas = folds_of(["model.dropout=0", "model.hidden=[16]", "train.batch_size=16", "train.epochs=40",
                           "train.optimizer.lr=0.05", "train.early_stopping.patience=3"])
    batched = together([cfg] * 3, datas)
    stops = set()
    for i, (data, member) in enumerate(zip(datas, batched.members)):
        module, run = alone(cfg, data, tmp_path, f"fold-{i}")
        assert_same_fit(module, run, member)
        stops.add(member.epoch)
    assert len(stops) > 1  # members stopped at different epochs, each kept its own best weights


def test_members_keep_their_own_learning_rates_and_schedules(tmp_path):
    cfg, datas = folds_of(["model.dropout=0", "model.hidden=[8]", "train.epochs=6", "train.schedule.name=cosine"], k=2)
    other = load_config(cfg, ["train.optimizer.lr=0.02", "train.optimizer.name=sgd", "train.optimizer.momentum=0.9"])
    batched = together([cfg, other], datas)
    for i, (c, data, member) in enumerate(zip([cfg, other], datas, batched.members)):
        module, run = alone(c, data, tmp_path, f"fold-{i}")
        assert_same_fit(module, run, member)


def test_members_with_fewer_steps_sit_them_out_and_clip_by_their_own_norm(tmp_path):
    # Batch 23 over 92 and 93 training rows: 4 and 5 steps an epoch, so two optimizer groups, the one with
    # fewer steps sitting out each epoch's last step; and a tight norm clip, each member by its own norm.
    cfg, datas = folds_of(["model.dropout=0", "model.hidden=[8]", "train.batch_size=23", "train.epochs=4",
                           "train.clip_grad_norm=0.05"], k=4)
    assert sorted({math.ceil(len(d.x_train) / 23) for d in datas}) == [4, 5]
    batched = together([cfg] * 4, datas)
    assert len(batched.groups) == 2
    for i, (data, member) in enumerate(zip(datas, batched.members)):
        module, run = alone(cfg, data, tmp_path, f"fold-{i}")
        assert_same_fit(module, run, member)


def test_grouped_matmuls_and_vmap_give_each_member_its_own_forward():
    cfg, datas = folds_of(["model.dropout=0", "model.hidden=[8, 4]"], k=3)
    modules = [build_module(cfg, d) for d in datas]
    with torch.no_grad():  # the same seed built the same weights: make each member's its own
        for k, module in enumerate(modules):
            for p in module.parameters():
                p.add_(0.1 * k)
    x = torch.stack([d.x_train[:5] for d in datas])  # (K, B, features)
    forward = StackedForward(modules[0])
    assert forward.how == "grouped matmuls"
    params, buffers = torch.func.stack_module_state(modules)
    for out in (forward(params, buffers, x), forward.vmapped(params, buffers, x)):
        for k, module in enumerate(modules):
            torch.testing.assert_close(out[k], module(x[k]))


def test_what_cannot_be_batched_says_why():
    cfg, datas = folds_of(["model.batch_norm=true"], k=2)
    module = build_module(cfg, datas[0])
    assert "batch norm" in batchable(cfg.train, module, None, False)
    cfg, datas = folds_of(["train.accumulate=2"], k=2)
    assert "accumulate" in batchable(cfg.train, build_module(cfg, datas[0]), None, False)
    cfg, datas = folds_of(["train.class_weight=balanced"], k=2)  # sequential fits apply it; batched ones would not
    assert "class_weight" in batchable(cfg.train, build_module(cfg, datas[0]), None, False)
    assert vmap_problem(build_module(cfg, datas[0]), datas[0].x_train[:2]) is None


def test_a_member_whose_loss_becomes_nan_stops_alone():
    cfg, datas = folds_of(["model.dropout=0", "train.epochs=3"], k=2)
    bad = load_config(cfg, ["train.optimizer.lr=1e30"])
    batched = together([bad, cfg], datas)
    first, second = batched.members
    assert first.diverged is not None and first.epoch == first.diverged["epoch"] - 1 < 3  # stopped, its epoch not recorded
    assert second.diverged is None and second.epoch == 3 and all(math.isfinite(h["val_loss"]) for h in second.history)
