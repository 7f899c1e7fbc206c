"""What went wrong in a reinforcement-learning run, in words, with remedies naming keys of the RL config.

``diagnose_rl`` is a pure function over what an RL run directory holds: the history rows
(``history.csv``: env steps, training episode returns, entropy, value loss, explained variance,
Q-values, evaluations), the final metrics and the environment's facts (``env.json``: the action
space, the return at which gymnasium calls the task solved). Findings have the supervised shape
(``kind``, ``epoch`` (None: RL has no epochs), ``evidence``, ``remedies``) plus ``env_steps``.

- ``value_divergence``: the critic's loss became non-finite, or grew 100x while the critic
  explains the returns worse than a constant (explained variance below 0); for DQN, Q-values far
  beyond any return seen (the classic overestimation spiral), or a Q loss grown 1000x.
- ``entropy_collapse``: the policy became nearly deterministic (entropy under a tenth of the
  uniform policy's, or a Gaussian's std under a tenth of its start) while its returns were still
  less than half way from where they started to the solved level, and the run did not recover.
- ``no_improvement``: neither the training return (a moving mean) nor the evaluations (against the
  first) rose by a tenth of the way to the solved level (without a known level: a tenth of the
  first return's size, or twice the early rows' spread). Reported only when no cause above explains it.

The thresholds keep the tuned runs (PPO and DQN on CartPole-v1, PPO on Acrobot-v1, seeds 0-2)
free of findings and flag the deliberately broken configs in tests/evaluate/test_diagnose_rl.py.

Example:
    >>> diagnose_rl(rows, metrics, env={"reward_threshold": 475.0, "discrete": True, "actions": 2}, algo="ppo")
    [{'kind': 'no_improvement', 'epoch': None, 'env_steps': 20480, 'evidence': '...', 'remedies': [...]}]
"""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path
from typing import Any

RL_KINDS = ("value_divergence", "entropy_collapse", "no_improvement")

COLLAPSE_SHARE = 0.1  # entropy below this share of the uniform policy's (a Gaussian: std below this share of its start)
COLLAPSE_PROGRESS = 0.5  # ... while the return had come less than this share of the way to the solved level
VALUE_GROWTH = 100.0  # the value loss grew this many times from its early level ...
Q_GROWTH = 1000.0  # a DQN's loss grew this many times
Q_BOUND = 2.0  # |mean Q| beyond this many times the largest |return| of any episode seen (and beyond Q_FLOOR)
Q_FLOOR = 10.0
IMPROVEMENT = 0.1  # the best return must rise this share of the way to the solved level (or of |first return|)
SMOOTH = 5  # rows in the moving mean of the training return

REMEDIES: dict[str, dict[str, list[str]]] = {
    "value_divergence": {
        "ppo": [
            "scale the rewards (env.normalize_reward: true)",
            "lower the learning rate (algo.lr), or anneal it (algo.anneal_lr: true)",
            "clip the value update (algo.clip_value: 0.2)",
            "weigh the value loss less (algo.vf_coef: 0.25)",
            "clip the gradient norm harder (algo.max_grad_norm: 0.5)",
        ],
        "reinforce": [
            "scale the rewards (env.normalize_reward: true)",
            "lower the learning rate (algo.lr)",
            "weigh the value loss less (algo.vf_coef: 0.25)",
            "clip the gradient norm harder (algo.max_grad_norm: 0.5)",
        ],
        "dqn": [
            "lower the learning rate (algo.lr)",
            "keep double Q on (algo.double_q: true)",
            "refresh the target network less often (algo.target_update_interval) or softly (algo.tau: 0.005)",
            "clip the gradient norm harder (algo.max_grad_norm: 1.0)",
            "normalize the observations (env.normalize_obs: true)",
        ],
    },
    "entropy_collapse": {
        "ppo": [
            "add an entropy bonus (algo.ent_coef: 0.01)",
            "take smaller steps: lower the learning rate (algo.lr) or anneal it (algo.anneal_lr: true)",
            (
                "change the policy less per rollout: fewer epochs (algo.epochs: 4), a tighter clip (algo.clip: 0.1) "
                "or an early stop (algo.target_kl: 0.02)"
            ),
            "normalize the observations (env.normalize_obs: true)",
        ],
        "reinforce": [
            "add an entropy bonus (algo.ent_coef: 0.01)",
            "lower the learning rate (algo.lr)",
            "collect longer rollouts for less noisy gradients (algo.n_steps)",
            "normalize the observations (env.normalize_obs: true)",
        ],
    },
    "no_improvement": {
        "ppo": [
            "train longer (algo.steps)",
            "try another learning rate (algo.lr: 3x higher or 10x lower)",
            "explore more (algo.ent_coef: 0.01)",
            "normalize the observations and rewards (env.normalize_obs: true, env.normalize_reward: true)",
            "check that the environment's reward varies at all with what the agent does",
        ],
        "reinforce": [
            "train longer (algo.steps)",
            "try another learning rate (algo.lr: 3x higher or 10x lower)",
            "explore more (algo.ent_coef: 0.01)",
            "normalize the observations and rewards (env.normalize_obs: true, env.normalize_reward: true)",
            "use PPO (algo.name: ppo): it reuses each rollout for several epochs",
        ],
        "dqn": [
            "train longer (algo.steps)",
            "try another learning rate (algo.lr: 3x higher or 10x lower)",
            "explore longer (algo.exploration_fraction: 0.3, algo.epsilon_end: 0.1)",
            "learn more per step (algo.gradient_steps) or start later, from a fuller buffer (algo.learning_starts)",
            "check that the environment's reward varies at all with what the agent does",
        ],
    },
}


