"""Proximal policy optimization (Schulman et al. 2017, arXiv 1707.06347), in one loop.

Each update: collect a rollout of ``n_steps`` from ``n_envs`` environments with the current policy,
estimate advantages with GAE, then take ``epochs`` passes of shuffled minibatches over the clipped
surrogate objective, a value loss and an entropy bonus. Discrete actions use a categorical head,
Box actions a diagonal Gaussian. Conventions follow Stable-Baselines3 where the reference
implementations differ (so rl-zoo3's tuned settings mean the same here): value loss is the plain
MSE times ``vf_coef``, a time-limit truncation is bootstrapped with gamma * V(final observation),
advantages are normalized per minibatch. Read top to bottom: ``train`` is the whole algorithm.

Example:
    >>> agent = PPO(rl_config({"env": {"id": "CartPole-v1"}, "algo": {"name": "ppo", "steps": 20000}}))
    >>> agent.train()
    >>> agent.policy.act(torch.zeros(1, 4))
"""

from __future__ import annotations

import time

import torch
from torch.nn import functional as F

from trainwright.config.rl import PPOConfig, RLConfig
from trainwright.errors import TrainwrightError
from trainwright.rl.agent import Observer, explained_variance, notify
from trainwright.rl.envs import to_env_actions
from trainwright.rl.on_policy import OnPolicyAgent
from trainwright.rl.returns import gae


def clipped_surrogate(ratio: torch.Tensor, advantages: torch.Tensor, clip: float) -> torch.Tensor:
    """PPO's policy loss: -mean(min(r A, clip(r, 1 - eps, 1 + eps) A)) for ratios r = pi_new / pi_old (B,).

    Example:
        >>> clipped_surrogate(torch.tensor([1.5]), torch.tensor([1.0]), clip=0.2)  # the gain is capped at 1.2
        tensor(-1.2000)
    """
    return -torch.min(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages).mean()


class PPO(OnPolicyAgent):
    """The agent (``OnPolicyAgent``: environments, policy, Adam, generator, counters, rollouts); ``train`` runs the budget."""

    algo = "ppo"

    def __init__(self, config: RLConfig):
        if not isinstance(config.algo, PPOConfig):
            raise TrainwrightError(f"PPO needs algo.name: ppo, got {config.algo.name}")
        super().__init__(config, adam_eps=1e-5)
        steps, n = config.algo.n_steps, self.envs.num_envs
        self.log_probs, self.values = torch.zeros(steps, n), torch.zeros(steps, n)  # the rollout's, for the ratio and GAE

    def train(self, observers: list[Observer] | tuple[Observer, ...] = ()) -> PPO:
        """Run updates until the step budget is spent or an observer asks to stop."""
        algo, n, steps = self.config.algo, self.envs.num_envs, self.config.algo.n_steps
        batch = n * steps
        notify(observers, "on_train_begin", self)
        while self.updates < self.total_updates and self.stop_reason is None:
            started = time.perf_counter()
            # ── schedules: lr and clip fall linearly towards 0 over the budget when annealed ──
            remaining = 1.0 - self.updates / self.total_updates
            lr = algo.lr * remaining if algo.anneal_lr else algo.lr
            clip = algo.clip * remaining if algo.anneal_clip else algo.clip
            for group in self.optimizer.param_groups:
                group["lr"] = lr

            # ── rollout: T steps of N environments with the current policy ──
            for t in range(steps):
                self.obs[t] = self.next_obs
                with torch.no_grad():
                    action, log_prob, value = self.policy.sample(self.next_obs, self.generator)
                obs, reward, terminated, truncated, info = self.envs.step(to_env_actions(action, self.action))
                done = terminated | truncated
                self.episodes.step(reward, done)
                reward = self.reward_scaler(reward, done)  # (N,) float32, as is unless env.normalize_reward
                self.bootstrap_truncated(reward, terminated, truncated, info)
                self.actions[t], self.log_probs[t], self.values[t] = action, log_prob, value
                self.rewards[t], self.dones[t] = reward, torch.from_numpy(done)
                self.next_obs = torch.tensor(obs, dtype=torch.float32).reshape(n, -1)
            self.env_steps += batch

            # ── advantages (GAE) and the value targets ──
            with torch.no_grad():
                last_value = self.policy.value(self.next_obs)  # (N,)
            advantages = gae(self.rewards, self.values, self.dones, last_value, algo.gamma, algo.gae_lambda)  # (T, N)
            returns = advantages + self.values
            b_obs, b_actions = self.obs.reshape(batch, -1), self.actions.reshape(batch, *self.actions.shape[2:])
            b_log_probs, b_values = self.log_probs.reshape(batch), self.values.reshape(batch)
            b_advantages, b_returns = advantages.reshape(batch), returns.reshape(batch)

            # ── epochs of shuffled minibatches over the clipped objective ──
            sums = torch.zeros(5)  # policy loss, value loss, entropy, approx KL, clip fraction (summed over minibatches)
            minibatches = 0
            for _ in range(algo.epochs):
                order = torch.randperm(batch, generator=self.generator)
                for start in range(0, batch, algo.minibatch_size):
                    idx = order[start : start + algo.minibatch_size]
                    # With no entropy bonus the entropy is only reported: kept out of the graph it costs no backward.
                    log_prob, entropy, value = self.policy.evaluate(b_obs[idx], b_actions[idx], entropy_grad=algo.ent_coef > 0)
                    log_ratio = log_prob - b_log_probs[idx]
                    ratio = log_ratio.exp()
                    adv = b_advantages[idx]
                    if algo.normalize_advantage and len(idx) > 1:
                        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                    policy_loss = clipped_surrogate(ratio, adv, clip)
                    if algo.clip_value is not None:  # keep the new value within clip_value of the rollout's
                        value = b_values[idx] + (value - b_values[idx]).clamp(-algo.clip_value, algo.clip_value)
                    value_loss = F.mse_loss(value, b_returns[idx])
                    entropy = entropy.mean()
                    loss = policy_loss + algo.vf_coef * value_loss
                    if algo.ent_coef > 0:
                        loss = loss - algo.ent_coef * entropy

                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(self.policy.parameters(), algo.max_grad_norm)
                    self.optimizer.step()
                    with torch.no_grad():  # http://joschu.net/blog/kl-approx.html
                        approx_kl = ((ratio - 1) - log_ratio).mean()
                        clipped = ((ratio - 1).abs() > clip).float().mean()
                        sums += torch.stack([policy_loss, value_loss, entropy, approx_kl, clipped]).detach()
                    minibatches += 1
                if algo.target_kl is not None and approx_kl > algo.target_kl:
                    break

            # The observation statistics move only between updates, so a rollout and its update see the same ones.
            self.policy.obs_norm.update(b_obs)
            means = (sums / minibatches).tolist()
            metrics = dict(zip(("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction"), means))
            metrics.update(explained_variance=explained_variance(b_values, b_returns), lr=lr, clip=clip)
            if not self.action.discrete:
                metrics["action_std"] = float(self.policy.log_std.detach().exp().mean())
            self.report(observers, started, metrics)
        notify(observers, "on_train_end", self)
        return self
