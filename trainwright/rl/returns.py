"""Generalized advantage estimation (Schulman et al. 2016, arXiv 1506.02438) over a rollout.

One backward pass over time, vectorized over environments. ``dones[t]`` says the episode ended
with step t, so nothing flows back across it; a truncated episode (time limit) is bootstrapped
before this, by adding gamma * V(final observation) to its last reward. With ``lam = 1`` the
advantage plus the value is the Monte-Carlo return bootstrapped at the rollout's end, REINFORCE's
target.

Example:
    >>> rewards = torch.ones(3, 1); values = torch.zeros(3, 1); dones = torch.zeros(3, 1)
    >>> gae(rewards, values, dones, last_value=torch.zeros(1), gamma=0.5, lam=1.0).squeeze(1)
    tensor([1.7500, 1.5000, 1.0000])
"""

from __future__ import annotations

import torch


def gae(
    rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, last_value: torch.Tensor, gamma: float, lam: float
) -> torch.Tensor:
    """Advantages (T, N) from rewards, values and dones (T, N) and the value after the last step (N,)."""
    advantages = torch.empty_like(rewards)
    running = torch.zeros_like(last_value)  # (N,) the advantage of step t+1, carried backwards
    next_value = last_value
    for t in range(rewards.shape[0] - 1, -1, -1):
        alive = 1.0 - dones[t]  # 0 where the episode ended at t: no value nor advantage from the next one
        delta = rewards[t] + gamma * next_value * alive - values[t]  # the TD error of step t
        running = delta + gamma * lam * alive * running
        advantages[t] = running
        next_value = values[t]
    return advantages
