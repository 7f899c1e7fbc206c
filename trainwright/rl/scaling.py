"""Reward scaling: divide each reward by the running standard deviation of the discounted return.

Stable-Baselines3's ``VecNormalize(norm_reward=True)``, which rl-zoo3's ``normalize: true`` turns on:
with returns in the hundreds (Acrobot's -1 per step) the value loss would otherwise swamp the
policy's share of the clipped gradient norm. Only the scale changes (no mean is subtracted), so the
optimal policy is the same. Training-time only; evaluation reports raw returns.

Example:
    >>> scaler = RewardScaler(n_envs=2, gamma=0.99, enabled=True)
    >>> scaler(np.array([-1.0, -1.0]), np.array([False, False])).shape
    torch.Size([2])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trainwright.rl.policies import ObsNorm


class RewardScaler:
    def __init__(self, n_envs: int, gamma: float, enabled: bool, clip: float = 10.0, eps: float = 1e-8):
        self.gamma, self.enabled, self.clip, self.eps = gamma, enabled, clip, eps
        self.stats = ObsNorm(1, enabled=True)  # running mean/var of the discounted return, one "feature"
        self.returns = torch.zeros(n_envs, dtype=torch.float64)  # (N,) discounted return of each running episode

    def __call__(self, rewards: np.ndarray, dones: np.ndarray) -> torch.Tensor:
        """Rewards (N,) -> scaled float32 rewards (N,); ``dones`` (N,) restarts those environments' returns."""
        rewards = torch.from_numpy(np.asarray(rewards, dtype=np.float64))
        if not self.enabled:
            return rewards.float()
        self.returns = self.returns * self.gamma + rewards
        self.stats.update(self.returns[:, None])
        scaled = (rewards / torch.sqrt(self.stats.var[0] + self.eps)).clamp(-self.clip, self.clip)
        self.returns[torch.from_numpy(np.asarray(dones))] = 0.0
        return scaled.float()

    def restart(self) -> None:
        """Forget the running returns (the environments were reset without ending their episodes)."""
        self.returns.zero_()

    def state_dict(self) -> dict[str, Any]:
        return {"stats": self.stats.state_dict(), "returns": self.returns.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stats.load_state_dict(state["stats"])
        self.returns = state["returns"].clone()
