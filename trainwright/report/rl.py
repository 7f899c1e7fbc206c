"""The report of a reinforcement-learning run, from its run directory alone.

What the RL recipe wrote (``env.json``, ``model.json``, ``history.csv``, ``metrics.json``,
``episode.gif``, ``seeds.json`` when several seeds ran, ``diagnosis.json``) becomes one HTML file:
the environment, the policy's networks, episodic return (training and evaluation) against
environment steps, entropy, value loss, explained variance and learning rate (DQN: Q loss, mean
Q-value and epsilon), the rendered episode, the final evaluation and, over several seeds, the
interquartile mean with its bootstrap interval. Plots skip what a run did not record; an
unfinished run gets a report of what happened.

Example:
    >>> render_rl_report(RunDir.open("runs/CartPole-v1-ppo-20260101-120000"))[:15]
    '<!DOCTYPE html>'
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import yaml

from trainwright.evaluate.diagnose_rl import read_rl_history
from trainwright.evaluate.figures import new_figure, png_bytes
from trainwright.rundir import RunDir
from trainwright.runs import diagnose_run

TRAIN, EVAL, BEST, MARK = "#1f77b4", "#ff7f0e", "#2ca02c", "#6c757d"

# (column, title, y label, log scale) of the curves under the returns, in the order shown
CURVES = (
    ("entropy", "Policy entropy", "entropy (nats)", False),
    ("action_std", "Action standard deviation", "std", False),
    ("value_loss", "Value loss", "mean squared error", True),
    ("q_loss", "Q loss", "Huber loss", True),
    ("explained_variance", "Explained variance of the returns by the critic", "explained variance", False),
    ("q_mean", "Mean Q-value of the replayed actions", "Q", False),
    ("epsilon", "Exploration (epsilon)", "epsilon", False),
    ("lr", "Learning rate", "learning rate", False),
    ("approx_kl", "Approximate KL between successive policies", "KL", True),
    ("clip_fraction", "Share of clipped ratios", "share", False),
)


def render_rl_report(run: RunDir, templates: jinja2.Environment) -> str:
    return templates.get_template("rl_report.html.j2").render(**rl_report_context(run))


def rl_report_context(run: RunDir) -> dict[str, Any]:
    """Everything the RL template shows, read from the run directory."""
    config = yaml.safe_load(run.config.read_text(encoding="utf-8")) or {}
    env, model, metrics, environment = (_json(run, path) for path in (run.env_info, run.model_info, run.metrics, run.environment))
    seeds = _json(run, run.seeds)
    rows = read_rl_history(run.history)
    diagnosis = _json(run, run.diagnosis)
    findings = diagnosis["findings"] if diagnosis is not None else diagnose_run(run.path)
    algo = (config.get("algo") or {}).get("name", "")
    threshold = (env or {}).get("reward_threshold")
    return {
        "name": run.path.name,
        "algo": algo,
        "env": env or {"id": (config.get("env") or {}).get("id", "-")},
        "model": model,
        "metrics": metrics,
        "environment": environment or {},
        "status": _status(metrics, rows, config),
        "returns_plot": returns_plot(rows, threshold, (metrics or {}).get("best")) if rows else None,
        "curves": [
            (title, series_plot(rows, key, title, label, log)) for key, title, label, log in CURVES if _recorded(rows, key)
        ],
        "episode": _gif(run.episode),
        "evaluations": [row for row in rows if _finite(row.get("eval_return"))],
        "seeds": seeds,
        "compute": (metrics or {}).get("compute") or {},
        "findings": findings,
        "config_text": run.config.read_text(encoding="utf-8"),
        "rows": len(rows),
    }


def _json(run: RunDir, path: Path) -> Any:
    return run.read_json(path) if path.is_file() else None


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _recorded(rows: list[dict], key: str) -> bool:
    return any(_finite(row.get(key)) for row in rows)


def _status(metrics: dict | None, rows: list[dict], config: dict) -> str:
    budget = (config.get("algo") or {}).get("steps")
    if metrics is not None:
        best = metrics.get("best") or {}
        return (
            f"finished: {metrics['env_steps']:,} env steps in {metrics['updates']:,} updates; "
            f"kept policy from step {best.get('env_steps', 0):,}"
        )
    done = f"after {int(rows[-1]['env_steps']):,} of {budget:,} env steps" if rows and budget else "before its first update"
    return f"did not finish: training failed or was interrupted {done} (resume it with trainwright train --resume)"


def _gif(path: Path) -> str | None:
    return "data:image/gif;base64," + base64.b64encode(path.read_bytes()).decode("ascii") if path.is_file() else None


# ── figures ────────────────────────────────────────────────────────────────────────────
def returns_plot(rows: list[dict], threshold: float | None, best: dict | None) -> str:
    """Episodic return against env steps: each row's training episodes (mean, and a moving mean), the
    evaluations (mean and +- one std), the kept policy's evaluation and the solved level."""
    fig = new_figure(9.6, 4.0)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.91)
    ax = fig.add_subplot()
    train = [(row["env_steps"], row["episode_return"]) for row in rows if _finite(row.get("episode_return"))]
    if train:
        steps, values = np.array(train).T
        ax.plot(steps, values, color=TRAIN, alpha=0.3, linewidth=0.8)
        window = min(10, len(values))
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1 :], smooth, color=TRAIN, label=f"training episodes (moving mean of {window} rows)")
    evals = [(row["env_steps"], row["eval_return"], row.get("eval_std", 0.0)) for row in rows if _finite(row.get("eval_return"))]
    if evals:
        steps, means, stds = np.array(evals, dtype=float).T
        stds = np.nan_to_num(stds)
        ax.plot(steps, means, color=EVAL, marker="o", markersize=3, label="evaluation (mean, +- std)")
        ax.fill_between(steps, means - stds, means + stds, color=EVAL, alpha=0.15, linewidth=0)
    if best and _finite(best.get("eval_return")):
        ax.plot(
            [best["env_steps"]],
            [best["eval_return"]],
            marker="*",
            markersize=14,
            color=BEST,
            linestyle="none",
            label=f"kept policy (step {best['env_steps']:,})",
        )
    if threshold is not None:
        ax.axhline(threshold, color=MARK, linestyle="--", linewidth=1, label=f"solved ({threshold:g})")
    ax.set(xlabel="environment steps", ylabel="episodic return", title="Episodic return")
    ax.xaxis.set_major_formatter(_thousands())
    ax.legend(fontsize="small", loc="best")
    return _uri(fig)


def series_plot(rows: list[dict], key: str, title: str, label: str, log: bool) -> str:
    fig = new_figure(6.4, 3.0)
    fig.subplots_adjust(left=0.16, right=0.97, bottom=0.17, top=0.89)
    ax = fig.add_subplot()
    points = [(row["env_steps"], row[key]) for row in rows if _finite(row.get(key))]
    steps, values = np.array(points).T
    ax.plot(steps, values, color=TRAIN, linewidth=1)
    positive = values[values > 0]
    if log and len(positive) == len(values) and values.max() / values.min() > 50:
        ax.set_yscale("log")
    elif key == "lr":
        ax.ticklabel_format(axis="y", useOffset=False)
    ax.set(xlabel="environment steps", ylabel=label, title=title)
    ax.xaxis.set_major_formatter(_thousands())
    return _uri(fig)


def _thousands():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _: f"{value / 1000:g}k" if abs(value) >= 1000 else f"{value:g}")


def _uri(fig) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(fig)).decode("ascii")
