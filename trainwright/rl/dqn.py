"""Deep Q-learning (Mnih et al. 2015) with double Q (van Hasselt et al. 2016), in one loop.

Each round: ``train_freq`` env steps with an epsilon-greedy policy into a replay buffer (uniformly
random actions until ``learning_starts``), then ``gradient_steps`` steps of Huber loss between
Q(s, a) and r + gamma * Q_target(s', a*), where a* is the online network's argmax (double Q) or
the target's own (plain DQN). The target network follows the online one every
``target_update_interval`` env steps (copied when tau = 1, Polyak-averaged below). Settings
follow Stable-Baselines3's DQN, so rl-zoo3's tuned values mean the same here. Discrete actions only.

Example:
    >>> agent = DQN(rl_config({"env": {"id": "CartPole-v1"}, "algo": {"name": "dqn", "steps": 50000}}))
    >>> agent.train()
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.nn import functional as F

from trainwright.config.rl import DQNConfig, RLConfig
from trainwright.errors import TrainwrightError
from trainwright.rl.agent import Checkpointed, EpisodeStats, Observer, Progress, notify, seeded
from trainwright.rl.envs import action_spec, make_envs, obs_size
from trainwright.rl.policies import QNetwork
from trainwright.rl.replay import ReplayBuffer


def linear_epsilon(step: int, start: float, end: float, duration: float) -> float:
    """Epsilon after ``step`` env steps: falls linearly from ``start`` to ``end`` over ``duration`` steps, then stays.

    Example:
        >>> linear_epsilon(500, start=1.0, end=0.1, duration=1000)
        0.55
    """
    if duration <= 0 or step >= duration:
        return end
    return start + (end - start) * step / duration


class DQN(Checkpointed):
    """The agent: environments, online and target Q-networks, optimizer, replay buffer, generator and counters."""

    algo = "dqn"
    counters = ("env_steps", "updates", "gradient_steps", "last_target_update", "seconds")
    parts = ("policy", "target", "optimizer", "buffer", "episodes")

    def __init__(self, config: RLConfig):
        if not isinstance(config.algo, DQNConfig):
            raise TrainwrightError(f"DQN needs algo.name: dqn, got {config.algo.name}")
        self.config, algo = config, config.algo
        self.envs = make_envs(config.env)
        self.action = action_spec(self.envs)
        if not self.action.discrete:
            raise TrainwrightError(
                f"algo.name = dqn needs Discrete actions, but {config.env.id} has continuous (Box) actions; "
                "use algo.name: ppo, or discretize the actions with a gymnasium ActionWrapper"
            )
        n, features = self.envs.num_envs, obs_size(self.envs)
        hidden, activation, normalize = config.model.hidden, config.model.activation, config.env.normalize_obs
        with seeded(config.seed):
            self.policy = QNetwork(features, self.action.size, hidden, activation, normalize)  # the online network
            self.target = QNetwork(features, self.action.size, hidden, activation, normalize)
        self.target.load_state_dict(self.policy.state_dict())
        self.target.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=algo.lr, fused=True)
        self.buffer = ReplayBuffer(algo.buffer_size, features)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.total_steps = algo.steps
        self.env_steps = self.updates = self.gradient_steps = self.last_target_update = 0
        self.seconds = 0.0
        self.stop_reason: str | None = None
        self.episodes = EpisodeStats(n)
        obs, _ = self.envs.reset(seed=config.seed)
        self.next_obs = torch.tensor(obs, dtype=torch.float32).reshape(n, features)  # (N, F)

    def request_stop(self, reason: str) -> None:
        self.stop_reason = reason

    def epsilon(self) -> float:
        algo = self.config.algo
        return linear_epsilon(self.env_steps, algo.epsilon_start, algo.epsilon_end, algo.exploration_fraction * algo.steps)

    def train(self, observers: list[Observer] | tuple[Observer, ...] = ()) -> DQN:
        """Run rounds (collect train_freq steps, then learn) until the step budget is spent or an observer asks to stop."""
        algo, n = self.config.algo, self.envs.num_envs
        notify(observers, "on_train_begin", self)
        while self.env_steps < self.total_steps and self.stop_reason is None:
            started, round_start = time.perf_counter(), self.env_steps
            # ── collect: train_freq env steps (whole vector steps), epsilon-greedy ──
            for _ in range(max(1, algo.train_freq // n)):
                if self.env_steps + n > self.total_steps:
                    break
                epsilon = 1.0 if self.env_steps < algo.learning_starts else self.epsilon()
                explore = torch.rand(n, generator=self.generator) < epsilon  # (N,)
                random_actions = torch.randint(self.action.size, (n,), generator=self.generator)
                if explore.all():
                    actions = random_actions
                else:
                    with torch.no_grad():
                        actions = torch.where(explore, random_actions, self.policy(self.next_obs).argmax(-1))
                obs, reward, terminated, truncated, info = self.envs.step(actions.numpy())
                done = terminated | truncated
                self.episodes.step(reward, done)
                next_obs = torch.tensor(obs, dtype=torch.float32).reshape(n, -1)
                real_next = next_obs.clone()  # where an episode ended, the buffer needs its final observation
                if done.any():
                    ended = np.flatnonzero(done)
                    final = np.stack(info["final_obs"][ended])
                    real_next[ended] = torch.tensor(final, dtype=torch.float32).reshape(len(ended), -1)
                rewards, ends = torch.as_tensor(reward, dtype=torch.float32), torch.from_numpy(terminated).float()
                self.buffer.add(self.next_obs, actions, rewards, real_next, ends)
                self.next_obs = next_obs
                self.env_steps += n
                if self.env_steps - self.last_target_update >= algo.target_update_interval:
                    self._update_target(algo.tau)
                    self.last_target_update = self.env_steps

            # ── learn: gradient_steps of the TD loss on replayed minibatches ──
            losses, q_means = torch.zeros(()), torch.zeros(())
            learned = self.env_steps >= algo.learning_starts and self.buffer.size >= algo.batch_size
            lr = algo.lr * (1.0 - round_start / self.total_steps) if algo.anneal_lr else algo.lr  # as of the round's start
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            for _ in range(algo.gradient_steps if learned else 0):
                obs_b, actions_b, rewards_b, next_b, terminated_b = self.buffer.sample(algo.batch_size, self.generator)
                with torch.no_grad():
                    next_q = self.target(next_b)  # (B, A)
                    if algo.double_q:  # the online network picks a*, the target network values it
                        best = self.policy(next_b).argmax(-1, keepdim=True)
                    else:
                        best = next_q.argmax(-1, keepdim=True)
                    targets = rewards_b + algo.gamma * (1.0 - terminated_b) * next_q.gather(1, best).squeeze(1)  # (B,)
                q = self.policy(obs_b).gather(1, actions_b.unsqueeze(1)).squeeze(1)  # (B,)
                loss = F.smooth_l1_loss(q, targets)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.policy.parameters(), algo.max_grad_norm)
                self.optimizer.step()
                self.gradient_steps += 1
                losses += loss.detach()
                q_means += q.detach().mean()

            self.policy.obs_norm.update(self.next_obs)  # no-op unless env.normalize_obs
            self.target.obs_norm.load_state_dict(self.policy.obs_norm.state_dict())
            self.updates += 1
            self.seconds += time.perf_counter() - started
            k = algo.gradient_steps if learned else 0
            metrics = {"epsilon": 1.0 if self.env_steps < algo.learning_starts else self.epsilon(), "lr": lr}
            if k:
                metrics.update(q_loss=float(losses) / k, q_mean=float(q_means) / k)
            ended_returns, ended_lengths = self.episodes.pop()
            progress = Progress(
                self.env_steps, self.total_steps, self.updates, self.seconds, ended_returns, ended_lengths, metrics
            )
            notify(observers, "on_update", self, progress)
            if self.env_steps + n > self.total_steps:
                break  # the budget has no room for another vector step
        notify(observers, "on_train_end", self)
        return self

    @torch.no_grad()
    def _update_target(self, tau: float) -> None:
        for target, online in zip(self.target.parameters(), self.policy.parameters()):
            target.lerp_(online, tau)  # tau = 1: a copy
