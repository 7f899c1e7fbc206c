"""The typed schema of a reinforcement-learning run: ``env``, ``algo``, ``model``, ``evaluate``.

A run is an environment (any gymnasium id, or ``package.module:EnvClass`` for your own), an
algorithm with its step budget, a network and an evaluation plan. ``rl_config`` lays the tuned
defaults for the (algorithm, environment) pair under what the user wrote, then validates once.
Tuned defaults come from rl-baselines3-zoo's ``hyperparams/{ppo,dqn}.yml``, adjusted where our
benchmarks (benchmarks/rl_cartpole.py) showed a setting that reaches the bar on more seeds; each
entry in ``TUNED`` says where it differs.

Example:
    >>> cfg = rl_config({"env": {"id": "CartPole-v1"}, "algo": {"name": "ppo"}})
    >>> cfg.env.n_envs, cfg.algo.steps, cfg.algo.gamma
    (8, 100000, 0.98)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from trainwright.config import Frozen
from trainwright.config.base import deep_merge
from trainwright.errors import TrainwrightError

_STEPS = Field(100_000, gt=0, description="the budget: environment steps summed over all parallel environments")


class EnvConfig(Frozen):
    """Which environment, how many copies step in parallel, and how its observations are shaped."""

    id: str = Field(min_length=1, description="a gymnasium id such as CartPole-v1, or package.module:EnvClass")
    n_envs: int = Field(1, ge=1, description="environments stepped together (a gymnasium SyncVectorEnv)")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for the environment's constructor")
    # A running mean/std of the observations, kept inside the policy so a saved policy carries it.
    normalize_obs: bool = False
    # Rewards divided by the running std of the discounted return (SB3's VecNormalize); ppo and reinforce.
    normalize_reward: bool = False
    max_episode_steps: int | None = Field(None, ge=1, description="truncate episodes here (default: the id's own limit)")


class PPOConfig(Frozen):
    """Proximal policy optimization (Schulman et al. 2017) with GAE; SB3's conventions where they differ."""

    name: Literal["ppo"]
    steps: int = _STEPS
    gamma: float = Field(0.99, ge=0, le=1)
    lr: float = Field(3e-4, gt=0)
    anneal_lr: bool = Field(False, description="lr falls linearly to 0 over the budget (rl-zoo's lin_<lr>)")
    n_steps: int = Field(128, ge=1, description="steps per environment in one rollout; a rollout is n_envs * n_steps")
    minibatch_size: int = Field(64, ge=1)
    epochs: int = Field(10, ge=1, description="passes over each rollout")
    gae_lambda: float = Field(0.95, ge=0, le=1)
    clip: float = Field(0.2, gt=0, description="the ratio clip of the surrogate objective")
    anneal_clip: bool = False
    clip_value: float | None = Field(
        None, gt=0, description="clip the value update like the ratio (CleanRL's clip_vloss); off as in SB3"
    )
    ent_coef: float = Field(0.0, ge=0)
    vf_coef: float = Field(0.5, ge=0)
    max_grad_norm: float = Field(0.5, gt=0)
    normalize_advantage: bool = True
    target_kl: float | None = Field(None, gt=0, description="stop a rollout's epochs early once the KL estimate passes this")


class DQNConfig(Frozen):
    """Deep Q-learning (Mnih et al. 2015) with a replay buffer, a target network and double Q (van Hasselt 2016)."""

    name: Literal["dqn"]
    steps: int = _STEPS
    gamma: float = Field(0.99, ge=0, le=1)
    lr: float = Field(1e-4, gt=0)
    anneal_lr: bool = Field(False, description="lr falls linearly to 0 over the budget (SB3's lin_<lr> schedule)")
    buffer_size: int = Field(100_000, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_starts: int = Field(1000, ge=0, description="env steps of uniformly random actions before learning")
    train_freq: int = Field(4, ge=1, description="env steps between training rounds")
    gradient_steps: int = Field(1, ge=1, description="gradient steps per training round")
    target_update_interval: int = Field(1000, ge=1, description="env steps between target-network updates")
    tau: float = Field(1.0, gt=0, le=1, description="1: copy the online network; <1: Polyak averaging")
    double_q: bool = True
    exploration_fraction: float = Field(0.1, ge=0, le=1, description="part of the budget over which epsilon falls")
    epsilon_start: float = Field(1.0, ge=0, le=1)
    epsilon_end: float = Field(0.05, ge=0, le=1)
    max_grad_norm: float = Field(10.0, gt=0)


class ReinforceConfig(Frozen):
    """REINFORCE (Williams 1992) with a learned value baseline: one gradient step per rollout."""

    name: Literal["reinforce"]
    steps: int = _STEPS
    gamma: float = Field(0.99, ge=0, le=1)
    lr: float = Field(1e-3, gt=0)
    # 64 x 8 envs: ~200 updates in 100k steps (CartPole-v1 reaches 500 by 80k on seed 0); longer rollouts give
    # truer Monte-Carlo returns but few updates (256 reached only ~200).
    n_steps: int = Field(64, ge=1, description="steps per environment in one rollout (the return is bootstrapped at its end)")
    ent_coef: float = Field(0.0, ge=0)
    vf_coef: float = Field(0.5, ge=0)
    max_grad_norm: float = Field(0.5, gt=0)
    normalize_advantage: bool = True


AlgoConfig = Annotated[PPOConfig | DQNConfig | ReinforceConfig, Field(discriminator="name")]
ALGORITHMS = ("ppo", "dqn", "reinforce")


class PolicyNetConfig(Frozen):
    """The multilayer perceptron(s): actor and critic each get ``hidden``; a Q-network gets it once."""

    hidden: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [64, 64])
    activation: Literal["tanh", "relu"] = "tanh"


