"""A run's history as rows: the loop's metrics and the episodes that ended, with each evaluation beside them.

``History`` is an observer. After each update it folds the update's metrics (entropy, value loss,
explained variance, learning rate, epsilon, ...) and the episodes that ended into the open row; the
row closes every ``every`` updates (so a run of any length has at most about ``max_rows`` rows),
whenever an evaluation ran (its mean and std go into that row) and when training ends. A row's
metrics are means over its updates; ``episode_return`` is the mean return of the training episodes
that ended in it (NaN when none did). Its state is part of a checkpoint, so a resumed run's
history is the same as an uninterrupted one's.

Example:
    >>> history = History(evaluator, planned=390)
    >>> PPO(config).train([evaluator, history])
    >>> history.rows[-1]["env_steps"], history.rows[-1]["eval_return"]
    (99840, 500.0)
"""

from __future__ import annotations

import math
from typing import Any

from trainwright.rl.agent import Agent, Observer, Progress
from trainwright.rl.evaluation import Evaluator

NAN = float("nan")


class History(Observer):
    """Rows of the run's history (``rows``), closed every ``every`` updates, at each evaluation and at the end."""

    def __init__(self, evaluator: Evaluator, planned: int, max_rows: int = 500):
        self.evaluator = evaluator
        self.every = max(1, math.ceil(planned / max_rows))
        self.rows: list[dict[str, float]] = []
        self.attached = len(evaluator.history)  # evaluations already in a row
        self._clear()

    def _clear(self) -> None:
        self.updates = 0
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.returns: list[float] = []
        self.lengths: list[int] = []
        self.last: dict[str, float] = {}

    def on_update(self, agent: Agent, progress: Progress) -> None:
        self.updates += 1
        for key, value in progress.metrics.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + 1
        self.returns += progress.episode_returns
        self.lengths += progress.episode_lengths
        self.last = {"update": progress.updates, "env_steps": progress.env_steps, "seconds": progress.seconds}
        if self.updates >= self.every or len(self.evaluator.history) > self.attached:
            self._close()

    def on_train_end(self, agent: Agent) -> None:
        if self.updates:
            self._close()
        elif len(self.evaluator.history) > self.attached and self.rows:  # the final evaluation, after the last row
            self.rows[-1].update(self._evaluation())

    def _close(self) -> None:
        row: dict[str, float] = {
            **self.last,
            "episodes": len(self.returns),
            "episode_return": sum(self.returns) / len(self.returns) if self.returns else NAN,
            "episode_length": sum(self.lengths) / len(self.lengths) if self.lengths else NAN,
        }
        row.update({key: total / self.counts[key] for key, total in self.sums.items()})
        row.update(self._evaluation())
        self.rows.append(row)
        self._clear()

    def _evaluation(self) -> dict[str, float]:
        """The evaluation that ran since the last row (the latest, if several), or NaN."""
        if len(self.evaluator.history) == self.attached:
            return {"eval_return": NAN, "eval_std": NAN}
        self.attached = len(self.evaluator.history)
        latest = self.evaluator.history[-1]
        return {"eval_return": latest["mean"], "eval_std": latest["std"]}

    def columns(self) -> list[str]:
        """Every key any row has, in the order they first appear (a DQN logs its loss only once it learns), evaluations last."""
        keys = list(dict.fromkeys(key for row in self.rows for key in row))
        return [key for key in keys if not key.startswith("eval_")] + [key for key in keys if key.startswith("eval_")]

    def state_dict(self) -> dict[str, Any]:
        return {
            "rows": [dict(row) for row in self.rows], "attached": self.attached, "updates": self.updates,
            "sums": dict(self.sums), "counts": dict(self.counts), "returns": list(self.returns),
            "lengths": list(self.lengths), "last": dict(self.last),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = [dict(row) for row in state["rows"]]
        self.attached, self.updates = state["attached"], state["updates"]
        self.sums, self.counts = dict(state["sums"]), dict(state["counts"])
        self.returns, self.lengths, self.last = list(state["returns"]), list(state["lengths"]), dict(state["last"])