def rl_finding(kind: str, algo: str, env_steps: int | None, evidence: str) -> dict[str, Any]:
    return {"kind": kind, "epoch": None, "env_steps": env_steps, "evidence": evidence, "remedies": list(REMEDIES[kind][algo])}


def diagnose_rl(rows: list[dict], metrics: dict | None = None, *, env: dict | None = None, algo: str) -> list[dict]:
    """Findings about one RL run, causes first; ``[]`` when training looks healthy.

    ``rows``: history.csv as dicts of numbers. ``metrics``: metrics.json (absent for an unfinished run).
    ``env``: ``{"reward_threshold": float | None, "discrete": bool, "actions": int}`` from env.json.
    """
    env = env or {}
    threshold = env.get("reward_threshold")
    findings = value_divergence(rows, algo)
    if algo in ("ppo", "reinforce"):
        findings += entropy_collapse(rows, metrics, algo, threshold, env.get("actions") if env.get("discrete") else None)
    if not findings:
        findings += no_improvement(rows, metrics, algo, threshold)
    return findings


# ── the critic ─────────────────────────────────────────────────────────────────────────
def value_divergence(rows: list[dict], algo: str) -> list[dict]:
    loss_key = "q_loss" if algo == "dqn" else "value_loss"
    for row in rows:
        if loss_key in row and not math.isfinite(row[loss_key]):
            return [rl_finding("value_divergence", algo, _steps(row), f"the {_name(loss_key)} became {row[loss_key]} at "
                               f"{_steps(row):,} env steps: the value estimates overflowed")]
    recorded = [row for row in rows if _has(row, loss_key)]
    if len(recorded) < 6:
        return []
    k = max(3, len(recorded) // 10)
    early, late = statistics.median(r[loss_key] for r in recorded[:k]), statistics.median(r[loss_key] for r in recorded[-k:])
    if algo == "dqn":
        largest = max((abs(r["episode_return"]) for r in rows if _has(r, "episode_return")), default=0.0)
        q = [r for r in recorded if _has(r, "q_mean")]
        beyond = next((r for r in q if abs(r["q_mean"]) > max(Q_FLOOR, Q_BOUND * largest)), None)
        if beyond is not None:
            return [rl_finding("value_divergence", algo, _steps(beyond), (
                f"the mean Q-value reached {beyond['q_mean']:.4g} at {_steps(beyond):,} env steps, more than {Q_BOUND:g}x the "
                f"largest episode return seen ({largest:.4g}): the Q-values overestimate themselves through the bootstrap"))]
        if early > 0 and late > Q_GROWTH * early:
            return [rl_finding("value_divergence", algo, _steps(recorded[-1]), (
                f"the Q loss grew from {early:.3g} (median of the first {k} rows) to {late:.3g} (the last {k}), "
                f"{late / early:.0f}x: the targets run away from the network"))]
        return []
    variance = [r["explained_variance"] for r in recorded[-k:] if _has(r, "explained_variance")]
    worse_than_constant = not variance or statistics.median(variance) < 0
    if early > 0 and late > VALUE_GROWTH * early and worse_than_constant:
        ev = f", explained variance {statistics.median(variance):.3g}" if variance else ""
        return [rl_finding("value_divergence", algo, _steps(recorded[-1]), (
            f"the value loss grew from {early:.3g} (median of the first {k} rows) to {late:.3g} (the last {k}), "
            f"{late / early:.0f}x{ev}: the critic predicts the returns worse than a constant would"))]
    return []


# ── the policy ─────────────────────────────────────────────────────────────────────────
def entropy_collapse(
    rows: list[dict], metrics: dict | None, algo: str, threshold: float | None, actions: int | None
) -> list[dict]:
    returns = _smoothed_returns(rows)
    if len(returns) < 3:
        return []
    if actions:  # discrete: against the uniform policy's entropy, log(actions)
        if actions < 2:
            return []
        series = [(row, row["entropy"] / math.log(actions)) for row in rows if _has(row, "entropy")]
    else:  # continuous: the Gaussian's std against its start
        stds = [row for row in rows if _has(row, "action_std")]
        if not stds or stds[0]["action_std"] <= 0:
            return []
        series = [(row, row["action_std"] / stds[0]["action_std"]) for row in stds]
    collapse = next(((row, share) for row, share in series if share < COLLAPSE_SHARE), None)
    if collapse is None:
        return []
    row, share = collapse
    if actions:
        fell = f"the policy's entropy fell to {row['entropy']:.3g}, {share:.0%} of a uniform choice among {actions} actions"
    else:
        fell = f"the policy's action std fell to {row['action_std']:.3g}, {share:.0%} of its start"
    start, at = returns[0][1], _return_at(returns, _steps(row))
    end = _final_return(rows, metrics)
    if threshold is not None:
        # Collapsed less than half way to the solved level, and never solved it.
        if at - start >= COLLAPSE_PROGRESS * (threshold - start) or end is None or end >= threshold:
            return []
        goal = f"the solved level {threshold:g}"
    else:
        # Without a solved level: collapsed, and the returns never rose meaningfully after it.
        later = [value for steps, value in returns if steps > _steps(row)]
        if not later or max(later) - at > _margin(start, rows):
            return []
        goal = "a return that kept improving"
    final = f"; the kept policy scores {end:.4g}" if end is not None else ""
    return [
        rl_finding(
            "entropy_collapse",
            algo,
            _steps(row),
            (
                f"at {_steps(row):,} env steps {fell} while the training return was {at:.4g} "
                f"(it started at {start:.4g}), far from {goal}{final}: the policy stopped exploring before it learned"
            ),
        )
    ]


def no_improvement(rows: list[dict], metrics: dict | None, algo: str, threshold: float | None) -> list[dict]:
    """Neither the training return (moving mean) nor the evaluations (against the first one) rose meaningfully.

    Evaluations are compared with the first evaluation, not with the first training episodes: an
    untrained policy acting greedily can balance a pole far longer than the same policy sampling."""
    returns = _smoothed_returns(rows)
    if len(returns) < 3:
        return []
    start, best = returns[0][1], max(value for _, value in returns)
    evals = [row["eval_return"] for row in rows if _has(row, "eval_return")]
    gained = max(best - start, max(evals) - evals[0] if len(evals) > 1 else -math.inf)
    if threshold is not None and threshold > start:
        needed = IMPROVEMENT * (threshold - start)
        scale = f"a tenth of the way to the solved level {threshold:g} is {needed:.3g}"
    else:
        needed = _margin(start, rows)
        scale = f"the first rows vary by {needed:.3g}"
    if gained >= needed:
        return []
    evaluated = f", the evaluations from {evals[0]:.4g} to at most {max(evals):.4g}" if len(evals) > 1 else ""
    return [
        rl_finding(
            "no_improvement",
            algo,
            _steps(rows[-1]),
            (
                f"in {_steps(rows[-1]):,} env steps the training return went from {start:.4g} to at most {best:.4g}{evaluated} "
                f"({scale}): the policy did not learn"
            ),
        )
    ]


# ── helpers ────────────────────────────────────────────────────────────────────────────
def read_rl_history(path: Path) -> list[dict[str, float]]:
    """An RL run's ``history.csv`` as dicts of numbers; an empty cell (not recorded in that row) is left out,
    while ``nan`` stays: a loss that became NaN is a finding, a loss not yet logged is not."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [{key: float(value) for key, value in row.items() if value != ""} for row in csv.DictReader(handle)]


def _has(row: dict, key: str) -> bool:
    value = row.get(key)
    return value is not None and math.isfinite(value)


def _steps(row: dict) -> int:
    return int(row.get("env_steps", 0))


def _name(key: str) -> str:
    return {"q_loss": "Q loss", "value_loss": "value loss"}[key]


def _smoothed_returns(rows: list[dict]) -> list[tuple[int, float]]:
    """(env steps, moving mean of the training return over the last SMOOTH rows that had episodes)."""
    points = [(_steps(row), row["episode_return"]) for row in rows if _has(row, "episode_return")]
    return [
        (steps, statistics.fmean(v for _, v in points[max(0, i - SMOOTH + 1) : i + 1])) for i, (steps, _) in enumerate(points)
    ]


def _return_at(returns: list[tuple[int, float]], steps: int) -> float:
    before = [value for at, value in returns if at <= steps]
    return before[-1] if before else returns[0][1]


def _final_return(rows: list[dict], metrics: dict | None) -> float | None:
    """The kept policy's final evaluation, or (unfinished) the last evaluation or training return."""
    final = ((metrics or {}).get("test") or {}).get("mean_return")
    if final is not None:
        return final
    for key in ("eval_return", "episode_return"):
        values = [row[key] for row in rows if _has(row, key)]
        if values:
            return max(values) if key == "eval_return" else values[-1]
    return None


def _margin(start: float, rows: list[dict]) -> float:
    """What counts as a real rise without a solved level: a tenth of the first return's size or twice the early spread."""
    early = [row["episode_return"] for row in rows if _has(row, "episode_return")][: max(3, SMOOTH)]
    spread = statistics.pstdev(early) if len(early) > 1 else 0.0
    return max(IMPROVEMENT * abs(start), 2 * spread, 1e-9)
