"""The RL workflow through the command line, as a user runs it: train, the run directory, play, the report,
a killed run resumed to the same final policy, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
import torch
import yaml
from browser import check_page, find_chromium
from helpers import TRAINWRIGHT, expect_clear_error, run_cli
from PIL import Image
from rich.console import Console
from safetensors.torch import load_file

import trainwright as tw
from trainwright.training.checkpoint import load_state

# Small and quick (about a second of training on one core); a 100-step time limit puts truncations into the
# rollouts, and observation and reward normalization put running statistics into the state.
CONFIG = {
    "recipe": "rl",
    "seed": 1,
    "env": {"id": "CartPole-v1", "n_envs": 2, "max_episode_steps": 100, "normalize_obs": True, "normalize_reward": True},
    "algo": {"name": "ppo", "steps": 6400, "n_steps": 32, "minibatch_size": 32, "epochs": 2},
    "model": {"hidden": [16]},
    "evaluate": {"interval": 1600, "episodes": 2, "final_episodes": 3},
}


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    root = tmp_path_factory.mktemp("rl")
    config = root / "cartpole.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    result = run_cli("train", str(config), "--runs-dir", str(root / "runs"), "--name", "whole")
    assert result.returncode == 0, result.stderr
    return root, config, root / "runs" / "whole", result


def test_train_writes_the_run_directory_with_the_estimate_and_the_compute(whole):
    _, _, run, result = whole
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == str(run)
    assert any(line.startswith("estimate: 100 updates x ") and "FLOP per update" in line for line in lines)
    assert any(line.startswith("final evaluation: the kept policy") for line in lines)
    assert any(line.startswith("trained 6,400 env steps (100 updates) in") for line in lines)
    assert "error" not in result.stderr.lower()  # nothing from pygame or SDL either
    for name in ("config.yaml", "environment.json", "env.json", "model.json", "history.csv", "metrics.json", "model.safetensors",
                 "episode.gif", "diagnosis.json", "report.html", "checkpoints/last.safetensors"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["env_steps"] == 6400 and metrics["updates"] == 100 and metrics["test"]["episodes"] == 3
    compute = metrics["compute"]
    assert compute["flops_per_update"] > 0 and compute["env_steps_per_second"] > 0 and compute["estimated_seconds"] > 0
    header = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert {"env_steps", "episode_return", "entropy", "value_loss", "explained_variance", "lr", "eval_return"} <= set(header)
    assert json.loads((run / "env.json").read_text())["reward_threshold"] is None  # max_episode_steps 100: 475 is out of reach


def test_play_reports_the_returns_and_writes_a_gif(whole, tmp_path):
    _, _, run, _ = whole
    gif = tmp_path / "episode.gif"
    result = run_cli("play", str(run), "--episodes", "3", "--gif", str(gif))
    assert result.returncode == 0, result.stderr
    assert "CartPole-v1, 3 episodes (deterministic policy, seeds 0+): return mean" in result.stdout and "IQM" in result.stdout
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames > 1


def test_the_report_shows_the_episode_and_the_return_curves(whole):
    _, _, run, _ = whole
    html = (run / "report.html").read_text(encoding="utf-8")
    for section in ("environment", "policy", "training", "episode", "evaluation", "compute", "diagnosis", "config"):
        assert f'<section id="{section}">' in html
    assert 'src="data:image/gif;base64,' in html
    for alt in (
        "episodic return against environment steps",
        "Policy entropy",
        "Value loss",
        "Explained variance",
        "Learning rate",
    ):
        assert alt in html
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (make test installs it as root)")
    page = check_page(chromium, run / "report.html")
    assert page.images and all(image["complete"] and image["naturalWidth"] > 0 for image in page.images)
    assert page.errors == []


def test_a_killed_run_resumes_to_the_same_final_policy(whole):
    root, config, run, _ = whole
    killed = root / "runs" / "killed"
    env = {**os.environ, "COLUMNS": "120"}
    process = subprocess.Popen(
        [str(TRAINWRIGHT), "train", str(config), "--runs-dir", str(root / "runs"), "--name", "killed"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not (killed / "checkpoints" / "last.safetensors").is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, (out, err)
    assert "continue with trainwright train --resume" in out
    stopped_at = load_state(killed / "checkpoints" / "last.safetensors")["agent"]["env_steps"]
    assert 0 < stopped_at < 6400 and not (killed / "metrics.json").exists()

    resumed = run_cli("train", "--resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {killed} at {stopped_at:,} env steps" in resumed.stdout
    for name in ("model.safetensors",):  # the kept (best) policy
        a, b = load_file(str(run / name)), load_file(str(killed / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    last_a = load_state(run / "checkpoints" / "last.safetensors")["agent"]["policy"]
    last_b = load_state(killed / "checkpoints" / "last.safetensors")["agent"]["policy"]
    assert all(torch.equal(last_a[k], last_b[k]) for k in last_a)  # and the last policy, bit for bit
    metrics_a, metrics_b = (json.loads((path / "metrics.json").read_text()) for path in (run, killed))
    assert metrics_a["final"]["returns"] == metrics_b["final"]["returns"]
    assert metrics_a["evaluations"] == metrics_b["evaluations"]


@pytest.mark.parametrize(
    ("env", "algo", "fragments"),
    [
        (
            {"id": "CartPol-v1"},
            {"name": "ppo"},
            ["env.id 'CartPol-v1' is not a gymnasium environment", "did you mean CartPole-v1"],
        ),
        (
            {"id": "LunarLander-v3"},
            {"name": "ppo"},
            ["needs a package that is not installed", "pip install 'trainwright[box2d]'"],
        ),
        ({"id": "Pendulum-v1"}, {"name": "dqn"}, ["algo.name = dqn needs Discrete actions", "use algo.name: ppo"]),
        ({"id": "CartPole-v1"}, {"name": "ppo", "steps": 0}, ["algo.steps = 0: the step budget must be a positive number"]),
    ],
)
def test_bad_rl_input_is_one_line_and_exit_code_2(tmp_path, env, algo, fragments):
    if env["id"] == "LunarLander-v3":
        pytest.importorskip("gymnasium")
        try:
            import Box2D  # noqa: F401
        except ImportError:
            pass
        else:
            pytest.skip("box2d is installed here, so LunarLander-v3 is not missing a package")
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"recipe": "rl", "env": env, "algo": algo}))
    runs = tmp_path / "runs"
    expect_clear_error(run_cli("train", str(config), "--runs-dir", str(runs)), *fragments)
    assert not runs.exists() or not any(runs.iterdir())  # nothing written


def test_several_seeds_get_their_iqm_in_every_run_and_report(tmp_path):
    evaluate = {"interval": 640, "episodes": 2, "final_episodes": 2}
    config = {**CONFIG, "algo": {**CONFIG["algo"], "steps": 1280}, "evaluate": evaluate}
    runs = tw.train(config, seeds=2, runs_dir=tmp_path, name="two", console=Console(quiet=True))
    assert [run.dir.name for run in runs] == ["two-seed1", "two-seed2"]
    summary = json.loads((runs[0].dir / "seeds.json").read_text())
    assert summary == json.loads((runs[1].dir / "seeds.json").read_text())
    assert [r["seed"] for r in summary["runs"]] == [1, 2] and summary["low"] <= summary["iqm"] <= summary["high"]
    assert [r["mean_return"] for r in summary["runs"]] == [run.metrics["test"]["mean_return"] for run in runs]
    assert "IQM over 2 seeds" in (runs[1].dir / "report.html").read_text(encoding="utf-8")
