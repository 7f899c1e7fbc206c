"""A tracking worker process, fed JSON lines through a pipe that never blocks the training thread.

Logging libraries take the GIL for their work, and a thread of their own in the training process wakes
for each event it is handed: on an overhead-bound loop that costs about a millisecond an event (measured:
TensorBoard's writer thread took 8 ms of each 80 ms epoch of the digits MLP). So each tracker's library
runs in a worker process (``mlflow_worker.py``, ``tensorboard_worker.py``, run as scripts: they import
neither trainwright nor torch) at the lowest CPU priority, and the training thread only writes a line
per epoch to a non-blocking pipe (what the pipe cannot take yet waits in memory for the next call).

The worker is started only after ``QUIET`` seconds of training, or when training ends (``hurry``), or
at this process's exit: until then its jobs wait in memory. A worker started at once imported MLflow
(seconds of CPU) and woke for each write during the fit, on the core the training's second thread uses:
the digits MLP's 30-epoch fit (a third of a second on a quiet machine) took a quarter longer with
tracking on. A run shorter than ``QUIET`` logs everything when it ends; a longer one logs live from then.

The protocol: each job ``{"id": n, "kind": ..., ...}`` is answered ``{"done": [ids], "sent": bool}`` (an
answer may carry more, e.g. MLflow's ``run_id``); a worker's first error comes once as ``{"failure": "..."}``
and every later job is answered unsent. At the end of its input the worker finishes and exits.

Example:
    >>> pipe = WorkerPipe(Path(__file__).with_name("mlflow_worker.py"))
    >>> pipe.put("metrics", "epoch 1", values={"val_loss": 0.3}, step=1, timestamp=0)   # returns at once
    >>> pipe.close(timeout=60)   # waits while the worker makes progress; pipe.unsent says what it could not do
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

INTERVAL = 2.0  # seconds: jobs handed over meanwhile go to the worker together
QUIET = 60.0  # seconds of training before the worker is started (sooner: when training ends)


class WorkerPipe:
    """The worker process ``script`` and the jobs handed to it, each described in words (``what``).

    Jobs go down the pipe at most every ``INTERVAL`` seconds (and at ``flush``): each write wakes the
    worker, and on a busy machine a woken process can take the CPU from the training process for the
    milliseconds its work takes (measured: 4 ms an epoch when every epoch woke the TensorBoard worker).
    """

    def __init__(self, script: Path, quiet: float = QUIET):
        self.script = script
        self.process: subprocess.Popen | None = None  # started by the first ``pump``
        self.closed = False
        self.jobs: list[str] = []  # what each job carries, by id ("" for work that sends nothing of the run's)
        self.answered: set[int] = set()
        self.unsent: list[str] = []  # what the worker could not do, in words
        self.failure: str | None = None  # its first error
        self.latest: dict[str, Any] = {}  # the last value of each extra key in the answers (e.g. run_id)
        self.progress = time.monotonic()  # when the worker last answered
        self.outbox, self.inbox = bytearray(), bytearray()
        self.quiet_until = time.monotonic() + quiet  # nothing goes to the worker before (unless training ends)
        self.training = True  # until ``hurry``, ``close`` or this process's exit
        self.written = -INTERVAL  # when jobs last went down the pipe: the first one goes at once
        atexit.register(self.abandon)

    def _start(self) -> subprocess.Popen:
        """The worker process; at the lowest CPU priority while the run still trains (``--low``)."""
        low = ["--low"] if self.training else []
        # No stderr: workers report through their answers, and their libraries' log lines are not the user's business.
        process = subprocess.Popen(
            [sys.executable, str(self.script), *low], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            bufsize=0, start_new_session=True,  # its own scheduling group (see the workers' priority); Ctrl-C does not reach it
        )
        os.set_blocking(process.stdin.fileno(), False)  # a full pipe must never block a training step
        os.set_blocking(process.stdout.fileno(), False)
        self.progress = time.monotonic()
        return process

    def put(self, kind: str, what: str, **payload: Any) -> None:
        """Hand the worker a job; returns at once (it goes down the pipe with the next write)."""
        if self.closed:
            return
        self.outbox += (json.dumps({"id": len(self.jobs), "kind": kind, **payload}) + "\n").encode()
        self.jobs.append(what)
        now = time.monotonic()
        if now >= self.quiet_until and now - self.written >= INTERVAL:
            self.pump()

    def hurry(self) -> None:
        """Training is over: the worker takes its usual CPU share (where it may) and gets what waits now."""
        if self.closed:
            return
        self.quiet_until, self.training = 0.0, False
        self.put("hurry", "")
        self.pump()

    def pump(self, wait: float = 0.0) -> bool:
        """Write what the pipe takes, read what the worker answered (waiting at most ``wait`` s); False once it is gone."""
        if self.process is None:
            self.process = self._start()
        process, self.written = self.process, time.monotonic()
        try:
            while self.outbox:
                written = os.write(process.stdin.fileno(), self.outbox)
                del self.outbox[:written]
        except BlockingIOError:
            pass  # the pipe is full: the rest goes with a later call
        except BrokenPipeError:
            return self._gone()
        if wait and not select.select([process.stdout], [], [], wait)[0]:
            return True
        return self._read(process) or self._gone()

    def _read(self, process: subprocess.Popen, until_end: bool = False) -> bool:
        """Take the answers waiting in the pipe; False at its end (the worker exited)."""
        while True:
            try:
                chunk = os.read(process.stdout.fileno(), 1 << 16)
            except BlockingIOError:
                if until_end and select.select([process.stdout], [], [], 1.0)[0]:
                    continue
                return True
            if not chunk:
                return False
            self.inbox += chunk
            *lines, rest = self.inbox.split(b"\n")
            self.inbox = bytearray(rest)
            for line in lines:
                self._take(json.loads(line))

    def close(self, timeout: float) -> None:
        """Wait while the worker makes progress (at most ``timeout`` s without an answer), then end its input;
        what it did not do is added to ``unsent``."""
        if self.closed:
            return
        self.quiet_until, self.training = 0.0, False
        if self.process is None:
            self.pump()  # started now: the jobs go to it
        self.progress = time.monotonic()
        while len(self.answered) < len(self.jobs) and time.monotonic() - self.progress < timeout:
            if not self.pump(wait=0.05):
                break  # the worker is gone
        process, self.closed = self.process, True
        atexit.unregister(self.abandon)
        process.stdin.close()  # the worker's input ends: it finishes and exits
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # stuck (on a server): what it still holds is not done
            process.kill()
            process.wait()
        self._read(process, until_end=True)  # answers it gave before it exited
        if len(self.answered) < len(self.jobs):
            self.failure = self.failure or f"no answer within {timeout:g} s"
        process.stdout.close()
        self.unsent += [what for i, what in enumerate(self.jobs) if i not in self.answered and what]

    def abandon(self) -> None:
        """At this process's exit, when ``close`` never came (an error, Ctrl-C, a finish step that never ran): the
        worker gets what waits and the end of its input, and finishes on its own (MLflow's run ends as FAILED)."""
        if self.closed or not self.jobs:
            return
        try:
            if self.process is None:
                self.quiet_until, self.training = 0.0, False
                self.process = self._start()
            if not self.process.stdin.closed:
                os.set_blocking(self.process.stdin.fileno(), True)
                while self.outbox:
                    del self.outbox[: os.write(self.process.stdin.fileno(), self.outbox)]
                self.process.stdin.close()
        except (OSError, ValueError):
            pass  # the worker is gone: nobody is left to tell

    def _take(self, answer: dict) -> None:
        if "failure" in answer:
            self.failure = self.failure or answer["failure"]
            return
        self.progress = time.monotonic()
        for i in answer.pop("done"):
            self.answered.add(i)
            if not answer["sent"] and self.jobs[i]:
                self.unsent.append(self.jobs[i])
        self.latest.update(answer)

    def _gone(self) -> bool:
        self.failure = self.failure or f"the worker process stopped (exit code {self.process.poll()})"
        return False
