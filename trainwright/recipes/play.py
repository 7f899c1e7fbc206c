"""Play a trained RL policy: the run's kept weights in fresh episodes, deterministic by default, optionally as a GIF.

Works from the run directory alone (``config.yaml`` and ``model.safetensors``): the policy is rebuilt
from the config, its weights (observation statistics included) are loaded, and it plays ``episodes``
episodes on environments seeded ``seed``, ``seed + 1``, ...

Example:
    >>> result = play("runs/CartPole-v1-ppo-20260101-120000", episodes=10, gif="episode.gif")
    >>> result.returns.mean(), result.gif
    (500.0, {'return': 500.0, 'length': 500, 'frames': 251, 'path': 'episode.gif'})
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.torch import load_file

from trainwright.config.rl import RLConfig, rl_config
from trainwright.configure import read_raw
from trainwright.errors import TrainwrightError
from trainwright.recipes.rl import torch_threads
from trainwright.rl.aggregate import iqm
from trainwright.rl.evaluation import evaluate
from trainwright.rl.gif import render_gif
from trainwright.rl.train import make_policy
from trainwright.rundir import RunDir
from trainwright.runs import recipe_of


@dataclass(frozen=True)
class PlayResult:
    config: RLConfig
    returns: np.ndarray  # (episodes,)
    lengths: np.ndarray
    seed: int
    deterministic: bool
    gif: dict[str, Any] | None = field(default=None)

    def summary(self) -> dict[str, float]:
        r = self.returns
        return {"mean": float(r.mean()), "std": float(r.std()), "iqm": iqm(r), "min": float(r.min()), "max": float(r.max())}


def play(
    run: str | Path, episodes: int = 10, gif: str | Path | None = None, deterministic: bool = True, seed: int = 0
) -> PlayResult:
    """Play ``episodes`` episodes with the run's kept policy; ``gif``: also write the first seed's episode there."""
    if episodes < 1:
        raise TrainwrightError(f"--episodes {episodes}: play at least one episode")
    run_dir = RunDir.open(run)
    if recipe_of(run_dir) != "rl":
        raise TrainwrightError(f"{run_dir.path} is not an RL run (its config has no recipe: rl); play runs a trained policy")
    if not run_dir.weights.is_file():
        raise TrainwrightError(
            f"{run_dir.path} has no model.safetensors: it did not finish; "
            f"continue it with trainwright train --resume {run_dir.path}"
        )
    config = rl_config(read_raw(run_dir.config))
    with torch_threads(config.threads):
        policy = make_policy(config)
        try:
            policy.load_state_dict(load_file(str(run_dir.weights)))
        except (RuntimeError, OSError) as error:
            reason = str(error).splitlines()[0]
            raise TrainwrightError(f"{run_dir.weights} does not fit the policy its config.yaml describes ({reason})") from None
        result = evaluate(policy, config.env, episodes, seed, deterministic)
        written = render_gif(policy, config.env, gif, seed=seed, deterministic=deterministic) if gif is not None else None
    return PlayResult(config, result.returns, result.lengths, seed, deterministic, written)
