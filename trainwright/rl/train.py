"""A whole RL run without the run directory: build the agent, train it under evaluation, score the kept policy.

``train`` is what the ``rl`` recipe wraps (adding the run directory, checkpoints, progress and the
report through its own observers) and what the benchmarks call. A resumed run passes the state
that ``training_state`` returned from inside an observer's ``on_update``.

Example:
    >>> result = train(rl_config({"env": {"id": "CartPole-v1"}, "algo": {"name": "ppo"}}))
    >>> result.final.mean, result.evaluator.best_env_steps
    (500.0, 60000)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from trainwright.config.rl import RLConfig, rl_config
from trainwright.rl.agent import Agent, Observer, seeded
from trainwright.rl.dqn import DQN
from trainwright.rl.envs import action_spec, make_envs, obs_size
from trainwright.rl.evaluation import EvalResult, Evaluator, final_evaluation
from trainwright.rl.policies import ActorCritic, QNetwork
from trainwright.rl.ppo import PPO
from trainwright.rl.reinforce import Reinforce

AGENTS: dict[str, type] = {"ppo": PPO, "dqn": DQN, "reinforce": Reinforce}


def make_agent(config: RLConfig | dict) -> Agent:
    """The agent for ``config.algo.name``, with its environments built and reset.

    Example:
        >>> make_agent({"env": {"id": "CartPole-v1"}, "algo": {"name": "dqn"}}).policy
    """
    config = rl_config(config)
    return AGENTS[config.algo.name](config)


def make_policy(config: RLConfig | dict) -> nn.Module:
    """A fresh policy of the architecture ``config`` trains, without an agent: load saved weights into it to play.

    Example:
        >>> policy = make_policy(config)
        >>> policy.load_state_dict(best_weights)
        >>> evaluate(policy, config.env, episodes=10, seed=0).mean
    """
    config = rl_config(config)
    envs = make_envs(config.env, n_envs=1)
    spec, features = action_spec(envs), obs_size(envs)
    envs.close()
    model, normalize = config.model, config.env.normalize_obs
    with seeded(config.seed):
        if config.algo.name == "dqn":
            return QNetwork(features, spec.size, model.hidden, model.activation, normalize)
        return ActorCritic(features, spec.discrete, spec.size, model.hidden, model.activation, normalize)


def planned_updates(config: RLConfig) -> tuple[int, int]:
    """(updates, env steps per update) that the budget buys: whole rollouts of n_envs * n_steps for PPO and
    REINFORCE; for DQN rounds of train_freq env steps (whole vector steps), the last one possibly shorter.

    Example:
        >>> planned_updates(rl_config({"env": {"id": "CartPole-v1"}, "algo": {"name": "ppo"}}))
        (390, 256)
    """
    algo, n = config.algo, config.env.n_envs
    if config.algo.name == "dqn":
        per_round = max(1, algo.train_freq // n)  # vector steps per round, as DQN.train collects them
        return -(-(algo.steps // n) // per_round), per_round * n
    return max(1, algo.steps // (n * algo.n_steps)), n * algo.n_steps


def planned_env_steps(config: RLConfig) -> int:
    """The env steps the budget buys: whole rollouts (PPO, REINFORCE) or whole vector steps (DQN), at most algo.steps."""
    updates, per_update = planned_updates(config)
    return min(updates * per_update, config.algo.steps // config.env.n_envs * config.env.n_envs)


@dataclass
class TrainResult:
    agent: Agent
    evaluator: Evaluator  # history of evaluations, the best policy's weights
    final: EvalResult  # the kept policy on evaluate.final_episodes episodes

    def summary(self) -> dict[str, Any]:
        agent = self.agent
        return {
            "env_steps": agent.env_steps, "updates": agent.updates, "train_seconds": agent.seconds,
            "steps_per_second": agent.env_steps / agent.seconds if agent.seconds else float("nan"),
            "best_env_steps": self.evaluator.best_env_steps, "best_eval_return": self.evaluator.best_return,
            "final_mean": self.final.mean, "final_std": self.final.std, "final_episodes": len(self.final.returns),
            "final_seed": self.final.seed, "stopped": agent.stop_reason,
        }


def training_state(agent: Agent, evaluator: Evaluator) -> dict[str, Any]:
    """Everything a resumed run needs, as tensors and plain data (take it in ``on_update``)."""
    return {"agent": agent.state_dict(), "evaluator": evaluator.state_dict()}


def train(
    config: RLConfig | dict,
    observers: list[Observer] | tuple[Observer, ...] = (),
    resume: dict[str, Any] | None = None,
    evaluator: Evaluator | None = None,
) -> TrainResult:
    """Train ``config``'s agent with periodic evaluation (the evaluator sees each update before ``observers``),
    then evaluate the best policy on fresh seeds. ``resume``: a ``training_state`` to continue from;
    ``evaluator``: pass your own to hand it to a checkpoint observer as well."""
    agent = make_agent(config)
    evaluator = evaluator if evaluator is not None else Evaluator(agent.config)
    if resume is not None:
        agent.load_state_dict(resume["agent"])
        evaluator.load_state_dict(resume["evaluator"])
    agent.train([evaluator, *observers])
    return TrainResult(agent, evaluator, final_evaluation(agent, evaluator))
