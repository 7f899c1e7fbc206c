"""Requests that arrive together are answered by one pass through the model (and its preprocessing).

Each request puts a job (its rows, or its model inputs) on a queue and awaits its answer. One
task takes the first waiting job, gathers more for up to ``wait_s`` or until ``max_rows`` rows,
and runs them all in one call in a worker thread (so the event loop keeps accepting requests):
``run(jobs) -> answers``, one answer per job, an exception for a job that failed alone.

Two runners: ``rows_runner`` for tables and text, whose preprocessing is row by row, runs the
whole ``predict`` (preprocessing, model, probabilities) once on the rows of every request: a
table's scikit-learn preprocessing costs about as much for one row as for hundreds, so this is
where batching pays. ``inputs_runner`` for images and series (decoded or windowed per request)
stacks their model inputs (B, ...) for one forward pass.

Example:
    >>> batcher = Batcher(rows_runner(predictor), max_rows=256, wait_s=0.002)
    >>> await batcher.start()
    >>> answer = await batcher(frame, len(frame))   # predict's frame for these rows
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd


class Batcher:
    def __init__(self, run: Callable[[list[Any]], list[Any]], max_rows: int = 256, wait_s: float = 0.002):
        self.run, self.max_rows, self.wait_s = run, max_rows, wait_s
        self.batches = 0  # calls of run
        self.requests = 0  # jobs answered
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="trainwright-batch")  # one batch at a time
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def __call__(self, job: Any, rows: int) -> Any:
        """The answer to ``job`` (``rows`` rows), computed in one batch with its neighbours."""
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((job, rows, future))
        return await future

    async def _gather(self) -> list[tuple[Any, int, asyncio.Future]]:
        loop = asyncio.get_running_loop()
        items = [await self._queue.get()]
        rows, deadline = items[0][1], loop.time() + self.wait_s
        while rows < self.max_rows:
            try:
                item = self._queue.get_nowait()  # already waiting: no need to sleep for it
            except asyncio.QueueEmpty:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), left)
                except asyncio.TimeoutError:
                    break
            items.append(item)
            rows += item[1]
        return items

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [item for item in await self._gather() if not item[2].cancelled()]  # clients that went away
            if not items:
                continue
            try:
                answers = await loop.run_in_executor(self._executor, self.run, [job for job, _, _ in items])
            except Exception as error:  # noqa: BLE001 - a runner that fails as a whole fails every job, the loop goes on
                answers = [error] * len(items)
            self.batches += 1
            for (_, _, future), answer in zip(items, answers):
                if future.done():
                    continue
                if isinstance(answer, BaseException):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)
                    self.requests += 1


def rows_runner(predictor) -> Callable[[list[pd.DataFrame]], list]:
    """Tables and text: ``predict`` once on every job's rows, then each job its own rows and columns."""

    def alone(frame: pd.DataFrame) -> Any:
        try:
            return predictor.predict(frame)
        except Exception as error:  # noqa: BLE001 - handed to that request alone
            return error

    def run(frames: list[pd.DataFrame]) -> list:
        if len(frames) == 1:
            return [alone(frames[0])]
        rows = pd.concat(frames, ignore_index=True)
        try:
            result = predictor.predict(rows)
        except Exception:  # noqa: BLE001 - one request's bad rows must not fail the others: answer each alone
            return [alone(frame) for frame in frames]
        added = [column for column in result.columns if column not in rows.columns]  # prediction, probability_*
        ends = np.cumsum([len(frame) for frame in frames])
        return [result.iloc[start:end][[*frame.columns, *added]].reset_index(drop=True)
                for frame, start, end in zip(frames, [0, *ends[:-1]], ends)]

    return run


def inputs_runner(predictor) -> Callable[[list[np.ndarray]], list]:
    """Images and series: one forward pass on every job's stacked inputs (B, ...), each job its slice."""

    def run(inputs: list[np.ndarray]) -> list:
        outputs = predictor.outputs(np.concatenate(inputs))
        ends = np.cumsum([len(x) for x in inputs])
        return [outputs[start:end] for start, end in zip([0, *ends[:-1]], ends)]

    return run
