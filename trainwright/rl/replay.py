"""A replay buffer: a ring of transitions in preallocated tensors, sampled uniformly.

Rows are written at ``pos`` and wrap around to the start once ``capacity`` is reached, overwriting
the oldest. ``next_obs`` is the true next observation, also when an episode ended (the env's final
observation, not the first one of the next episode), and ``terminated`` excludes time-limit
truncations, so a truncated transition is still bootstrapped (SB3's handle_timeout_termination).

Example:
    >>> buffer = ReplayBuffer(capacity=3, obs_size=2)
    >>> buffer.add(torch.zeros(2, 2), torch.tensor([0, 1]), torch.ones(2), torch.zeros(2, 2), torch.zeros(2))
    >>> buffer.size, buffer.pos
    (2, 2)
"""

from __future__ import annotations

from typing import Any

import torch


class ReplayBuffer:
    def __init__(self, capacity: int, obs_size: int):
        self.capacity = capacity
        self.obs = torch.zeros(capacity, obs_size)
        self.next_obs = torch.zeros(capacity, obs_size)
        self.actions = torch.zeros(capacity, dtype=torch.long)
        self.rewards = torch.zeros(capacity)
        self.terminated = torch.zeros(capacity)
        self.pos = 0  # the next row to write
        self.size = 0  # rows that hold a transition

    def add(
        self, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, next_obs: torch.Tensor, terminated: torch.Tensor
    ) -> None:
        """Store N transitions at once (one vector-env step): obs (N, F), actions (N,), rewards (N,), next_obs (N, F),
        terminated (N,)."""
        rows = (self.pos + torch.arange(len(actions))) % self.capacity  # wraps around the end of the ring
        self.obs[rows], self.next_obs[rows] = obs, next_obs
        self.actions[rows], self.rewards[rows], self.terminated[rows] = actions, rewards, terminated
        self.pos = (self.pos + len(actions)) % self.capacity
        self.size = min(self.size + len(actions), self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """``batch_size`` transitions drawn uniformly with replacement: obs, actions, rewards, next_obs, terminated."""
        rows = torch.randint(self.size, (batch_size,), generator=generator)
        return self.obs[rows], self.actions[rows], self.rewards[rows], self.next_obs[rows], self.terminated[rows]

    def state_dict(self) -> dict[str, Any]:
        """The filled rows only (a young buffer makes a small checkpoint), with the write position."""
        n = self.size
        return {
            "pos": self.pos, "size": n, "obs": self.obs[:n].clone(), "next_obs": self.next_obs[:n].clone(),
            "actions": self.actions[:n].clone(), "rewards": self.rewards[:n].clone(), "terminated": self.terminated[:n].clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n = state["size"]
        if n > self.capacity:
            raise ValueError(
                f"the checkpoint's replay buffer holds {n} transitions, more than algo.buffer_size = {self.capacity}"
            )
        for name in ("obs", "next_obs", "actions", "rewards", "terminated"):
            getattr(self, name)[:n] = state[name]
        self.pos, self.size = state["pos"], n
