"""Reinforcement learning: a policy learns by acting in an environment, from the rewards it gets back.

The recipe reads top to bottom: ① the agent (environments, policy, optimizer: an unknown id, a
missing simulator package or an action space the algorithm cannot handle is refused here, before
anything is written), ② the estimate and the run directory, ③ the agent's own loop (PPO, DQN or
REINFORCE, in ``trainwright/rl``) under observers that evaluate and keep the best policy, record the
history, checkpoint and show progress, ④ finish: the kept policy plays fresh episodes, its weights,
a rendered episode and the metrics are written, then the diagnosis and the report.

A checkpoint is taken between two updates (the agent's, the evaluator's and the history's state:
policy, optimizer, replay buffer, random generators, environments), copied at most every 0.5 s
and written at most every 2 s, at the end, and when the run is interrupted (Ctrl-C or SIGTERM), so
``--resume`` continues exactly where the copy was taken and reaches the same policy as a run that
was never stopped (tested on the CPU).

Example:
    >>> run = train(rl_config({"env": {"id": "CartPole-v1"}, "algo": {"name": "ppo"}}))
    >>> run.metrics["test"]["mean_return"], run.dir
    (500.0, PosixPath('runs/CartPole-v1-ppo-20260101-120000'))
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import yaml
from rich.console import Console

from trainwright.compute.rl_estimate import RLEstimate, compute_metrics, compute_summary, estimate_rl
from trainwright.config.rl import RLConfig
from trainwright.errors import TrainwrightError
from trainwright.models.summary import layer_summary
from trainwright.recipes.finish import Run, finish
from trainwright.report import write_report
from trainwright.rl.agent import Agent, Observer, Progress
from trainwright.rl.aggregate import iqm, iqm_interval
from trainwright.rl.display import ProgressDisplay
from trainwright.rl.envs import env_spec
from trainwright.rl.evaluation import FINAL_SEED_OFFSET, Evaluator, final_evaluation
from trainwright.rl.gif import render_episode
from trainwright.rl.history import History
from trainwright.rl.policies import QNetwork
from trainwright.rl.train import make_agent, planned_env_steps, planned_updates
from trainwright.rundir import RunDir, default_run_name, environment, unique_name
from trainwright.training.callbacks.base import ThrottledWrite
from trainwright.training.checkpoint import Snapshots, load_state, write_snapshot


def train(config: RLConfig, *, runs_dir: str | Path = "runs", name: str | None = None, resume: RunDir | None = None,
          console: Console | None = None) -> Run:
    """Train ``config``'s agent into a new run directory, or continue ``resume`` from its checkpoint."""
    console = console or Console()
    with torch_threads(config.threads):  # the caller's setting comes back afterwards
        # ① The agent: environments built and reset, the policy seeded.
        agent = make_agent(config)
        console.print(env_line(config, agent), highlight=False, soft_wrap=True)
        console.print(agent_line(config, agent), highlight=False, soft_wrap=True)

        # ② The estimate (throwaway copies of the environments and the policy), then the run directory.
        est = estimate_rl(config, agent.policy)
        console.print(est.summary(), highlight=False, soft_wrap=True)
        evaluator = Evaluator(config)
        history = History(evaluator, planned_updates(config)[0])
        if resume is None:
            run_dir = start_run(config, agent, runs_dir=runs_dir, name=name)
        else:
            run_dir = resume
            resume_from_checkpoint(run_dir, config, agent, evaluator, history, console)

        # ③ The loop: the evaluator sees each update first, then the history, the files and the display.
        files = RunFiles(run_dir, evaluator, history)
        files.saved_steps = agent.env_steps
        display = ProgressDisplay(console, evaluator, planned_env_steps(config))
        try:
            with terminate_as_interrupt():
                agent.train([evaluator, history, StopOnNonFinite(), files, display])
        except KeyboardInterrupt:
            display.close()
            files.close()
            saved = (f"the checkpoint holds {files.saved_steps:,}: continue with trainwright train --resume {run_dir.path}"
                     if run_dir.checkpoint.is_file() else "it had no checkpoint yet: train it again")
            console.print(f"interrupted at {agent.env_steps:,} env steps; {saved}", highlight=False, soft_wrap=True)
            raise
        finally:
            display.close()
            files.close()
        if agent.stop_reason:
            console.print(agent.stop_reason, highlight=False)

        # ④ Finish: the kept policy on fresh episodes, its weights, an episode as a GIF, metrics; diagnosis, report.
        metrics = finish_rl(run_dir, config, agent, evaluator, est, console)
        finish(run_dir, console)
        return Run(run_dir.path, config, metrics, history.rows)


