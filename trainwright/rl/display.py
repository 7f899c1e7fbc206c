"""What a run shows while it trains: a progress bar in a terminal, a line every few seconds elsewhere.

In a terminal: a bar over the env-step budget with the recent training return, the last evaluation,
the best one and the time left. Off a terminal (a log file, CI, a pipe): one plain line every
``every`` seconds and one at the end, so a log shows progress without a line per update.

Example:
    >>> agent.train([evaluator, ProgressDisplay(console, evaluator, total_steps=100_000)])
    steps 20,480/99,840 (21%)  update 80  return 131.2  eval 201.4 (best 201.4 at 20,000)  6,012 steps/s  13 s
"""

from __future__ import annotations

import time
from collections import deque

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as Bar

from trainwright.rl.agent import Agent, Observer, Progress
from trainwright.rl.evaluation import Evaluator


class ProgressDisplay(Observer):
    """Shows env steps against the budget, the training return (mean of the last 20 episodes) and the evaluations."""

    def __init__(self, console: Console, evaluator: Evaluator, total_steps: int, every: float = 10.0):
        self.console, self.evaluator, self.total, self.every = console, evaluator, total_steps, every
        self.recent: deque[float] = deque(maxlen=20)
        self.bar: Bar | None = None
        self.last_line = time.monotonic()
        self.latest: Progress | None = None

    def on_train_begin(self, agent: Agent) -> None:
        self.last_line = time.monotonic()
        if self.console.is_terminal:
            self.bar = Bar(
                TextColumn("env steps"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=False,
            )
            self.bar.start()
            self.task = self.bar.add_task("steps", total=self.total, completed=agent.env_steps, status="")

    def on_update(self, agent: Agent, progress: Progress) -> None:
        self.recent.extend(progress.episode_returns)
        self.latest = progress
        if self.bar is not None:
            self.bar.update(self.task, completed=progress.env_steps, status=self.status(progress, short=True))
        elif time.monotonic() - self.last_line >= self.every:
            self.print_line(progress)

    def on_train_end(self, agent: Agent) -> None:
        if self.bar is not None:
            if self.latest is not None:
                self.bar.update(self.task, completed=self.latest.env_steps, status=self.status(self.latest, short=True))
            self.close()
        elif self.latest is not None:
            self.print_line(self.latest)

    def print_line(self, progress: Progress) -> None:
        share = progress.env_steps / self.total if self.total else 1.0
        self.console.print(
            f"steps {progress.env_steps:,}/{self.total:,} ({share:.0%})  update {progress.updates}  {self.status(progress)}",
            highlight=False, soft_wrap=True,
        )
        self.last_line = time.monotonic()

    def status(self, progress: Progress, short: bool = False) -> str:
        parts = [f"return {sum(self.recent) / len(self.recent):.1f}" if self.recent else "return -"]
        history = self.evaluator.history
        if history:
            best = self.evaluator.best_return
            parts.append(f"eval {history[-1]['mean']:.1f} (best {best:.1f} at {self.evaluator.best_env_steps:,})")
        if not short:
            parts.append(f"{progress.steps_per_second:,.0f} steps/s  {progress.seconds:.0f} s")
        return "  ".join(parts)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
