"""RL diagnosis: deliberately broken runs get their finding (and a tuned one none); the rules on edge cases;
every remedy names keys that exist in the RL schema for its algorithm."""

from __future__ import annotations

import re

import pytest

from trainwright.config.rl import DQNConfig, EnvConfig, PPOConfig, ReinforceConfig, RLConfig, rl_config
from trainwright.evaluate.diagnose_rl import REMEDIES, diagnose_rl
from trainwright.rl.envs import env_spec
from trainwright.rl.evaluation import Evaluator
from trainwright.rl.history import History
from trainwright.rl.train import planned_updates, train

EVALUATE = {"interval": 1024, "episodes": 3, "final_episodes": 5}


def diagnose_run(raw: dict) -> list[dict]:
    """Train in-process with the history a run directory would hold, then diagnose it as ``trainwright train`` does."""
    config = rl_config({"env": {"id": "CartPole-v1"}, "evaluate": EVALUATE, **raw})
    evaluator = Evaluator(config)
    history = History(evaluator, planned_updates(config)[0])
    result = train(config, [history], evaluator=evaluator)
    env = {"reward_threshold": env_spec(config.env).reward_threshold, "discrete": True, "actions": 2}
    return diagnose_rl(history.rows, {"test": {"mean_return": result.final.mean}}, env=env, algo=config.algo.name)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        # Tuned PPO on a short budget: it is learning, nothing is wrong.
        ({"algo": {"name": "ppo", "steps": 8192}}, None),
        # Steps too small to move the policy at all.
        ({"algo": {"name": "ppo", "steps": 5120, "lr": 1e-7, "anneal_lr": False}}, "no_improvement"),
        # Huge steps with no clipping to speak of: the policy turns deterministic (and bad) in two updates.
        ({"algo": {"name": "ppo", "steps": 5120, "lr": 0.05, "anneal_lr": False, "anneal_clip": False, "clip": 10, "epochs": 30}},
         "entropy_collapse"),
        ({"algo": {"name": "reinforce", "steps": 5120, "lr": 0.1}}, "entropy_collapse"),
        # No discount, a target network refreshed every step, a large learning rate: Q-values run away.
        ({"algo": {"name": "dqn", "steps": 1500, "lr": 0.01, "gamma": 1.0, "target_update_interval": 1, "double_q": False,
                   "max_grad_norm": 1000, "learning_starts": 200, "train_freq": 4, "gradient_steps": 4}}, "value_divergence"),
    ],
    ids=["healthy-ppo", "lr-too-low", "ppo-collapse", "reinforce-collapse", "dqn-divergence"],
)
def test_broken_runs_get_their_finding(raw, kind):
    findings = diagnose_run(raw)
    assert [f["kind"] for f in findings] == ([kind] if kind else []), findings
    for f in findings:
        assert f["env_steps"] > 0 and f["evidence"] and f["remedies"]


def rows(values: dict[str, list[float]], steps: int = 1000) -> list[dict]:
    n = len(next(iter(values.values())))
    return [{"env_steps": (i + 1) * steps, **{key: column[i] for key, column in values.items()}} for i in range(n)]


def test_a_nan_value_loss_is_a_divergence_but_a_loss_not_yet_logged_is_not():
    history = rows({"episode_return": [20.0] * 10, "value_loss": [5.0] * 9 + [float("nan")], "entropy": [0.69] * 10})
    assert [f["kind"] for f in diagnose_rl(history, algo="ppo")] == ["value_divergence"]
    dqn = [{k: v for k, v in row.items() if k != "value_loss"} for row in history]  # q_loss absent: DQN before learning_starts
    assert "value_divergence" not in [f["kind"] for f in diagnose_rl(dqn, algo="dqn")]


def test_a_growing_value_loss_diverges_only_when_the_critic_explains_nothing():
    growing = [1.0] * 5 + [10.0 ** k for k in range(1, 6)] + [1e5] * 5
    rising = [20.0 + 30 * i for i in range(15)]  # returns that improve: growth of the value scale is expected then
    worse = rows({"episode_return": rising, "value_loss": growing, "explained_variance": [-3.0] * 15, "entropy": [0.6] * 15})
    assert [f["kind"] for f in diagnose_rl(worse, algo="ppo")] == ["value_divergence"]
    fine = rows({"episode_return": rising, "value_loss": growing, "explained_variance": [0.9] * 15, "entropy": [0.6] * 15})
    assert diagnose_rl(fine, env={"reward_threshold": 475.0}, algo="ppo") == []


def test_entropy_that_falls_after_the_policy_learned_is_not_a_collapse():
    learned = rows({"episode_return": [20.0, 100.0, 300.0, 480.0, 500.0, 500.0], "entropy": [0.69, 0.5, 0.2, 0.05, 0.02, 0.01]})
    env = {"reward_threshold": 475.0, "discrete": True, "actions": 2}
    assert diagnose_rl(learned, {"test": {"mean_return": 500.0}}, env=env, algo="ppo") == []


def test_without_a_solved_level_no_improvement_is_judged_against_the_first_returns():
    flat = rows({"episode_return": [-3.0, -2.9, -3.1, -3.0, -2.95, -3.05, -3.0], "entropy": [1.0] * 7})
    env = {"reward_threshold": None, "discrete": True, "actions": 3}
    assert [f["kind"] for f in diagnose_rl(flat, env=env, algo="ppo")] == ["no_improvement"]
    better = rows({"episode_return": [-3.0, -2.9, -3.1, -2.0, -1.0, -0.5, -0.2], "entropy": [1.0] * 7})
    assert diagnose_rl(better, env=env, algo="ppo") == []


ALGO_CONFIGS = {"ppo": PPOConfig, "dqn": DQNConfig, "reinforce": ReinforceConfig}
SECTIONS = {"env": EnvConfig, "algo": None, "model": RLConfig.model_fields["model"].annotation}


@pytest.mark.parametrize("kind", sorted(REMEDIES))
def test_every_remedy_names_keys_of_the_rl_schema(kind):
    for algo, remedies in REMEDIES[kind].items():
        for remedy in remedies:
            for section, key in re.findall(r"\b(env|algo|model)\.(\w+)", remedy):
                schema = ALGO_CONFIGS[algo] if section == "algo" else SECTIONS[section]
                assert key in schema.model_fields, f"{kind} / {algo}: {section}.{key} in {remedy!r}"
