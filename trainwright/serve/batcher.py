"""Requests that arrive together share one forward pass.

Each request puts its model inputs (n, ...) on a queue and awaits its outputs. One task takes
the first waiting request, gathers more for up to ``wait_s`` or until ``max_rows`` rows, stacks
them (B, ...), runs the model once in a worker thread (so the event loop keeps accepting
requests meanwhile) and hands each request its own slice of the outputs.

Example:
    >>> batcher = Batcher(predictor.outputs, max_rows=256, wait_s=0.002)
    >>> await batcher.start()
    >>> outputs = await batcher(x)     # (n, outputs), computed in a batch with its neighbours
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np


class Batcher:
    def __init__(self, run: Callable[[np.ndarray], np.ndarray], max_rows: int = 256, wait_s: float = 0.002):
        self.run, self.max_rows, self.wait_s = run, max_rows, wait_s
        self.batches = 0  # forward passes run
        self.requests = 0  # requests answered
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="trainwright-forward")  # one forward pass at a time
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

    async def __call__(self, x: np.ndarray) -> np.ndarray:
        """The model's outputs (n, outputs) for inputs ``x`` (n, ...)."""
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((x, future))
        return await future

    async def _gather(self) -> list[tuple[np.ndarray, asyncio.Future]]:
        loop = asyncio.get_running_loop()
        items = [await self._queue.get()]
        rows, deadline = len(items[0][0]), loop.time() + self.wait_s
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
            rows += len(item[0])
        return items

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._gather()
            items = [(x, future) for x, future in items if not future.cancelled()]  # the client went away
            if not items:
                continue
            try:
                outputs = await loop.run_in_executor(self._executor, self.run, np.concatenate([x for x, _ in items]))
            except Exception as error:  # noqa: BLE001 - every waiting request gets the failure, the loop goes on
                for _, future in items:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.batches += 1
            ends = np.cumsum([len(x) for x, _ in items])
            for (_, future), start, end in zip(items, [0, *ends[:-1]], ends):
                if not future.done():
                    future.set_result(outputs[start:end])
                    self.requests += 1