class RLEvaluateConfig(Frozen):
    """Separate evaluation episodes during training (the best policy is kept) and at the end."""

    interval: int = Field(5_000, ge=1, description="env steps between evaluations")
    episodes: int = Field(10, ge=1, description="episodes per evaluation during training")
    final_episodes: int = Field(100, ge=1, description="episodes of the final evaluation of the kept policy")
    deterministic: bool = Field(True, description="greedy actions (argmax, the Gaussian's mean)")
    seed: int | None = Field(None, description="seed of the evaluation environments; default: the run's seed + 10000")


class RLConfig(Frozen):
    """A whole reinforcement-learning run (``recipe: rl``)."""

    recipe: Literal["rl"] = "rl"
    seed: int = 0
    # Policies are small MLPs: one thread is fastest (a second one only waits on the first; on a busy 2-core
    # machine a gradient step of the CartPole PPO policy took 4-10 ms on one thread, 150-270 ms on two).
    threads: int | None = Field(1, ge=1, description="torch threads while the run trains (null: torch's default)")
    env: EnvConfig
    algo: AlgoConfig
    model: PolicyNetConfig = PolicyNetConfig()
    evaluate: RLEvaluateConfig = RLEvaluateConfig()

    @model_validator(mode="after")
    def _consistent(self) -> RLConfig:
        algo = self.algo
        if isinstance(algo, (PPOConfig, ReinforceConfig)) and algo.steps < self.env.n_envs * algo.n_steps:
            raise ValueError(
                f"algo.steps = {algo.steps} is less than one rollout (env.n_envs * algo.n_steps = "
                f"{self.env.n_envs * algo.n_steps}); raise algo.steps or lower algo.n_steps"
            )
        if isinstance(algo, DQNConfig) and algo.steps < self.env.n_envs:
            raise ValueError(
                f"algo.steps = {algo.steps} is less than one step of the {self.env.n_envs} environments; raise algo.steps"
            )
        if isinstance(algo, PPOConfig):
            rollout = self.env.n_envs * algo.n_steps
            if algo.minibatch_size > rollout:
                raise ValueError(
                    f"algo.minibatch_size = {algo.minibatch_size} is larger than a rollout "
                    f"(env.n_envs * algo.n_steps = {rollout}); lower it or raise algo.n_steps"
                )
        if isinstance(algo, DQNConfig) and self.env.normalize_reward:
            raise ValueError(
                "env.normalize_reward is for ppo and reinforce; DQN learns Q-values in the reward's own scale (remove it)"
            )
        if isinstance(algo, DQNConfig) and algo.epsilon_end > algo.epsilon_start:
            raise ValueError(
                f"algo.epsilon_end = {algo.epsilon_end} is above algo.epsilon_start = {algo.epsilon_start}; epsilon falls"
            )
        return self

    @property
    def eval_seed(self) -> int:
        return self.seed + 10_000 if self.evaluate.seed is None else self.evaluate.seed


# ── defaults per algorithm, then per (algorithm, environment) ──────────────────────────────────────
ALGO_DEFAULTS: dict[str, dict] = {
    "ppo": {"env": {"n_envs": 8}},
    # Reward scaling keeps the baseline's squared error from swamping the policy's share of the clipped gradient.
    "reinforce": {"env": {"n_envs": 8, "normalize_reward": True}},
    "dqn": {"env": {"n_envs": 1}, "model": {"activation": "relu"}},
}