def train_seeds(config: RLConfig, seeds: int, *, runs_dir: str | Path = "runs", name: str | None = None,
                console: Console | None = None) -> list[Run]:
    """``seeds`` runs of ``config`` (seeds ``config.seed``, ``+1``, ...), each its own run directory ``<name>-seed<k>``;
    then the interquartile mean of their final returns with a 95% stratified-bootstrap interval, written to each
    run's ``seeds.json`` and shown in each report."""
    console = console or Console()
    base = name or unique_name(runs_dir, default_run_name(config.env.id, config.algo.name))
    runs = []
    for seed in range(config.seed, config.seed + seeds):
        console.print(f"── seed {seed} ({seed - config.seed + 1} of {seeds})", highlight=False)
        runs.append(
            train(config.model_copy(update={"seed": seed}), runs_dir=runs_dir, name=f"{base}-seed{seed}", console=console)
        )
    scores = [run.metrics["test"]["mean_return"] for run in runs]
    interval = iqm_interval(scores)
    threshold = solved_level(config)
    summary = {
        "runs": [{"seed": run.config.seed, "run": run.dir.name, "mean_return": score} for run, score in zip(runs, scores)],
        "iqm": interval.iqm, "low": interval.low, "high": interval.high, "confidence": 0.95,
        "method": "interquartile mean of the seeds' final mean returns, percentile bootstrap over the seeds (50,000 resamples)",
        "threshold": threshold, "reached": sum(score >= threshold for score in scores) if threshold is not None else None,
    }
    for run in runs:
        run_dir = RunDir.open(run.dir)
        run_dir.write_json(run_dir.seeds, summary)
        write_report(run_dir.path)
    reached = f"; {summary['reached']} of {seeds} seeds reach {threshold:g}" if threshold is not None else ""
    console.print(
        f"over {seeds} seeds: final mean returns {', '.join(f'{s:.1f}' for s in scores)}; {interval}{reached}",
        highlight=False,
        soft_wrap=True,
    )
    return runs


def estimate(config: RLConfig) -> RLEstimate:
    """The estimate alone (``trainwright estimate``): the agent is built, so a bad id or space fails here; nothing is written."""
    with torch_threads(config.threads):
        agent = make_agent(config)
        try:
            return estimate_rl(config, agent.policy)
        finally:
            agent.envs.close()


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run a block on ``threads`` torch threads (None: as they are), then restore the caller's setting."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ── ① and ② ───────────────────────────────────────────────────────────────────────────
def env_line(config: RLConfig, agent: Agent) -> str:
    spec, envs = env_spec(config.env), agent.envs
    end = f"episodes end at {spec.max_episode_steps} steps" if spec.max_episode_steps else "no time limit"
    threshold = solved_level(config)
    solved = f"; solved at a mean return of {threshold:g}" if threshold is not None else ""
    return (
        f"env: {config.env.id}, {config.env.n_envs} in parallel; observations {space_text(envs.single_observation_space)}, "
        f"actions {space_text(envs.single_action_space)}; {end}{solved}"
    )


def solved_level(config: RLConfig) -> float | None:
    """The mean return gymnasium calls solved for this id; unknown (None) when env.max_episode_steps changes its episodes."""
    spec = env_spec(config.env)
    registered = env_spec(config.env.model_copy(update={"max_episode_steps": None}))
    return spec.reward_threshold if spec.max_episode_steps == registered.max_episode_steps else None


