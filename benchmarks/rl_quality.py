"""What the RL benchmarks share: train one (algorithm, environment) pair over several seeds and score it.

Each seed trains within the budget under the run's evaluation plan (10 deterministic episodes every
``evaluate.interval`` env steps; the best policy is kept), then the kept policy plays 100 fresh
episodes on seeds it was not selected on (``final_evaluation``). A seed reaches the bar when that
100-episode mean does. The summary gives the count of seeds at the bar, the interquartile mean over
seeds with its 95% stratified-bootstrap interval (rliable's method), env steps per second of the
training loop (evaluation excluded) and the wall time. Each seed's line is also appended as JSON to
``--out`` so a long sweep can be read while it runs. The last policy's 100-episode mean is printed
beside the kept one's, to show what selection by evaluation bought. Each seed's history is also
diagnosed (``evaluate/diagnose_rl.py``) as ``trainwright train`` would: a tuned run should have no findings.

    python benchmarks/rl_cartpole.py            # PPO and DQN on CartPole-v1, seeds 0-4
    python benchmarks/rl_acrobot.py             # PPO on Acrobot-v1, seeds 0-4
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from trainwright.config.rl import rl_config
from trainwright.evaluate.diagnose_rl import diagnose_rl
from trainwright.rl.aggregate import iqm_interval
from trainwright.rl.envs import env_spec
from trainwright.rl.evaluation import FINAL_SEED_OFFSET, Evaluator, evaluate
from trainwright.rl.history import History
from trainwright.rl.train import planned_updates, train


def run_seed(algo: str, env_id: str, seed: int, overrides: dict) -> dict:
    """Train one seed with the tuned defaults (plus ``overrides``) and score its kept and last policies."""
    raw = {"seed": seed, "env": {"id": env_id}, "algo": {"name": algo}}
    for section, values in overrides.items():
        raw.setdefault(section, {}).update(values)
    config = rl_config(raw)
    started = time.perf_counter()
    evaluator = Evaluator(config)
    history = History(evaluator, planned_updates(config)[0])  # the rows a run's history.csv would hold
    result = train(config, [history], evaluator=evaluator)
    last = evaluate(result.agent.policy, config.env, config.evaluate.final_episodes, config.eval_seed + FINAL_SEED_OFFSET)
    actions = result.agent.envs.single_action_space
    threshold = env_spec(config.env).reward_threshold
    env = {"reward_threshold": threshold, "discrete": hasattr(actions, "n"), "actions": getattr(actions, "n", 0)}
    findings = diagnose_rl(history.rows, {"test": {"mean_return": result.final.mean}}, env=env, algo=algo)
    return {
        "algo": algo, "env": env_id, "seed": seed, "budget": config.algo.steps, **result.summary(),
        "last_mean": last.mean, "wall_seconds": time.perf_counter() - started,
        "evaluations": [(h["env_steps"], h["mean"]) for h in result.evaluator.history],
        "findings": [f"{f['kind']}: {f['evidence']}" for f in findings],
    }


def sweep(algo: str, env_id: str, seeds: list[int], bar: float, overrides: dict, out: Path | None) -> list[dict]:
    """Run every seed, print one line each and the summary; return the per-seed records."""
    print(f"== {algo.upper()} on {env_id}: bar {bar:g} over 100 episodes, seeds {seeds}", flush=True)
    records = []
    for seed in seeds:
        record = run_seed(algo, env_id, seed, overrides)
        records.append(record)
        print(
            f"seed {seed}: kept policy {record['final_mean']:8.2f} +- {record['final_std']:6.2f} "
            f"(from step {record['best_env_steps']}, "
            f"10-episode eval {record['best_eval_return']:.1f}); last policy {record['last_mean']:8.2f}; "
            f"{record['env_steps']} env steps, {record['steps_per_second']:.0f} steps/s, wall {record['wall_seconds']:.0f} s; "
            f"diagnosis: {'; '.join(record['findings']) or 'no findings'}",
            flush=True,
        )
        if out is not None:
            with out.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
    scores = [r["final_mean"] for r in records]
    reached = sum(score >= bar for score in scores)
    interval = iqm_interval(scores)
    steps_per_second = sum(r["env_steps"] for r in records) / sum(r["train_seconds"] for r in records)
    wall = sum(r["wall_seconds"] for r in records)
    print(f"{algo.upper()} {env_id}: {reached}/{len(seeds)} seeds >= {bar:g}; {interval}; "
          f"{steps_per_second:.0f} env steps/s (training loop); wall {wall:.0f} s", flush=True)
    return records


def main(pairs: list[tuple[str, str, float]], description: str) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", default="0-4", help="e.g. 0-4 or 0,2,3")
    parser.add_argument("--algo", default=None, help="only this algorithm")
    parser.add_argument("--set", action="append", default=[], help="override as section.key=value (YAML value)")
    parser.add_argument("--out", type=Path, default=None, help="append each seed's record here as a JSON line")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = _seeds(args.seeds)
    overrides: dict = {}
    for item in args.set:
        import yaml

        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        overrides.setdefault(section, {})[name] = yaml.safe_load(value)
    for algo, env_id, bar in pairs:
        if args.algo in (None, algo):
            sweep(algo, env_id, seeds, bar, overrides, args.out)


def _seeds(text: str) -> list[int]:
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(part) for part in text.split(",")]
