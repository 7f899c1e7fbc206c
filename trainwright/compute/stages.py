"""Where a run's wall time went, stage by stage: ``metrics.json["compute"]["stages"]``.

A run records how long its data stage, estimate, setup, fit, evaluation and the wait for the
classical baselines took (wall seconds, in the order they ran), and when it started (unix time),
so a whole-process benchmark can tell the imports before the run from the stages after it.

Example:
    >>> stages = Stages()
    >>> with stages.time("data"):
    ...     data = prepare_data(cfg.data)
    >>> stages.seconds
    {'data': 0.41}
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Stages:
    def __init__(self) -> None:
        self.started_at = time.time()  # unix time: what ran before this (start-up, imports) is outside the stages
        self.seconds: dict[str, float] = {}

    @contextmanager
    def time(self, name: str) -> Iterator[None]:
        """Add the wall seconds of the ``with`` block to stage ``name``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