def space_text(space: Any) -> str:
    """``Box(4,) float32`` rather than gymnasium's repr with every bound, ``Discrete(2)`` as it is."""
    if hasattr(space, "low") and hasattr(space, "shape"):
        low, high = space.low.reshape(-1), space.high.reshape(-1)
        bounds = f" in [{low[0]:g}, {high[0]:g}]" if (low == low[0]).all() and (high == high[0]).all() else ""
        return f"Box{space.shape} {space.dtype}{bounds}"
    return str(space)


def agent_line(config: RLConfig, agent: Agent) -> str:
    parameters = sum(p.numel() for p in agent.policy.parameters())
    return (
        f"agent: {config.algo.name}, {describe_policy(config, agent.policy)}, {parameters:,} parameters, device cpu; "
        f"budget {config.algo.steps:,} env steps, seed {config.seed}"
    )


def describe_policy(config: RLConfig, policy: torch.nn.Module) -> str:
    widths = "-".join(map(str, config.model.hidden)) or "linear"
    net = f"{widths} {config.model.activation}"
    if isinstance(policy, QNetwork):
        return f"Q-network {net}"
    head = "categorical" if policy.discrete else "diagonal Gaussian"
    return f"actor-critic ({head} actor {net}, critic {net})"


def start_run(config: RLConfig, agent: Agent, *, runs_dir: str | Path, name: str | None) -> RunDir:
    """Create the run directory and write what the run starts from: config, software, environment, policy."""
    run_dir = RunDir.create(runs_dir, name or unique_name(runs_dir, default_run_name(config.env.id, config.algo.name)))
    run_dir.write_text(run_dir.config, config_yaml(config))
    run_dir.write_json(run_dir.environment, environment(torch.device("cpu"), config.seed))
    run_dir.write_json(run_dir.env_info, env_facts(config, agent))
    run_dir.write_json(run_dir.model_info, policy_facts(config, agent.policy))
    return run_dir


