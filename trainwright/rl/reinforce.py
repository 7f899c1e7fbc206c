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

import torch
from torch.nn import functional as F

from trainwright.config.rl import ReinforceConfig, RLConfig
from trainwright.errors import TrainwrightError
from trainwright.rl.agent import Observer, explained_variance, notify
from trainwright.rl.envs import to_env_actions
from trainwright.rl.on_policy import OnPolicyAgent
from trainwright.rl.returns import gae


class Reinforce(OnPolicyAgent):
    """The agent (``OnPolicyAgent``: environments, policy with its value baseline, Adam, generator, counters, rollouts)."""

    algo = "reinforce"

    def __init__(self, config: RLConfig):
        if not isinstance(config.algo, ReinforceConfig):
            raise TrainwrightError(f"Reinforce needs algo.name: reinforce, got {config.algo.name}")
        super().__init__(config)

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
                self.bootstrap_truncated(reward, terminated, truncated, info)
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
            policy_loss, value_loss, entropy = torch.stack([policy_loss, value_loss, entropy]).tolist()
            metrics = {
                "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy,
                "explained_variance": explained_variance(value.detach(), returns), "lr": algo.lr,
            }
            self.report(observers, started, metrics)
        notify(observers, "on_train_end", self)
        return self
