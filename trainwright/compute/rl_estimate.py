"""How long an RL run will take, before it starts: environment steps per second and policy FLOPs per update.

An update of PPO or REINFORCE is a rollout of ``n_envs x n_steps`` environment steps, each with one
forward pass of the policy, then gradient steps on minibatches of it (PPO: ``epochs`` passes of
``minibatch_size``; REINFORCE: one step on the whole rollout); a DQN round is ``train_freq``
environment steps, then ``gradient_steps`` steps on replayed minibatches (none before
``learning_starts``). Both are measured here, briefly, on throwaway copies (the run's agent, its
environments and its random streams are left untouched):

- seconds per update: a second agent built from the same config runs real updates (the first one,
  which allocates Adam's state, is not counted unless it alone takes several times ``budget``) until
  about ``budget`` seconds are timed; for DQN its rounds learn from the start;
- env steps per second: the vector environment alone, stepped with a copy of the policy choosing the
  actions (the cost of a DQN round before ``learning_starts``);
- FLOPs: one forward pass for the actions and one gradient step (forward, loss, backward), counted by
  torch's ``FlopCounterMode`` (a multiply-add is 2 FLOPs), times their numbers per update.

estimate = learning updates x seconds per update (+ DQN's rounds before learning_starts x their env
steps / env steps per second). Evaluation episodes come on top: their length depends on how well
the policy does by then, so they are measured, not predicted. PPO's ``target_kl`` can end an
update's epochs early, so the estimate is then an upper bound.

Example:
    >>> est = estimate_rl(config, agent.policy)
    >>> est.summary()
    'estimate: 390 updates x 13.9 ms (measured: 256 env steps and 20 gradient steps of 13.4 MFLOP) = 5.42 s ...'
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from trainwright.compute.estimate import _duration, _si
from trainwright.compute.peak import device_label
from trainwright.config.rl import RLConfig
from trainwright.rl.agent import Agent, Observer, Progress
from trainwright.rl.envs import action_spec, make_envs, to_env_actions
from trainwright.rl.train import make_agent, planned_env_steps, planned_updates


@dataclass(frozen=True)
class RLEstimate:
    """The prediction for the training loop (evaluations excluded), and every number it was made from."""

    device: str
    updates: int
    env_steps: int  # the budget in env steps (a DQN's last round may be shorter than the others)
    env_steps_per_update: int
    n_envs: int
    seconds_per_update: float  # measured on a throwaway agent: rollout (or round) and its gradient steps
    timed_updates: int
    learning_updates: int  # updates with gradient steps: all but a DQN's rounds before learning_starts
    env_steps_per_second: float  # measured: the vector environment with the policy choosing the actions, nothing else
    grad_steps_per_update: int  # in an update that learns
    batch_size: int  # rows in one gradient step
    flops_per_grad_step: int  # forward + backward of one gradient step (DQN: the target network's forward too)
    flops_per_action: int  # one forward pass choosing the actions of all n_envs environments

    @property
    def flops_per_update(self) -> float:
        """Policy FLOPs of an average update: the actions of its env steps, and its share of gradient steps."""
        acting = self.env_steps_per_update / self.n_envs * self.flops_per_action
        return acting + self.grad_steps_per_update * self.learning_updates / self.updates * self.flops_per_grad_step

    @property
    def collect_seconds(self) -> float:
        """A DQN round before learning_starts: env steps only."""
        return self.env_steps_per_update / self.env_steps_per_second

    @property
    def total_seconds(self) -> float:
        return self.learning_updates * self.seconds_per_update + (self.updates - self.learning_updates) * self.collect_seconds

    def seconds_for(self, updates: int) -> float:
        """The estimate for ``updates`` updates (a stopped or resumed run trains fewer than planned)."""
        return self.total_seconds * updates / self.updates

    def summary(self) -> str:
        """One line, printed before training."""
        collect = self.updates - self.learning_updates
        before = f" + {collect} rounds before learning starts" if collect else ""
        return (
            f"estimate: {self.updates:,} updates x {_duration(self.seconds_per_update)} (measured: "
            f"{self.env_steps_per_update:,} env steps and {self.grad_steps_per_update} gradient steps of "
            f"{_si(self.flops_per_grad_step)}FLOP){before} = {_duration(self.total_seconds)} for the training loop; "
            f"environments alone {self.env_steps_per_second:,.0f} steps/s; {_si(self.flops_per_update)}FLOP per update; "
            "evaluation episodes come on top"
        )

    def lines(self) -> list[str]:
        """The whole arithmetic in plain terms, as ``trainwright estimate`` prints it."""
        per_env = self.env_steps_per_update // self.n_envs
        acting = per_env * self.flops_per_action
        learning = acting + self.grad_steps_per_update * self.flops_per_grad_step  # an update that learns
        collect = self.updates - self.learning_updates
        lines = [
            (f"updates: {self.env_steps:,} env steps = {self.updates:,} updates of {self.env_steps_per_update:,} "
             f"({self.n_envs} environments x {per_env} steps)"),
            (f"environments: {self.env_steps_per_second:,.0f} env steps/s with the policy choosing the actions "
             f"(the simulator and one forward pass per step, measured on a throwaway copy)"),
            (f"FLOPs per update: {per_env} forward passes for the actions x {_si(self.flops_per_action)}FLOP + "
             f"{self.grad_steps_per_update} gradient steps on {self.batch_size} rows x {_si(self.flops_per_grad_step)}FLOP "
             f"(forward + backward, counted by torch's FlopCounterMode) = {_si(learning)}FLOP"),
            (f"an update: {_duration(self.seconds_per_update)} (measured over {self.timed_updates} "
             f"update{'s' if self.timed_updates > 1 else ''} of a throwaway agent: "
             f"{_si(self.flops_per_update / self.seconds_per_update)}FLOP/s)"),
        ]
        if collect:
            lines.append(f"before learning starts: {collect} rounds of env steps only, {_duration(self.collect_seconds)} each")
        lines.append(
            f"total: {_duration(self.total_seconds)} for the training loop on {self.device}; evaluation episodes come on top "
            "(their length depends on how well the policy does)"
        )
        return lines


def estimate_rl(config: RLConfig, policy: nn.Module, budget: float = 0.3) -> RLEstimate:
    """Measure ``config``'s agent: seconds per update, env steps per second and FLOPs; ``policy`` is copied."""
    updates, per_update = planned_updates(config)
    algo, n = config.algo, config.env.n_envs
    with torch.random.fork_rng(devices=[]):
        work = copy.deepcopy(policy)
        env_rate, action_flops = _env_steps_per_second(config, work, budget)
        if algo.name == "dqn":
            batch, grad_steps = algo.batch_size, algo.gradient_steps
            # Round r (from 1) learns once r * per_update >= learning_starts.
            learning = updates - max(0, -(-algo.learning_starts // per_update) - 1)
            flops = _count_flops(_dqn_step(work, config, batch))
        else:
            batch = algo.minibatch_size if algo.name == "ppo" else per_update
            grad_steps = algo.epochs * -(-per_update // batch) if algo.name == "ppo" else 1
            learning = updates
            flops = _count_flops(_policy_gradient_step(work, config, batch))
        seconds, timed = _seconds_per_update(config, budget)
    return RLEstimate(
        device=device_label(torch.device("cpu")), updates=updates, env_steps=planned_env_steps(config),
        env_steps_per_update=per_update, n_envs=n, seconds_per_update=seconds, timed_updates=timed,
        learning_updates=learning, env_steps_per_second=env_rate, grad_steps_per_update=grad_steps,
        batch_size=batch, flops_per_grad_step=flops, flops_per_action=action_flops,
    )


def compute_metrics(est: RLEstimate, train_seconds: float, env_steps: int, updates: int) -> dict:
    """``metrics.json["compute"]``: the training loop (of every session, for a resumed run) against its estimate."""
    achieved = est.flops_per_update * updates / train_seconds if train_seconds > 0 else float("nan")
    return {
        "estimated_seconds": est.seconds_for(updates),
        "train_seconds": train_seconds,
        "env_steps": env_steps,
        "updates": updates,
        "env_steps_per_second": env_steps / train_seconds if train_seconds > 0 else float("nan"),
        "estimated_seconds_per_update": est.seconds_per_update,
        "environment_steps_per_second": est.env_steps_per_second,
        "gradient_steps_per_update": est.grad_steps_per_update,
        "flops_per_update": est.flops_per_update,
        "flops_per_gradient_step": est.flops_per_grad_step,
        "achieved_flops_per_second": achieved,
        "device": est.device,
    }


def compute_summary(compute: dict) -> str:
    """One line, printed after training."""
    ratio = compute["train_seconds"] / compute["estimated_seconds"]
    return (
        f"trained {compute['env_steps']:,} env steps ({compute['updates']:,} updates) in {_duration(compute['train_seconds'])} "
        f"(estimated {_duration(compute['estimated_seconds'])}, actual/estimate {ratio:.2f}): "
        f"{compute['env_steps_per_second']:,.0f} env steps/s, {_si(compute['achieved_flops_per_second'])}FLOP/s in the policy"
    )


# ── measurements ───────────────────────────────────────────────────────────────────────
def _env_steps_per_second(config: RLConfig, policy: nn.Module, budget: float) -> tuple[float, int]:
    """Env steps per second of the vector environment with ``policy`` acting, and the FLOPs of one such action."""
    envs = make_envs(config.env)
    spec = action_spec(envs)
    generator = torch.Generator().manual_seed(0)
    try:
        obs, _ = envs.reset(seed=config.seed + 99_991)  # a throwaway copy: the run's environments are not touched

        def act(obs) -> torch.Tensor:
            return policy.act(
                torch.tensor(obs, dtype=torch.float32).reshape(envs.num_envs, -1), deterministic=False, generator=generator
            )

        with FlopCounterMode(display=False) as counter:
            act(obs)
        rounds, spent = [], 0.0
        while spent < budget or len(rounds) < 3:
            started = time.perf_counter()
            for _ in range(8):
                obs, *_ = envs.step(to_env_actions(act(obs), spec))
            rounds.append(time.perf_counter() - started)
            spent += rounds[-1]
            if len(rounds) >= 200:
                break
    finally:
        envs.close()
    return 8 * envs.num_envs / statistics.median(rounds[1:] or rounds), int(counter.get_total_flops())


def _policy_gradient_step(policy: nn.Module, config: RLConfig, batch: int):
    """One PPO / REINFORCE-shaped step: log-probabilities, entropy and values of a minibatch, a policy-gradient
    and value loss, backward, clipping, Adam."""
    algo = config.algo
    optimizer = torch.optim.Adam(policy.parameters(), lr=algo.lr, eps=1e-5, fused=True)
    values = torch.Generator().manual_seed(0)
    obs = torch.randn(batch, policy.obs_norm.mean.numel(), generator=values)
    actions = policy.act(obs, deterministic=False, generator=values)
    advantages, returns = torch.randn(batch, generator=values), torch.randn(batch, generator=values)

    def step() -> None:
        log_prob, entropy, value = policy.evaluate(obs, actions, entropy_grad=algo.ent_coef > 0)
        loss = -(log_prob.exp() * advantages).mean() + algo.vf_coef * F.mse_loss(value, returns) - algo.ent_coef * entropy.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), algo.max_grad_norm)
        optimizer.step()

    return step


def _dqn_step(policy: nn.Module, config: RLConfig, batch: int):
    """One DQN step: the target network's (and with double Q the online network's) values of the next
    observations, the Huber loss of Q(s, a), backward, clipping, Adam."""
    algo = config.algo
    target = copy.deepcopy(policy).requires_grad_(False)
    optimizer = torch.optim.Adam(policy.parameters(), lr=algo.lr, fused=True)
    values = torch.Generator().manual_seed(0)
    features = policy.obs_norm.mean.numel()
    obs, next_obs = torch.randn(batch, features, generator=values), torch.randn(batch, features, generator=values)
    actions = policy(obs).argmax(-1)
    rewards = torch.randn(batch, generator=values)

    def step() -> None:
        with torch.no_grad():
            next_q = target(next_obs)
            best = (policy(next_obs) if algo.double_q else next_q).argmax(-1, keepdim=True)
            targets = rewards + algo.gamma * next_q.gather(1, best).squeeze(1)
        q = policy(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
        loss = F.smooth_l1_loss(q, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), algo.max_grad_norm)
        optimizer.step()

    return step


def _count_flops(step) -> int:
    """FLOPs of one call of ``step``, counted by torch's FlopCounterMode."""
    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def _seconds_per_update(config: RLConfig, budget: float) -> tuple[float, int]:
    """Seconds per update of a throwaway agent built from ``config`` (a DQN learning from its first round),
    timed after a first update (allocations, Adam's state) until about ``budget`` seconds are measured."""
    algo = config.algo
    _, per_update = planned_updates(config)
    changes: dict[str, Any] = {"steps": per_update * 50}
    if algo.name == "dqn":
        changes["learning_starts"] = 0
    agent = make_agent(config.model_copy(update={"algo": algo.model_copy(update=changes)}))
    marks: list[float] = []

    class Clock(Observer):
        def on_update(self, agent: Agent, progress: Progress) -> None:
            marks.append(progress.seconds)
            first_alone = len(marks) == 1 and marks[0] >= 4 * budget  # long updates: the first one's set-up is noise
            if first_alone or (len(marks) >= 2 and marks[-1] - marks[0] >= budget):
                agent.request_stop("timed")

    try:
        agent.train([Clock()])
    finally:
        agent.envs.close()
    if len(marks) == 1:
        return marks[0], 1
    return (marks[-1] - marks[0]) / (len(marks) - 1), len(marks) - 1
