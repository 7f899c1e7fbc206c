"""REINFORCE with a learned baseline (Williams 1992; Sutton and Barto 2018, section 13.4), in one loop.

Each update: collect ``n_steps`` from ``n_envs`` environments, compute each step's return
G_t = r_t + gamma r_{t+1} + ... (bootstrapped with V only where the rollout or a time limit cuts an
episode), and take one gradient step on -log pi(a_t|s_t) (G_t - V(s_t)) plus the value's squared
error. The returns are GAE with lambda = 1, the same function PPO uses. No clipping, no epochs:
the plain policy gradient, a baseline for what PPO adds.

Example:
    >>> agent = Reinforce(rl_config({"env": {"id": "CartPole-v1"}, "algo": {"name": "reinforce"}}))
    >>> agent.train()
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from trainwright.config.rl import ReinforceConfig, RLConfig
from trainwright.errors import TrainwrightError
from trainwright.rl.agent import EpisodeStats, Observer, Progress, explained_variance, notify, seeded
from trainwright.rl.envs import action_spec, env_state, make_envs, obs_size, restore_envs, to_env_actions
from trainwright.rl.policies import ActorCritic
from trainwright.rl.returns import gae
from trainwright.rl.scaling import RewardScaler


class Reinforce:
    """The agent: environments, policy with its value baseline, optimizer, generator and counters."""

    def __init__(self, config: RLConfig):
        if not isinstance(config.algo, ReinforceConfig):
            raise TrainwrightError(f"Reinforce needs algo.name: reinforce, got {config.algo.name}")
        self.config, algo = config, config.algo
        self.envs = make_envs(config.env)
        self.action = action_spec(self.envs)
        n, steps, features = self.envs.num_envs, algo.n_steps, obs_size(self.envs)
        with seeded(config.seed):
            self.policy = ActorCritic(
                features, self.action.discrete, self.action.size,
                config.model.hidden, config.model.activation, config.env.normalize_obs,
            )
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=algo.lr, fused=True)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.total_updates = max(1, algo.steps // (n * steps))
        self.env_steps = self.updates = 0
        self.seconds = 0.0
        self.stop_reason: str | None = None
        self.episodes = EpisodeStats(n)
        self.reward_scaler = RewardScaler(n, algo.gamma, config.env.normalize_reward)
        obs, _ = self.envs.reset(seed=config.seed)
        self.next_obs = torch.tensor(obs, dtype=torch.float32).reshape(n, features)  # (N, F)
        action_shape = () if self.action.discrete else (self.action.size,)
        self.obs = torch.zeros(steps, n, features)
        self.actions = torch.zeros((steps, n, *action_shape), dtype=torch.long if self.action.discrete else torch.float32)
        self.rewards, self.dones = torch.zeros(steps, n), torch.zeros(steps, n)

    def request_stop(self, reason: str) -> None:
        self.stop_reason = reason

    def train(self, observers: list[Observer] | tuple[Observer, ...] = ()) -> Reinforce:
        """Run updates until the step budget is spent or an observer asks to stop."""
        algo, n, steps = self.config.algo, self.envs.num_envs, self.config.algo.n_steps
        batch = n * steps
        notify(observers, "on_train_begin", self)
        while self.updates < self.total_updates and self.stop_reason is None:
            started = time.perf_counter()
            # ── rollout: T steps of N environments with the current policy ──
            for t in range(steps):
                self.obs[t] = self.next_obs
                with torch.no_grad():
                    action = self.policy.act(self.next_obs, deterministic=False, generator=self.generator)
                obs, reward, terminated, truncated, info = self.envs.step(to_env_actions(action, self.action))
                done = terminated | truncated
                self.episodes.step(reward, done)
                reward = self.reward_scaler(reward, done)  # (N,) float32, as is unless env.normalize_reward
                cut = truncated & ~terminated  # a time limit, not an ending: bootstrap with gamma * V(final observation)
                if cut.any():
                    final = torch.tensor(np.stack(info["final_obs"][cut]), dtype=torch.float32).reshape(int(cut.sum()), -1)
                    with torch.no_grad():
                        reward[torch.from_numpy(cut)] += algo.gamma * self.policy.value(final)
                self.actions[t], self.rewards[t], self.dones[t] = action, reward, torch.from_numpy(done)
                self.next_obs = torch.tensor(obs, dtype=torch.float32).reshape(n, -1)
            self.env_steps += batch

            # ── one policy-gradient step: -log pi(a|s) (G - V(s)) + vf_coef (V(s) - G)^2 - ent_coef H ──
            b_obs, b_actions = self.obs.reshape(batch, -1), self.actions.reshape(batch, *self.actions.shape[2:])
            log_prob, entropy, value = self.policy.evaluate(b_obs, b_actions)  # (T*N,) each
            with torch.no_grad():
                values = value.detach().reshape(steps, n)
                last_value = self.policy.value(self.next_obs)
                returns = (gae(self.rewards, values, self.dones, last_value, algo.gamma, lam=1.0) + values).reshape(batch)
            advantages = returns - value.detach()
            if algo.normalize_advantage:
                advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
            policy_loss = -(log_prob * advantages).mean()
            value_loss = F.mse_loss(value, returns)
            entropy = entropy.mean()
            loss = policy_loss + algo.vf_coef * value_loss - algo.ent_coef * entropy
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), algo.max_grad_norm)
            self.optimizer.step()

            self.policy.obs_norm.update(b_obs)
            self.updates += 1
            self.seconds += time.perf_counter() - started
            policy_loss, value_loss, entropy = torch.stack([policy_loss, value_loss, entropy]).tolist()
            metrics = {
                "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy,
                "explained_variance": explained_variance(value.detach(), returns), "lr": algo.lr,
            }
            ended_returns, ended_lengths = self.episodes.pop()
            planned = self.total_updates * batch
            progress = Progress(self.env_steps, planned, self.updates, self.seconds, ended_returns, ended_lengths, metrics)
            notify(observers, "on_update", self, progress)
        notify(observers, "on_train_end", self)
        return self

    # ── checkpoint: everything the next update depends on, as tensors and plain data ──
    def state_dict(self) -> dict[str, Any]:
        return {
            "algo": "reinforce", "env_steps": self.env_steps, "updates": self.updates, "seconds": self.seconds,
            "policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state(),
            "next_obs": self.next_obs.clone(), "episodes": self.episodes.state_dict(),
            "reward_scaler": self.reward_scaler.state_dict(),
            "envs": env_state(self.envs),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("algo") != "reinforce":
            raise TrainwrightError(f"this checkpoint holds a {state.get('algo')} agent, the config asks for reinforce")
        self.env_steps, self.updates, self.seconds = state["env_steps"], state["updates"], state["seconds"]
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.episodes.load_state_dict(state["episodes"])
        self.reward_scaler.load_state_dict(state["reward_scaler"])
        self.next_obs = state["next_obs"].clone()
        fresh = restore_envs(self.envs, state["envs"], seed=self.config.seed + self.env_steps)
        if fresh is not None:  # a native simulator (Box2D, MuJoCo) is not captured: fresh episodes, seeded by the step count
            self.next_obs = fresh
            self.episodes.restart()
            self.reward_scaler.restart()
