"""What every agent's loop shares: the observer hooks, the progress it reports, episode bookkeeping.

An agent (``PPO``, ``DQN``, ``Reinforce``) owns its loop. After each update it hands observers a
``Progress``: env steps so far, the episodes that ended since the last report and the update's
metrics. Observers watch and may call ``agent.request_stop``; they never reach into the loop. A
checkpoint is ``agent.state_dict()`` taken in ``on_update``, between two updates, where nothing is
half done.

Example:
    >>> class Print(Observer):
    ...     def on_update(self, agent, progress):
    ...         print(progress.env_steps, progress.metrics.get("entropy"))
    >>> PPO(config).train([Print()])
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from trainwright.config.rl import RLConfig
from trainwright.errors import TrainwrightError
from trainwright.rl.envs import env_state, restore_envs


@dataclass(frozen=True)
class Progress:
    """One update's report. ``seconds`` is the loop's own time (observers' time, evaluation included, is not in it)."""

    env_steps: int
    total_steps: int
    updates: int
    seconds: float
    episode_returns: list[float] = field(default_factory=list)  # episodes ended since the previous report
    episode_lengths: list[int] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)  # entropy, value_loss, explained_variance, lr, epsilon, ...

    @property
    def steps_per_second(self) -> float:
        return self.env_steps / self.seconds if self.seconds > 0 else float("nan")


class Agent(Protocol):
    """The face of every algorithm: what observers, evaluation and a recipe may use."""

    config: RLConfig
    env_steps: int
    updates: int
    policy: nn.Module  # has act(obs, deterministic, generator)
    stop_reason: str | None

    def train(self, observers: list[Observer] | tuple[Observer, ...] = ()) -> Agent: ...
    def request_stop(self, reason: str) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Observer:
    """Base with no-op hooks; subclasses override what they need (a checkpoint writer, a progress bar, evaluation)."""

    def on_train_begin(self, agent: Agent) -> None: ...
    def on_update(self, agent: Agent, progress: Progress) -> None: ...
    def on_train_end(self, agent: Agent) -> None: ...
    def state_dict(self) -> dict[str, Any]:
        return {}
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Checkpointed:
    """``state_dict``/``load_state_dict`` of an agent from the names it declares, so each algorithm says only what it has.

    An agent sets ``algo`` (the name its checkpoints carry), ``counters`` (plain numbers), ``parts``
    (objects with their own ``state_dict``: networks, optimizer, buffers, episode and reward
    statistics) and ``restarted`` (parts to ``restart()`` when the environments could not be restored
    and begin fresh episodes); the random generator, the next observation and the environments are
    saved for all. The checkpoint of a PPO agent, for example, is
    ``{"algo": "ppo", "env_steps": ..., "policy": {...}, "optimizer": {...}, "generator": ..., "envs": ...}``.
    """

    algo: str
    counters: tuple[str, ...] = ("env_steps", "updates", "seconds")
    parts: tuple[str, ...] = ("policy", "optimizer", "episodes")
    restarted: tuple[str, ...] = ("episodes",)
    config: RLConfig
    envs: gym.vector.VectorEnv
    generator: torch.Generator
    next_obs: torch.Tensor
    env_steps: int

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"algo": self.algo}
        state.update({name: getattr(self, name) for name in self.counters})
        state.update({name: getattr(self, name).state_dict() for name in self.parts})
        state.update(generator=self.generator.get_state(), next_obs=self.next_obs.clone(), envs=env_state(self.envs))
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("algo") != self.algo:
            raise TrainwrightError(f"this checkpoint holds a {state.get('algo')} agent, the config asks for {self.algo}")
        for name in self.counters:
            setattr(self, name, state[name])
        for name in self.parts:
            getattr(self, name).load_state_dict(state[name])
        self.generator.set_state(state["generator"])
        self.next_obs = state["next_obs"].clone()
        fresh = restore_envs(self.envs, state["envs"], seed=self.config.seed + self.env_steps)
        if fresh is not None:  # a native simulator (Box2D, MuJoCo) is not captured: fresh episodes, seeded by the step count
            self.next_obs = fresh
            for name in self.restarted:
                getattr(self, name).restart()


class EpisodeStats:
    """Running return and length of each environment's current episode, and the episodes that ended.

    Example:
        >>> stats = EpisodeStats(2)
        >>> stats.step(np.array([1.0, 1.0]), np.array([False, True]))
        >>> stats.pop()
        ([1.0], [1])
    """

    def __init__(self, n_envs: int):
        self.returns = np.zeros(n_envs)  # (N,) float64: the sum of a 500-step episode's rewards stays exact
        self.lengths = np.zeros(n_envs, dtype=np.int64)
        self.ended_returns: list[float] = []
        self.ended_lengths: list[int] = []
        self.episodes = 0

    def step(self, rewards: np.ndarray, dones: np.ndarray) -> None:
        """Add one vector step's rewards (N,); close the episodes where ``dones`` (N,) is set."""
        self.returns += rewards
        self.lengths += 1
        if dones.any():
            ended = np.flatnonzero(dones)
            self.ended_returns += self.returns[ended].tolist()
            self.ended_lengths += self.lengths[ended].tolist()
            self.episodes += len(ended)
            self.returns[ended] = 0.0
            self.lengths[ended] = 0

    def restart(self) -> None:
        """Forget the running episodes (the environments were reset without ending them)."""
        self.returns[:], self.lengths[:] = 0.0, 0

    def pop(self) -> tuple[list[float], list[int]]:
        """The episodes that ended since the last pop."""
        ended = self.ended_returns, self.ended_lengths
        self.ended_returns, self.ended_lengths = [], []
        return ended

    def state_dict(self) -> dict[str, Any]:
        return {
            "returns": torch.from_numpy(self.returns.copy()), "lengths": torch.from_numpy(self.lengths.copy()),
            "ended_returns": list(self.ended_returns), "ended_lengths": list(self.ended_lengths), "episodes": self.episodes,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.returns, self.lengths = state["returns"].numpy().copy(), state["lengths"].numpy().copy()
        self.ended_returns, self.ended_lengths = list(state["ended_returns"]), list(state["ended_lengths"])
        self.episodes = state["episodes"]


def explained_variance(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """1 - Var(target - predicted) / Var(target): 1 is a perfect value function, 0 no better than a constant,
    NaN if the target is constant.

    Example:
        >>> explained_variance(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0]))
        1.0
    """
    var = target.var(unbiased=False)
    return float("nan") if var == 0 else float(1 - (target - predicted).var(unbiased=False) / var)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block (network construction) under ``torch.manual_seed(seed)`` without touching the caller's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def notify(observers: list[Observer] | tuple[Observer, ...], hook: str, *args: Any) -> None:
    for observer in observers:
        getattr(observer, hook)(*args)
