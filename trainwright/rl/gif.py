"""One episode of a policy rendered to an animated GIF from the environment's ``rgb_array`` frames.

Classic-control environments draw with pygame (``pip install 'trainwright[rl]'``, which brings
``gymnasium[classic-control]``); Pillow writes the GIF. Frames are thinned (``every``) and scaled
(``width``) so a 500-step CartPole episode stays a few hundred kilobytes.

Example:
    >>> render_gif(agent.policy, config.env, "episode.gif", seed=0)
    {'return': 500.0, 'length': 500, 'frames': 251, 'path': 'episode.gif'}
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from PIL import Image
from torch import nn

from trainwright.config.rl import EnvConfig
from trainwright.errors import TrainwrightError
from trainwright.files import atomic_path
from trainwright.rl.envs import action_spec, make_envs, to_env_actions


def render_gif(
    policy: nn.Module,
    env: EnvConfig,
    path: str | Path,
    seed: int = 0,
    deterministic: bool = True,
    every: int = 2,
    width: int | None = 320,
    fps: int = 30,
) -> dict[str, Any]:
    """Play one episode with ``policy`` on an environment reset with ``seed`` and write it to ``path`` (atomically)."""
    gif, info = render_episode(policy, env, seed, deterministic, every, width, fps)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(gif)
    return {**info, "path": str(path)}


def render_episode(
    policy: nn.Module,
    env: EnvConfig,
    seed: int = 0,
    deterministic: bool = True,
    every: int = 2,
    width: int | None = 320,
    fps: int = 30,
) -> tuple[bytes, dict[str, Any]]:
    """One episode as GIF bytes, and its return, length and frame count (a run directory writes the bytes itself)."""
    # rgb_array frames need no window: SDL's dummy video driver keeps pygame from looking for a display (and
    # printing an error on a headless machine); a user's own settings win.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        envs = make_envs(env, n_envs=1, render_mode="rgb_array")
        # The vector env resets a finished episode at once, so frames come from the one environment inside it.
        single = envs.envs[0]
        obs, _ = single.reset(seed=seed)
        frames = [single.render()]
    except gym.error.DependencyNotInstalled as error:
        raise TrainwrightError(
            f"rendering {env.id} needs pygame: pip install 'trainwright[rl]' ({str(error).splitlines()[0]})"
        ) from None
    spec = action_spec(envs)
    generator = torch.Generator().manual_seed(seed)
    total, length, done = 0.0, 0, False
    while not done:
        observation = torch.tensor(np.asarray(obs), dtype=torch.float32).reshape(1, -1)
        action = policy.act(observation, deterministic=deterministic, generator=generator)
        obs, reward, terminated, truncated, _ = single.step(to_env_actions(action, spec)[0])
        total, length, done = total + float(reward), length + 1, terminated or truncated
        if length % every == 0 or done:
            frames.append(single.render())
    envs.close()
    images = [_scaled(Image.fromarray(np.asarray(frame)), width) for frame in frames if frame is not None]
    if not images:
        raise TrainwrightError(f"{env.id} returned no rgb_array frames; it cannot be rendered to a GIF")
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 * every / fps), loop=0)
    return buffer.getvalue(), {"return": total, "length": length, "frames": len(images)}


def _scaled(image: Image.Image, width: int | None) -> Image.Image:
    if width is None or image.width <= width:
        return image
    return image.resize((width, round(image.height * width / image.width)), Image.Resampling.BILINEAR)
