"""PPO on CartPole-v1: trainwright against Stable-Baselines3's PPO with the same hyperparameters.

Both take rl-zoo3's tuned CartPole-v1 settings (8 environments, n_steps 32, one minibatch of 256,
20 epochs, gamma 0.98, GAE lambda 0.8, lr 1e-3 and clip 0.2 annealed linearly, no entropy bonus,
value coefficient 0.5, gradient norm 0.5, Adam eps 1e-5, separate 64-64 tanh actor and critic with
orthogonal init), one torch thread, on the CPU, for 100,000 env steps. Every 5,120 env steps each
policy plays 10 deterministic evaluation episodes on its own seeded environments; the time those
take is subtracted, so steps/s is the training loop alone. "Steps to 475" is the first evaluation
whose mean reaches 475. Runs alternate (trainwright, SB3, trainwright, ...) over ``--seeds`` so a
slow stretch of this shared machine hits both; the summary gives medians and the median of the
per-seed speed ratios.

    pip install stable-baselines3     # the bench extra
    nice -n 19 python benchmarks/rl_speed.py [--seeds 0-2] [--steps 100000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from trainwright.config.rl import rl_config
from trainwright.rl.agent import Observer
from trainwright.rl.evaluation import evaluate
from trainwright.rl.ppo import PPO

ENV, INTERVAL, EPISODES, BAR = "CartPole-v1", 5120, 10, 475.0


def ours(seed: int, steps: int) -> dict:
    config = rl_config({"seed": seed, "env": {"id": ENV}, "algo": {"name": "ppo", "steps": steps}})
    first_solved: list[int] = []

    class Probe(Observer):  # observers' time is outside agent.seconds already
        next_at = INTERVAL

        def on_update(self, agent, progress):
            if progress.env_steps >= self.next_at:
                self.next_at += INTERVAL
                if not first_solved and evaluate(agent.policy, config.env, EPISODES, seed=10_000 + seed).mean >= BAR:
                    first_solved.append(progress.env_steps)

    agent = PPO(config).train([Probe()])
    return {"steps": agent.env_steps, "seconds": agent.seconds, "solved_at": first_solved[0] if first_solved else None}


def sb3(seed: int, steps: int) -> dict:
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    def linear(value: float):
        return lambda remaining: remaining * value  # rl-zoo3's lin_<value>

    model = SB3PPO(
        "MlpPolicy", make_vec_env(ENV, n_envs=8, seed=seed), n_steps=32, batch_size=256, n_epochs=20, gamma=0.98, gae_lambda=0.8,
        ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5, learning_rate=linear(1e-3), clip_range=linear(0.2), device="cpu", seed=seed,
    )
    eval_env = make_vec_env(ENV, n_envs=1, seed=10_000 + seed)

    class Probe(BaseCallback):
        def __init__(self):
            super().__init__()
            self.next_at, self.eval_seconds, self.solved_at = INTERVAL, 0.0, None

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_at:
                self.next_at += INTERVAL
                if self.solved_at is None:
                    started = time.perf_counter()
                    mean, _ = evaluate_policy(self.model, eval_env, n_eval_episodes=EPISODES, deterministic=True)
                    self.eval_seconds += time.perf_counter() - started
                    if mean >= BAR:
                        self.solved_at = self.num_timesteps
            return True

    probe = Probe()
    started = time.perf_counter()
    model.learn(steps, callback=probe)
    seconds = time.perf_counter() - started - probe.eval_seconds
    return {"steps": model.num_timesteps, "seconds": seconds, "solved_at": probe.solved_at}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--steps", type=int, default=100_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    low, _, high = args.seeds.partition("-")
    seeds = list(range(int(low), int(high or low) + 1))
    rows = []
    for seed in seeds:
        a = ours(seed, args.steps)
        print(f"seed {seed} trainwright: {a['steps'] / a['seconds']:.0f} env steps/s ({a['steps']} in {a['seconds']:.1f} s), "
              f"475 at {a['solved_at']}", flush=True)
        b = sb3(seed, args.steps)
        print(f"seed {seed} SB3:         {b['steps'] / b['seconds']:.0f} env steps/s ({b['steps']} in {b['seconds']:.1f} s), "
              f"475 at {b['solved_at']}; "
              f"ratio {(a['steps'] / a['seconds']) / (b['steps'] / b['seconds']):.2f}", flush=True)
        rows.append((a, b))
    ratio = statistics.median((a["steps"] / a["seconds"]) / (b["steps"] / b["seconds"]) for a, b in rows)
    for name, side in (("trainwright", 0), ("SB3", 1)):
        speeds = [r[side]["steps"] / r[side]["seconds"] for r in rows]
        solved = [r[side]["solved_at"] for r in rows]
        reached = [s for s in solved if s is not None]
        median_solved = f"{np.median(reached):.0f}" if reached else "never"
        print(f"{name}: median {statistics.median(speeds):.0f} env steps/s; reached 475 in {len(reached)}/{len(rows)} runs, "
              f"median at {median_solved} steps")
    print(f"speed trainwright/SB3 = {ratio:.2f} (median of per-seed ratios)")


if __name__ == "__main__":
    main()
