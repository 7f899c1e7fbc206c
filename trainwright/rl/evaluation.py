"""Evaluation episodes on separate, seeded environments, and the observer that runs them during training.

``evaluate`` plays exactly ``episodes`` episodes with a policy (deterministic by default) on fresh
environments seeded with ``seed``; each parallel environment plays a fixed share, so short episodes
are not over-counted (the bias of stopping at the first N episodes to end). ``Evaluator`` evaluates
every ``evaluate.interval`` env steps and at the end of training, and keeps the policy with the
best mean return; ``final_evaluation`` scores that kept policy on ``final_episodes`` episodes with
other seeds than the ones it was picked on.

Example:
    >>> evaluator = Evaluator(config)
    >>> agent = PPO(config).train([evaluator])
    >>> final_evaluation(agent, evaluator).mean
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from trainwright.config.rl import EnvConfig, RLConfig
from trainwright.rl.agent import Agent, Observer, Progress
from trainwright.rl.envs import action_spec, make_envs, to_env_actions

# The final evaluation's seeds start here above the periodic ones, so the kept policy is scored on
# episodes it was not selected on.
FINAL_SEED_OFFSET = 1000


@dataclass(frozen=True)
class EvalResult:
    returns: np.ndarray  # (episodes,) in the order the episodes ended
    lengths: np.ndarray  # (episodes,)
    seed: int  # environment i of n was reset with seed + i
    seconds: float

    @property
    def mean(self) -> float:
        return float(self.returns.mean())

    @property
    def std(self) -> float:
        return float(self.returns.std())

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean, "std": self.std, "returns": self.returns.tolist(), "lengths": self.lengths.tolist(),
            "seed": self.seed, "seconds": self.seconds,
        }


def evaluate(
    policy: nn.Module, env: EnvConfig, episodes: int, seed: int, deterministic: bool = True, max_envs: int = 16
) -> EvalResult:
    """Play ``episodes`` episodes with ``policy.act`` on new environments reset with ``seed``.

    Example:
        >>> evaluate(agent.policy, config.env, episodes=100, seed=10_000).mean
        500.0
    """
    started = time.perf_counter()
    n = min(episodes, max_envs)
    envs = make_envs(env, n_envs=n)
    spec = action_spec(envs)
    quota = np.array([(episodes + i) // n for i in range(n)])  # episodes each environment plays; they sum to `episodes`
    played = np.zeros(n, dtype=np.int64)
    running, length = np.zeros(n), np.zeros(n, dtype=np.int64)
    returns: list[float] = []
    lengths: list[int] = []
    generator = torch.Generator().manual_seed(seed)
    obs, _ = envs.reset(seed=seed)
    was_training = policy.training
    policy.eval()
    try:
        while (played < quota).any():
            observations = torch.tensor(obs, dtype=torch.float32).reshape(n, -1)
            actions = policy.act(observations, deterministic=deterministic, generator=generator)
            obs, reward, terminated, truncated, _ = envs.step(to_env_actions(actions, spec))
            running += reward
            length += 1
            done = terminated | truncated
            if done.any():
                for i in np.flatnonzero(done & (played < quota)):
                    returns.append(float(running[i]))
                    lengths.append(int(length[i]))
                    played[i] += 1
                running[done], length[done] = 0.0, 0
    finally:
        policy.train(was_training)
        envs.close()
    return EvalResult(np.array(returns), np.array(lengths), seed, time.perf_counter() - started)


class Evaluator(Observer):
    """Evaluate every ``evaluate.interval`` env steps and when training ends; keep the best policy's weights.

    ``history`` holds one entry per evaluation (env steps, mean, std, returns, seed); ``best_state``
    is the policy's state_dict at the best mean return (the later one on a tie: more trained).
    """

    def __init__(self, config: RLConfig):
        self.env, self.plan, self.seed = config.env, config.evaluate, config.eval_seed
        self.history: list[dict[str, Any]] = []
        self.best_return = -math.inf
        self.best_env_steps = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.next_at = self.plan.interval

    def on_update(self, agent: Agent, progress: Progress) -> None:
        if progress.env_steps >= self.next_at:
            self.evaluate_now(agent)
            self.next_at = (progress.env_steps // self.plan.interval + 1) * self.plan.interval

    def on_train_end(self, agent: Agent) -> None:
        if not self.history or self.history[-1]["env_steps"] != agent.env_steps:
            self.evaluate_now(agent)

    def evaluate_now(self, agent: Agent) -> EvalResult:
        result = evaluate(agent.policy, self.env, self.plan.episodes, self.seed, self.plan.deterministic)
        self.history.append({"env_steps": agent.env_steps, **result.to_dict()})
        if result.mean >= self.best_return:
            self.best_return, self.best_env_steps = result.mean, agent.env_steps
            self.best_state = {k: v.detach().clone() for k, v in agent.policy.state_dict().items()}
        return result

    def best_policy(self, agent: Agent) -> nn.Module:
        """A copy of the agent's policy holding the best weights (the agent's own when none were evaluated)."""
        policy = copy.deepcopy(agent.policy)
        if self.best_state is not None:
            policy.load_state_dict(self.best_state)
        return policy

    def state_dict(self) -> dict[str, Any]:
        return {
            "history": copy.deepcopy(self.history), "best_return": self.best_return, "best_env_steps": self.best_env_steps,
            "best_state": self.best_state, "next_at": self.next_at,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history, self.best_return = copy.deepcopy(state["history"]), state["best_return"]
        self.best_env_steps, self.best_state, self.next_at = state["best_env_steps"], state["best_state"], state["next_at"]


def final_evaluation(agent: Agent, evaluator: Evaluator) -> EvalResult:
    """The kept (best) policy on ``evaluate.final_episodes`` episodes, seeded apart from the selection's."""
    plan = agent.config.evaluate
    seed = agent.config.eval_seed + FINAL_SEED_OFFSET
    return evaluate(evaluator.best_policy(agent), agent.config.env, plan.final_episodes, seed, plan.deterministic)
