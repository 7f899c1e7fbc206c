"""The learning-rate finder: a suggestion with its rule or none with a reason, and a run after it is bit for
bit the run without it."""

from __future__ import annotations

import io
import json

import torch
import yaml
from helpers import run_cli
from rich.console import Console

import trainwright as tw
from trainwright.configure import load_config
from trainwright.data.prepare import prepare_data
from trainwright.recipes.lr_find import sweep_lr
from trainwright.recipes.setup import build_module
from trainwright.training.lr_find import MIN_POINTS, suggest

QUIET = Console(quiet=True)


def test_the_sweep_restores_the_model_and_the_random_streams():
    cfg = load_config({"data": {"source": "iris"}}, ["model.dropout=0.3"])
    data = prepare_data(cfg.data)
    module = build_module(cfg, data)
    module.train()
    weights = {k: v.clone() for k, v in module.state_dict().items()}
    rng = torch.get_rng_state()
    sweep = sweep_lr(cfg, data, module, torch.device("cpu"), steps=60)
    assert all(torch.equal(weights[k], v) for k, v in module.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state()) and module.training
    assert all(p.grad is None for p in module.parameters())
    assert sweep.suggestion is not None and sweep.lrs[0] < sweep.suggestion < sweep.lrs[-1]
    assert sweep.stopped.startswith("the smoothed loss passed 4x its best") or sweep.stopped.startswith("reached")
    assert len(sweep.lrs) == len(sweep.losses) == len(sweep.smoothed) <= 60


def test_a_curve_without_a_valley_gives_a_reason_not_a_learning_rate():
    lrs = [10 ** (-7 + i / 10) for i in range(80)]
    lr, valley, reason = suggest(lrs, [2.3] * 80)  # a loss that never falls
    assert lr is None and valley is None and "did not fall" in reason
    lr, _, reason = suggest(lrs[:20], [2.3 - i / 100 for i in range(20)])  # blew up after 20 steps
    assert lr is None and f"fewer than {MIN_POINTS}" in reason
    lr, (first, last), reason = suggest(lrs, [2.3 - i / 50 for i in range(50)] + [5.0] * 30)
    assert reason is None and first <= lrs.index(lr) <= last


def test_a_run_after_lr_find_is_the_run_without_it(tmp_path):
    # Both runs in this process (the command's lr-find is run by test_lr_find_command): the same code path as train.
    common = ["train.epochs=8", "evaluate.baseline=false"]
    out = io.StringIO()
    tw.train({"data": {"source": "iris"}}, overrides=[*common, "train.optimizer.lr=find"], runs_dir=tmp_path, name="found",
             console=Console(file=out, width=120))
    assert "lr-find: train.optimizer.lr = " in out.getvalue()
    lr = yaml.safe_load((tmp_path / "found" / "config.yaml").read_text())["train"]["optimizer"]["lr"]
    sweep = json.loads((tmp_path / "found" / "lr_find.json").read_text())
    assert isinstance(lr, float) and lr == float(f"{sweep['suggestion']:.3g}") and (tmp_path / "found" / "lr_find.png").is_file()
    tw.train({"data": {"source": "iris"}}, overrides=[*common, f"train.optimizer.lr={lr}"], runs_dir=tmp_path, name="plain",
             console=QUIET)
    assert (tmp_path / "found" / "model.safetensors").read_bytes() == (tmp_path / "plain" / "model.safetensors").read_bytes()


def test_lr_find_command(tmp_path):
    config = tmp_path / "iris.yaml"
    config.write_text("data: {source: iris}\n")
    result = run_cli("lr-find", str(config), "--steps", "60", "--runs-dir", str(tmp_path), "--name", "sweep")
    assert result.returncode == 0, result.stderr
    assert "suggestion: train.optimizer.lr = " in result.stdout and "rule: valley" in result.stdout
    assert (tmp_path / "sweep" / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
    assert result.stdout.strip().splitlines()[-1] == str(tmp_path / "sweep")
    bad = run_cli("lr-find", str(config), "--min-lr", "1", "--max-lr", "0.1", "--runs-dir", str(tmp_path))
    assert bad.returncode == 2 and "--min-lr" in bad.stderr and "Traceback" not in bad.stderr
