"""Vectorized gymnasium environments from a config, and their state for an exact resume.

``make_envs`` builds ``n_envs`` copies of one environment in a gymnasium ``SyncVectorEnv`` with
same-step autoreset: when an episode ends, ``step`` returns the first observation of the next
episode and puts the last one in ``info["final_obs"]`` (needed to bootstrap a truncated episode).
An id is a registered gymnasium id (``CartPole-v1``) or ``package.module:EnvClass`` for a class of
your own. Observations must be a ``Box`` (flattened to one vector); actions ``Discrete`` or ``Box``.

Example:
    >>> envs = make_envs(EnvConfig(id="CartPole-v1", n_envs=4))
    >>> obs, _ = envs.reset(seed=0)
    >>> obs.shape, action_spec(envs)
    ((4, 4), ActionSpec(discrete=True, size=2, low=None, high=None))
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.registration import EnvSpec
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from trainwright.config.rl import EnvConfig
from trainwright.errors import TrainwrightError

# Gymnasium families whose simulator is an optional package, and the trainwright extra that installs it.
EXTRAS = {"gymnasium.envs.box2d": "box2d", "gymnasium.envs.mujoco": "mujoco"}


@dataclass(frozen=True)
class ActionSpec:
    """What a policy head must produce: ``size`` choices (discrete) or a ``size``-vector in [low, high]."""

    discrete: bool
    size: int
    low: np.ndarray | None = None
    high: np.ndarray | None = None


def make_envs(env: EnvConfig, n_envs: int | None = None, render_mode: str | None = None) -> SyncVectorEnv:
    """``n_envs`` (default ``env.n_envs``) copies of the environment; ``envs.reset(seed=seed)`` seeds them seed, seed+1, ...

    Example:
        >>> envs = make_envs(EnvConfig(id="Acrobot-v1"), n_envs=2)
    """
    spec = env_spec(env)
    kwargs = dict(env.kwargs)
    if render_mode is not None:
        kwargs["render_mode"] = render_mode

    def make_one() -> gym.Env:
        return gym.make(spec, **kwargs)

    try:
        first = make_one()
    except gym.error.DependencyNotInstalled as error:
        raise TrainwrightError(_missing_dependency(env.id, spec, error)) from None
    except TypeError as error:  # a kwarg the constructor does not take
        raise TrainwrightError(f"env.kwargs {env.kwargs} do not fit {env.id}: {error}") from None
    n = env.n_envs if n_envs is None else n_envs
    envs = SyncVectorEnv([lambda: first] + [make_one] * (n - 1), autoreset_mode=AutoresetMode.SAME_STEP)
    check_spaces(envs, env.id)
    return envs


def env_spec(env: EnvConfig) -> EnvSpec:
    """The gymnasium spec for ``env.id``, with ``max_episode_steps`` applied; one clear line when unknown."""
    if ":" in env.id:
        return EnvSpec(id=env.id, entry_point=_user_class(env.id), max_episode_steps=env.max_episode_steps)
    try:
        spec = gym.spec(env.id)
    except gym.error.Error:
        close = difflib.get_close_matches(env.id, list(gym.registry), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise TrainwrightError(
            f"env.id {env.id!r} is not a gymnasium environment; {hint}"
            "list them with python -c 'import gymnasium; gymnasium.pprint_registry()', or give package.module:EnvClass"
        ) from None
    return spec if env.max_episode_steps is None else dataclasses.replace(spec, max_episode_steps=env.max_episode_steps)


def action_spec(envs: SyncVectorEnv) -> ActionSpec:
    """The action space of one environment, as the policy sees it."""
    space = envs.single_action_space
    if isinstance(space, gym.spaces.Discrete):
        return ActionSpec(discrete=True, size=int(space.n))
    return ActionSpec(discrete=False, size=int(np.prod(space.shape)), low=space.low.reshape(-1), high=space.high.reshape(-1))


def obs_size(envs: SyncVectorEnv) -> int:
    """Length of one flattened observation."""
    return int(np.prod(envs.single_observation_space.shape))


def check_spaces(envs: SyncVectorEnv, env_id: str) -> None:
    """Refuse observation and action spaces our policies cannot handle, saying which are supported."""
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    if not isinstance(obs_space, gym.spaces.Box):
        raise TrainwrightError(
            f"{env_id} has a {type(obs_space).__name__} observation space; only Box observations are supported "
            "(wrap the environment with gymnasium.wrappers.FlattenObservation or a one-hot wrapper)"
        )
    if not isinstance(act_space, (gym.spaces.Discrete, gym.spaces.Box)):
        raise TrainwrightError(
            f"{env_id} has a {type(act_space).__name__} action space; only Discrete and Box actions are supported"
        )
    if isinstance(act_space, gym.spaces.Discrete) and act_space.start != 0:
        raise TrainwrightError(
            f"{env_id} has Discrete actions starting at {act_space.start}; only actions starting at 0 are supported"
        )


def to_env_actions(actions: torch.Tensor, spec: ActionSpec) -> np.ndarray:
    """Policy actions (N,) or (N, size) -> what ``envs.step`` takes: ints, or floats clipped into the box."""
    if spec.discrete:
        return actions.numpy()
    return np.clip(actions.numpy(), spec.low, spec.high)


# ── state for an exact resume ───────────────────────────────────────────────────────────────
def env_state(envs: SyncVectorEnv) -> list[list[dict[str, Any]]]:
    """Each environment's state as plain data: per wrapper layer its plain attributes (numbers, arrays
    as tensors), and the random generator. Enough for gymnasium's classic-control set and for most
    simple environments; a simulator held in a native object (Box2D, MuJoCo) is not captured, so a
    resumed run of those continues from a fresh reset instead (``load_env_state`` returns False).
    """
    return [[_layer_state(layer) for layer in _layers(env)] for env in envs.envs]


def load_env_state(envs: SyncVectorEnv, state: list[list[dict[str, Any]]]) -> bool:
    """Put back what ``env_state`` captured; False when a layer had state it could not capture."""
    if len(state) != len(envs.envs):
        raise TrainwrightError(
            f"the checkpoint holds {len(state)} environments, the config makes {len(envs.envs)}; keep env.n_envs"
        )
    exact = True
    for env, layers in zip(envs.envs, state):
        for layer, saved in zip(_layers(env), layers):
            if saved["class"] != type(layer).__name__:
                raise TrainwrightError(
                    f"the checkpoint's environment is {saved['class']}, the config makes {type(layer).__name__}; keep env.id"
                )
            for name, value in saved["attrs"].items():
                setattr(layer, name, _from_plain(value))
            if saved["rng"] is not None:
                rng = np.random.Generator(getattr(np.random, saved["rng"]["bit_generator"])())
                rng.bit_generator.state = saved["rng"]
                layer._np_random = rng
            exact = exact and saved["complete"]
    return exact


def restore_envs(envs: SyncVectorEnv, state: list[list[dict[str, Any]]], seed: int) -> torch.Tensor | None:
    """``load_env_state``, and where that could not be exact, fresh episodes reset with ``seed``: their
    observations (N, F) are returned then, None otherwise (the checkpoint's observations stand)."""
    if load_env_state(envs, state):
        return None
    obs, _ = envs.reset(seed=seed)
    return torch.tensor(obs, dtype=torch.float32).reshape(envs.num_envs, -1)


_PLAIN = (bool, int, float, type(None))


def _layers(env: gym.Env) -> list[gym.Env]:
    layers = [env]
    while isinstance(layers[-1], gym.Wrapper):
        layers.append(layers[-1].env)
    return layers


def _layer_state(layer: gym.Env) -> dict[str, Any]:
    attrs, complete = {}, True
    for name, value in vars(layer).items():
        if name in ("_np_random", "env", "spec", "_cached_spec", "_saved_kwargs", "metadata"):
            continue
        if isinstance(value, _PLAIN) or isinstance(value, (np.ndarray, np.generic)) and value.dtype != object:
            attrs[name] = _to_plain(value)
        elif type(value).__module__.startswith("Box2D") or type(value).__module__.startswith("mujoco"):
            complete = False
    rng = getattr(layer, "_np_random", None) if not isinstance(layer, gym.Wrapper) else None
    state = rng.bit_generator.state if rng is not None else None
    return {"class": type(layer).__name__, "attrs": attrs, "rng": state, "complete": complete}


def _to_plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"array": torch.from_numpy(value.copy())}
    if isinstance(value, np.generic):
        return {"scalar": torch.from_numpy(np.asarray(value).copy())}
    return value


def _from_plain(value: Any) -> Any:
    if isinstance(value, dict) and "array" in value:
        return value["array"].numpy().copy()
    if isinstance(value, dict) and "scalar" in value:
        return value["scalar"].numpy()[()]
    return value


def _user_class(env_id: str) -> type:
    module_name, _, class_name = env_id.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise TrainwrightError(
            f"env.id {env_id!r}: cannot import {module_name} ({error}); install it or run from the folder that holds it"
        ) from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, gym.Env)):
        found = "is missing" if cls is None else "is not a gymnasium.Env subclass"
        raise TrainwrightError(
            f"env.id {env_id!r}: {module_name}.{class_name} {found}; give package.module:EnvClass of a gymnasium.Env"
        )
    return cls


def _missing_dependency(env_id: str, spec: EnvSpec, error: Exception) -> str:
    entry = spec.entry_point if isinstance(spec.entry_point, str) else ""
    extra = next((name for prefix, name in EXTRAS.items() if entry.startswith(prefix)), "rl")
    reason = str(error).splitlines()[0]
    return f"env.id {env_id!r} needs a package that is not installed: pip install 'trainwright[{extra}]' ({reason})"
