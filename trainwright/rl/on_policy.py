"""What the on-policy agents (PPO, REINFORCE) share: their setup, rollout storage, truncation and report.

Both collect rollouts of ``n_steps`` from ``n_envs`` environments with an actor-critic policy and
learn from them before collecting the next; they differ only in how they learn (``ppo.py``,
``reinforce.py``, each one loop). This module holds the rest, so a change to the bookkeeping is made
once: the networks and counters, the (T, N, ...) rollout tensors, the bootstrap of an episode a time
limit cut, and the ``Progress`` handed to observers after each update.

Example:
    >>> class MyAlgo(OnPolicyAgent):
    ...     algo = "mine"
    ...     def train(self, observers=()): ...
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from trainwright.config.rl import RLConfig
from trainwright.rl.agent import Checkpointed, EpisodeStats, Observer, Progress, notify, seeded
from trainwright.rl.envs import action_spec, make_envs, obs_size
from trainwright.rl.policies import ActorCritic
from trainwright.rl.scaling import RewardScaler


class OnPolicyAgent(Checkpointed):
    """Environments, actor-critic policy, Adam, random generator, counters and rollout storage (T, N, ...)."""

    parts = ("policy", "optimizer", "episodes", "reward_scaler")
    restarted = ("episodes", "reward_scaler")

    def __init__(self, config: RLConfig, adam_eps: float = 1e-8):
        self.config, algo = config, config.algo
        self.envs = make_envs(config.env)
        self.action = action_spec(self.envs)
        n, steps, features = self.envs.num_envs, algo.n_steps, obs_size(self.envs)
        with seeded(config.seed):
            self.policy = ActorCritic(
                features, self.action.discrete, self.action.size,
                config.model.hidden, config.model.activation, config.env.normalize_obs,
            )
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=algo.lr, eps=adam_eps, fused=True)
        self.generator = torch.Generator().manual_seed(config.seed)  # every sample and shuffle draws from it
        # The budget in whole rollouts, never more than algo.steps env steps.
        self.total_updates = max(1, algo.steps // (n * steps))
        self.env_steps = self.updates = 0
        self.seconds = 0.0
        self.stop_reason: str | None = None
        self.episodes = EpisodeStats(n)
        self.reward_scaler = RewardScaler(n, algo.gamma, config.env.normalize_reward)
        obs, _ = self.envs.reset(seed=config.seed)
        self.next_obs = torch.tensor(obs, dtype=torch.float32).reshape(n, features)  # (N, F)
        # Rollout storage, (T, N, ...), rewritten by every rollout.
        action_shape = () if self.action.discrete else (self.action.size,)
        self.obs = torch.zeros(steps, n, features)
        self.actions = torch.zeros((steps, n, *action_shape), dtype=torch.long if self.action.discrete else torch.float32)
        self.rewards, self.dones = torch.zeros(steps, n), torch.zeros(steps, n)

    def request_stop(self, reason: str) -> None:
        self.stop_reason = reason

    def bootstrap_truncated(
        self, reward: torch.Tensor, terminated: np.ndarray, truncated: np.ndarray, info: dict[str, Any]
    ) -> None:
        """A time limit cut these episodes, it did not end them: their last reward (N,) gains gamma * V(final observation)."""
        cut = truncated & ~terminated
        if cut.any():
            final = torch.tensor(np.stack(info["final_obs"][cut]), dtype=torch.float32).reshape(int(cut.sum()), -1)
            with torch.no_grad():
                reward[torch.from_numpy(cut)] += self.config.algo.gamma * self.policy.value(final)

    def report(self, observers: list[Observer] | tuple[Observer, ...], started: float, metrics: dict[str, float]) -> None:
        """Count the update that began at ``started`` (perf_counter) and hand observers its ``Progress``."""
        self.updates += 1
        self.seconds += time.perf_counter() - started
        ended_returns, ended_lengths = self.episodes.pop()
        planned = self.total_updates * self.envs.num_envs * self.config.algo.n_steps
        progress = Progress(self.env_steps, planned, self.updates, self.seconds, ended_returns, ended_lengths, metrics)
        notify(observers, "on_update", self, progress)
