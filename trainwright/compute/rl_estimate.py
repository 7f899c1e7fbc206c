"""How long an RL run will take, before it starts: environment steps per second and policy FLOPs per update.

An update of PPO or REINFORCE is a rollout of ``n_envs x n_steps`` environment steps, each with one
forward pass of the policy, then gradient steps on minibatches of it (PPO: ``epochs`` passes of
``minibatch_size``; REINFORCE: one step on the whole rollout); a DQN round is ``train_freq``
environment steps, then ``gradient_steps`` steps on replayed minibatches (none before
``learning_starts``). On a CPU the simulator often costs as much as the network, so both halves
are measured here, briefly, on throwaway copies (the agent, its environments and the random
streams are left untouched):

- env steps per second: the config's vector environment stepped with a copy of the policy choosing
  the actions, for about ``budget`` seconds (median of rounds: a busy machine's stall does not skew it);
- a gradient step: forward, loss, backward, gradient clipping and Adam on a minibatch of random
  observations, timed the same way; its FLOPs (and those of one forward pass for the actions) are
  counted by torch's ``FlopCounterMode`` (a multiply-add is 2 FLOPs).

estimate = updates x (env steps per update / env steps per second + gradient steps per update x
seconds per gradient step). Evaluation episodes come on top: their length depends on how well the
policy does by then, so they are measured, not predicted. PPO's ``target_kl`` can end an update's
epochs early, which makes the estimate an upper bound.

Example:
    >>> est = estimate_rl(config, agent.policy)
    >>> est.summary()
    'estimate: 390 updates x (256 env steps at 6,020 steps/s + 20 gradient steps of 2.2 MFLOP at 1.9 ms) = 53.0 s ...'
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from trainwright.compute.estimate import _duration, _si
from trainwright.compute.peak import device_label
from trainwright.config.rl import RLConfig
from trainwright.rl.envs import action_spec, make_envs, to_env_actions
from trainwright.rl.train import planned_env_steps, planned_updates


@dataclass(frozen=True)
class RLEstimate:
    """The prediction for the training loop (evaluations excluded), and every number it was made from."""

    device: str
    updates: int
    env_steps_per_update: int
    env_steps_per_second: float  # measured: the vector environment stepped, the policy choosing the actions
    grad_steps_per_update: float  # averaged over the run (a DQN learns only after learning_starts)
    batch_size: int  # rows in one gradient step
    seconds_per_grad_step: float  # measured
    flops_per_grad_step: int  # forward + backward of one gradient step (DQN: the target network's forward too)
    flops_per_action: int  # one forward pass choosing the actions of all n_envs environments
    n_envs: int
    env_steps: int  # the budget in env steps (a DQN's last round may be shorter than the others)

    @property
    def flops_per_update(self) -> float:
        return (
            self.env_steps_per_update / self.n_envs * self.flops_per_action
            + self.grad_steps_per_update * self.flops_per_grad_step
        )

    @property
    def env_seconds(self) -> float:
        return self.env_steps / self.env_steps_per_second

    @property
    def learn_seconds(self) -> float:
        return self.updates * self.grad_steps_per_update * self.seconds_per_grad_step

    @property
    def total_seconds(self) -> float:
        return self.env_seconds + self.learn_seconds

    def seconds_for(self, updates: int) -> float:
        """The estimate for ``updates`` updates (a stopped or resumed run trains fewer than planned)."""
        return self.total_seconds * updates / self.updates

    def summary(self) -> str:
        """One line, printed before training."""
        return (
            f"estimate: {self.updates:,} updates x ({self.env_steps_per_update:,} env steps at "
            f"{self.env_steps_per_second:,.0f} steps/s + {self.grad_steps_per_update:.3g} gradient steps of "
            f"{_si(self.flops_per_grad_step)}FLOP at {_duration(self.seconds_per_grad_step)}) = "
            f"{_duration(self.total_seconds)} for the training loop "
            f"({_duration(self.env_seconds)} environments, {_duration(self.learn_seconds)} learning); "
            f"{_si(self.flops_per_update)}FLOP per update; evaluation episodes come on top"
        )


def estimate_rl(config: RLConfig, policy: nn.Module, budget: float = 0.3) -> RLEstimate:
    """Measure env steps per second and a gradient step's time and FLOPs for ``config``'s agent; ``policy`` is copied."""
    updates, per_update = planned_updates(config)
    algo, n = config.algo, config.env.n_envs
    with torch.random.fork_rng(devices=[]):
        work = copy.deepcopy(policy)
        env_rate, action_flops = _env_steps_per_second(config, work, budget)
        if algo.name == "dqn":
            batch = algo.batch_size
            per_round = per_update // n
            learning_rounds = updates - (-(-algo.learning_starts // (per_round * n)) - 1 if algo.learning_starts else 0)
            grad_steps = algo.gradient_steps * max(0, learning_rounds) / updates
            step = _dqn_step(work, config, batch)
        else:
            batch = algo.minibatch_size if algo.name == "ppo" else per_update
            grad_steps = algo.epochs * -(-per_update // batch) if algo.name == "ppo" else 1
            step = _policy_gradient_step(work, config, batch)
        seconds, flops = _time_step(step, budget)
    return RLEstimate(
        device=device_label(torch.device("cpu")),
        updates=updates,
        env_steps_per_update=per_update,
        env_steps_per_second=env_rate,
        grad_steps_per_update=grad_steps,
        batch_size=batch,
        seconds_per_grad_step=seconds,
        flops_per_grad_step=flops,
        flops_per_action=action_flops,
        n_envs=n,
        env_steps=planned_env_steps(config),
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
        "estimated_env_steps_per_second": est.env_steps / est.total_seconds,
        "measured_env_only_steps_per_second": est.env_steps_per_second,
        "seconds_per_gradient_step": est.seconds_per_grad_step,
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


def _time_step(step, budget: float) -> tuple[float, int]:
    """Seconds per call of ``step`` (median of rounds of 4, after one warm-up call) and its FLOPs."""
    with FlopCounterMode(display=False) as counter:
        step()  # also the warm-up: Adam's state is allocated here
    rounds, spent = [], 0.0
    while spent < budget or len(rounds) < 3:
        started = time.perf_counter()
        for _ in range(4):
            step()
        rounds.append((time.perf_counter() - started) / 4)
        spent += rounds[-1] * 4
        if len(rounds) >= 200:
            break
    return statistics.median(rounds), int(counter.get_total_flops())