def config_yaml(config: RLConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def env_facts(config: RLConfig, agent: Agent) -> dict[str, Any]:
    spec, envs, action = env_spec(config.env), agent.envs, agent.envs.single_action_space
    discrete = hasattr(action, "n")
    return {
        "id": config.env.id,
        "n_envs": config.env.n_envs,
        "observation_space": space_text(envs.single_observation_space),
        "action_space": space_text(action),
        "discrete": discrete,
        "actions": int(action.n) if discrete else int(action.shape[0]),
        "max_episode_steps": spec.max_episode_steps,
        "reward_threshold": solved_level(config),
        "normalize_obs": config.env.normalize_obs,
        "normalize_reward": config.env.normalize_reward,
    }


def policy_facts(config: RLConfig, policy: torch.nn.Module) -> dict[str, Any]:
    features = policy.obs_norm.mean.numel()
    nets = {"Q-network": policy.net} if isinstance(policy, QNetwork) else {"actor": policy.actor, "critic": policy.critic}
    networks = {name: layer_summary(net, (features,)) for name, net in nets.items()}
    first = next(iter(nets.values()))
    return {
        "type": "q_network" if isinstance(policy, QNetwork) else "actor_critic",
        "algo": config.algo.name,
        "description": describe_policy(config, policy),
        "input_shape": [features],
        "out_features": first[-1].out_features,
        "parameters": sum(p.numel() for p in policy.parameters()),
        "flops_per_row": sum(summary["flops_per_row"] for summary in networks.values()),
        "networks": networks,
    }


def resume_from_checkpoint(
    run_dir: RunDir, config: RLConfig, agent: Agent, evaluator: Evaluator, history: History, console: Console
) -> None:
    """Put the agent, the evaluator and the history back where the checkpoint left them."""
    saved = yaml.safe_load(run_dir.config.read_text(encoding="utf-8"))
    now = config.model_dump(mode="json")
    if {**saved, "algo": {**saved["algo"], "steps": None}} != {**now, "algo": {**now["algo"], "steps": None}}:
        raise TrainwrightError(
            f"--resume continues {run_dir.path} with its own config; only algo.steps may change (to train longer)"
        )
    if not run_dir.checkpoint.is_file():
        raise TrainwrightError(f"{run_dir.path} has no checkpoint yet (it stopped before its first one); train it again instead")
    state = load_state(run_dir.checkpoint)
    if state.get("recipe") != "rl":
        raise TrainwrightError(f"{run_dir.checkpoint} is not the checkpoint of an RL run")
    agent.load_state_dict(state["agent"])
    evaluator.load_state_dict(state["evaluator"])
    history.load_state_dict(state["history"])
    if agent.updates >= planned_updates(config)[0] and run_dir.metrics.is_file():
        raise TrainwrightError(
            f"{run_dir.path} already trained its {config.algo.steps:,} env steps; to train longer pass "
            f"--set algo.steps=N with N > {config.algo.steps}"
        )
    if saved["algo"]["steps"] != now["algo"]["steps"]:
        run_dir.write_text(run_dir.config, config_yaml(config))
    console.print(f"resuming {run_dir.path} at {agent.env_steps:,} env steps (update {agent.updates})", highlight=False)


# ── ③ observers the recipe adds ───────────────────────────────────────────────────────────
class RunFiles(Observer):
    """``history.csv`` and the checkpoint, kept up to date through ``RunDir``.

    The training state is copied between two updates at most every ``every`` seconds (into fresh
    buffers, so a copy interrupted half way never touches the one waiting to be written) and written
    at most every ``interval`` seconds, at the end and when the run is interrupted (``close``)."""

    def __init__(self, run_dir: RunDir, evaluator: Evaluator, history: History, interval: float = 2.0, every: float = 0.5):
        self.run_dir, self.evaluator, self.history, self.every = run_dir, evaluator, history, every
        self.history_writes, self.state_writes = ThrottledWrite(interval), ThrottledWrite(interval)
        self.taken = -math.inf
        self.saved_steps = 0  # env steps of the latest copy (a resumed run: those of the checkpoint it resumed from)

    def on_update(self, agent: Agent, progress: Progress) -> None:
        first = self.taken == -math.inf
        if first or time.monotonic() - self.taken >= self.every:
            self.snapshot(agent)
        if first:  # the first copy goes to disk at once: a run stopped in its first seconds can resume too
            self.state_writes.flush()
        self.history_writes.offer(self.write_history)

    def on_train_end(self, agent: Agent) -> None:
        self.snapshot(agent)  # after the final evaluation and the history's last row
        self.close()

    def snapshot(self, agent: Agent) -> None:
        state = {
            "recipe": "rl",
            "agent": agent.state_dict(),
            "evaluator": self.evaluator.state_dict(),
            "history": self.history.state_dict(),
        }
        self.state_writes.offer(write_snapshot, self.run_dir, self.run_dir.checkpoint, *Snapshots().take(state))
        self.taken, self.saved_steps = time.monotonic(), agent.env_steps

    def write_history(self) -> None:
        columns = self.history.columns()
        lines = [",".join(columns)]
        lines += [",".join(_cell(row.get(key)) for key in columns) for row in self.history.rows]
        self.run_dir.write_text(self.run_dir.history, "\n".join(lines) + "\n")

    def close(self) -> None:
        self.history_writes.flush()
        self.state_writes.flush()


def _cell(value: float | None) -> str:
    """A history cell: empty when the row did not record it, else the number (``nan`` when it was NaN)."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))


class StopOnNonFinite(Observer):
    """Stop the run when a loss becomes NaN or infinite: every later update would only spread it."""

    def on_update(self, agent: Agent, progress: Progress) -> None:
        for key in ("policy_loss", "value_loss", "q_loss"):
            value = progress.metrics.get(key)
            if value is not None and not math.isfinite(value):
                agent.request_stop(
                    f"the {key.replace('_', ' ')} became {value} at {progress.env_steps:,} env steps; training stopped"
                )
                return


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler or ``kill``) ends the loop like Ctrl-C does, so the checkpoint is written; main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ── ④ ──────────────────────────────────────────────────────────────────────────────────
def finish_rl(
    run_dir: RunDir, config: RLConfig, agent: Agent, evaluator: Evaluator, est: RLEstimate, console: Console
) -> dict:
    """Score the kept policy on fresh episodes, write its weights, an episode as a GIF and metrics.json."""
    final = final_evaluation(agent, evaluator)
    kept = evaluator.best_policy(agent)
    run_dir.save_weights(kept)
    episode = write_episode(run_dir, config, kept)
    compute = compute_metrics(est, agent.seconds, agent.env_steps, agent.updates)
    metrics = {
        "task": "rl",
        "algo": config.algo.name,
        "env": config.env.id,
        "test": {
            "mean_return": final.mean,
            "std_return": final.std,
            "iqm_return": iqm(final.returns),
            "min_return": float(final.returns.min()),
            "max_return": float(final.returns.max()),
            "episodes": len(final.returns),
        },
        "final": final.to_dict(),
        "best": {"env_steps": evaluator.best_env_steps, "eval_return": evaluator.best_return},
        "evaluations": [
            {"env_steps": h["env_steps"], "mean": h["mean"], "std": h["std"], "seed": h["seed"]} for h in evaluator.history
        ],
        "evaluation_episodes": config.evaluate.episodes,
        "deterministic": config.evaluate.deterministic,
        "env_steps": agent.env_steps,
        "updates": agent.updates,
        "epochs": agent.updates,
        "train_seconds": agent.seconds,
        "eval_seconds": sum(h["seconds"] for h in evaluator.history) + final.seconds,
        "stopped_early": agent.stop_reason,
        "compute": compute,
        **episode,
    }
    run_dir.write_json(run_dir.metrics, metrics)
    threshold = solved_level(config)
    verdict = ""
    if threshold is not None:
        verdict = f"; solved (>= {threshold:g})" if final.mean >= threshold else f"; below the solved level {threshold:g}"
    console.print(
        f"final evaluation: the kept policy (from step {evaluator.best_env_steps:,}, evaluation mean "
        f"{evaluator.best_return:.1f}) over {len(final.returns)} episodes on new seeds: mean {final.mean:.2f} +- "
        f"{final.std:.2f}, IQM {iqm(final.returns):.2f}, min {final.returns.min():.1f}, max {final.returns.max():.1f}{verdict}",
        highlight=False, soft_wrap=True,
    )
    console.print(f"{compute_summary(compute)}; evaluations {metrics['eval_seconds']:.1f} s", highlight=False, soft_wrap=True)
    if "episode" in episode:
        console.print(
            f"episode: {run_dir.episode.name}, return {episode['episode']['return']:.1f} in {episode['episode']['length']} steps",
            highlight=False,
        )
    else:
        console.print(f"episode: none rendered ({episode['episode_note']})", highlight=False, soft_wrap=True)
    return metrics


def write_episode(run_dir: RunDir, config: RLConfig, policy: torch.nn.Module, every: int = 2) -> dict:
    """One episode of the kept policy as ``episode.gif`` (for the report); a note instead when it cannot be drawn."""
    seed = config.eval_seed + 2 * FINAL_SEED_OFFSET
    try:
        gif, info = render_episode(policy, config.env, seed=seed, deterministic=config.evaluate.deterministic, every=every)
    except TrainwrightError as error:  # no pygame, or an environment without rgb_array frames: the run is still good
        return {"episode_note": str(error)}
    run_dir.write_bytes(run_dir.episode, gif)
    return {"episode": {**info, "seed": seed, "every": every}}