TUNED: dict[tuple[str, str], dict] = {
    # rl-zoo3 ppo.yml CartPole-v1 as is (lin_0.001 and lin_0.2 are the two anneal flags).
    ("ppo", "CartPole-v1"): {
        "env": {"n_envs": 8},
        "algo": {
            "steps": 100_000, "n_steps": 32, "minibatch_size": 256, "gae_lambda": 0.8, "gamma": 0.98, "epochs": 20,
            "ent_coef": 0.0, "lr": 1e-3, "anneal_lr": True, "anneal_clip": True,
        },
    },
    # rl-zoo3 ppo.yml Acrobot-v1 (normalize: true; 1M steps there), within our 200k budget.
    ("ppo", "Acrobot-v1"): {
        "env": {"n_envs": 16, "normalize_obs": True, "normalize_reward": True},
        "algo": {"steps": 200_000, "n_steps": 256, "gae_lambda": 0.94, "gamma": 0.99, "epochs": 4, "ent_coef": 0.0},
    },
    # rl-zoo3 dqn.yml CartPole-v1 ("almost tuned", 50k steps there): train_freq 256 with 128 gradient steps,
    # the target network refreshed before every round.
    ("dqn", "CartPole-v1"): {
        "algo": {
            "steps": 100_000, "lr": 2.3e-3, "batch_size": 64, "buffer_size": 100_000, "learning_starts": 1000,
            "gamma": 0.99, "target_update_interval": 10, "train_freq": 256, "gradient_steps": 128,
            "exploration_fraction": 0.16, "epsilon_end": 0.04,
        },
        "model": {"hidden": [256, 256]},
    },
    # rl-zoo3 dqn.yml Acrobot-v1 (its gradient_steps -1, "as many as env steps collected", is 4 here).
    ("dqn", "Acrobot-v1"): {
        "algo": {
            "steps": 100_000, "lr": 6.3e-4, "batch_size": 128, "buffer_size": 50_000, "learning_starts": 0,
            "gamma": 0.99, "target_update_interval": 250, "train_freq": 4, "gradient_steps": 4,
            "exploration_fraction": 0.12, "epsilon_end": 0.1,
        },
        "model": {"hidden": [256, 256]},
    },
}


def rl_config(raw: dict | RLConfig) -> RLConfig:
    """Validate a raw RL config, filling the tuned defaults of its (algo.name, env.id) pair first.

    Example:
        >>> rl_config({"env": {"id": "Acrobot-v1"}, "algo": {"name": "ppo", "steps": 50000}}).algo.steps
        50000
    """
    if isinstance(raw, RLConfig):
        return raw
    algo = raw.get("algo") if isinstance(raw.get("algo"), dict) else {}
    env = raw.get("env") if isinstance(raw.get("env"), dict) else {}
    name, env_id = algo.get("name"), env.get("id")
    merged = deep_merge(ALGO_DEFAULTS.get(name, {}), TUNED.get((name, env_id), {}))
    merged = deep_merge(merged, raw)
    try:
        return RLConfig.model_validate(merged)
    except ValidationError as error:
        raise TrainwrightError(describe_rl_error(error)) from None


def tuned_defaults(algo: str, env_id: str) -> dict:
    """The defaults ``rl_config`` lays under a config for this pair (empty when none are tuned)."""
    return deep_merge(ALGO_DEFAULTS.get(algo, {}), TUNED.get((algo, env_id), {}))


def describe_rl_error(error: ValidationError) -> str:
    """One line naming each bad key (without pydantic's union tag), its value and what is allowed."""
    problems = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        if loc[:1] == ["algo"] and len(loc) > 1 and loc[1] in ALGORITHMS:
            loc.pop(1)  # pydantic reports algo.ppo.steps; the user wrote algo.steps
        key = ".".join(loc)
        message = item["msg"].removeprefix("Value error, ")
        kind = item["type"]
        if kind == "extra_forbidden":
            problems.append(f"unknown key {key!r} (check its spelling and section)")
        elif kind in ("union_tag_not_found", "union_tag_invalid"):
            given = item.get("input", {}).get("name") if isinstance(item.get("input"), dict) else None
            what = f"algo.name = {given!r} is not an algorithm" if given is not None else "algo.name is required"
            problems.append(f"{what}; choose one of {', '.join(ALGORITHMS)}")
        elif kind == "missing":
            problems.append(f"{key} is required" + (": give env.id, e.g. CartPole-v1" if key in ("env", "env.id") else ""))
        elif key.endswith(".steps") and kind in ("greater_than", "int_parsing", "int_from_float"):
            problems.append(
                f"{key} = {item.get('input')!r}: the step budget must be a positive number of environment steps, e.g. 100000"
            )
        else:
            problems.append(f"{key} = {item.get('input')!r}: {message}" if key else message)
    return "invalid rl config: " + "; ".join(problems)
