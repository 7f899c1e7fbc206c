"""Background: a function called in a forked child, its result (or its error) read in the parent."""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from trainwright.background import WORKER_ENV, Background, Later, Worker, claim_worker, cores, forks, idle_core, start_worker
from trainwright.errors import TrainwrightError


def double(x):
    return 2 * x


def refuse():
    raise TrainwrightError("column 'price' holds text")


def die_in_child(parent: int) -> int:
    if os.getpid() != parent:
        os._exit(3)  # killed, out of memory, ...: no result comes back
    return parent


def test_a_forked_call_returns_what_a_call_here_returns():
    job = Background(double, np.arange(3))
    assert job.forked == forks()
    assert job.result().tolist() == [0, 2, 4]
    assert job.result().tolist() == [0, 2, 4]  # read again: the same value, nothing run twice
    here = Background(double, 21, fork=False)
    assert not here.forked and not here.ready()  # work not forked waits until its result is asked for
    assert here.result() == 42


def test_an_error_in_the_child_is_raised_where_the_result_is_read():
    job = Background(refuse)
    with pytest.raises(TrainwrightError, match="column 'price' holds text"):
        job.result()


@pytest.mark.skipif(not forks(), reason="processes fork on Linux only")
def test_a_child_that_dies_is_replaced_by_the_call_here():
    job = Background(die_in_child, os.getpid())
    assert job.forked
    assert job.result() == os.getpid()  # computed in this process instead


@pytest.mark.skipif(not forks(), reason="processes fork on Linux only")
def test_cancel_stops_a_running_child():
    job = Background(time.sleep, 60)
    process = job._process
    started = time.perf_counter()
    job.cancel()
    assert time.perf_counter() - started < 10
    assert not process.is_alive() and process.exitcode is not None


def add_pid(x, parent: int):
    return x + 1, os.getpid() != parent


def test_later_prepares_at_once_and_runs_when_its_arguments_are_sent():
    job = Later(add_pid, prepare=time.time)
    assert job.forked == forks()
    job.send(np.arange(3), os.getpid())
    value, elsewhere = job.result()
    assert value.tolist() == [1, 2, 3] and elsewhere == forks()
    here = Later(add_pid, fork=False)
    here.send(41, os.getpid())
    assert here.result() == (42, False)


def test_later_does_the_work_here_when_its_child_died_or_is_cancelled():
    job = Later(add_pid, prepare=functools.partial(die_in_child, os.getpid()))  # before the arguments come
    time.sleep(0.2)
    job.send(1, os.getpid())
    assert job.result() == (2, False)
    cancelled = Later(add_pid)
    cancelled.cancel()
    assert multiprocessing.active_children() == []


def parallel_sum() -> float:
    return float(torch.ones(4_000_000).add(1).sum())  # elementwise work big enough for torch's OpenMP pool


@pytest.mark.skipif(not forks(), reason="fork is Linux's")
def test_a_child_runs_torch_after_the_parent_used_its_openmp_pool():
    # The parent's pool does not survive a fork; a child that entered it waited forever (the report's
    # evaluation child hung a run this way). Children run on one thread unless asked.
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        parallel_sum()  # the parent enters a parallel region on 2 threads
        job = Background(parallel_sum)
        deadline = time.monotonic() + 60
        while not job.ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job.ready(), "the child hung in torch's OpenMP pool"
        assert job.result() == 8_000_000.0
    finally:
        torch.set_num_threads(threads)


def slow_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


@pytest.mark.skipif(not forks() or cores() < 2, reason="a worker forks, on Linux with two or more cores")
def test_a_worker_runs_jobs_in_order_and_each_result_reaches_its_own_job():
    worker = Worker("csv:DictReader")  # prepare: any "module:function" (here one that loads csv)
    try:
        first, second = worker.submit(slow_pid, 0.2), worker.submit(double, np.arange(3))
        failing = worker.submit(refuse)
        assert second.result().tolist() == [0, 2, 4]  # read before the first: both kept, each its own
        assert first.result() == worker._process.pid != os.getpid()
        with pytest.raises(TrainwrightError, match="column 'price' holds text"):
            failing.result()
        unpicklable = worker.submit(double, 21, callback=lambda: None)  # a lambda does not pickle: runs here
        assert not unpicklable.forked
        with pytest.raises(TypeError):
            unpicklable.result()  # double() takes no callback, and says so here
    finally:
        worker.close()
    assert not worker.alive and multiprocessing.active_children() == []


@pytest.mark.skipif(not forks() or cores() < 2, reason="a worker forks, on Linux with two or more cores")
def test_jobs_of_a_worker_that_died_run_here():
    worker = Worker()
    job = worker.submit(die_in_child, os.getpid())
    later = worker.submit(double, 4)
    assert job.result() == os.getpid()  # the worker died on it: computed in this process instead
    assert later.result() == 8 and not worker.alive
    assert worker.submit(double, 5).result() == 10  # after its death, jobs run here when asked


def test_claim_worker_hands_the_started_worker_to_its_first_caller_only(monkeypatch):
    monkeypatch.setenv(WORKER_ENV, "1")
    start_worker()
    worker = claim_worker()
    try:
        assert (worker is not None) == (forks() and cores() > 1)
        assert claim_worker() is None
    finally:
        if worker is not None:
            worker.close()
    monkeypatch.setenv(WORKER_ENV, "0")
    assert not idle_core()


@pytest.mark.skipif(not forks() or cores() < 2, reason="a worker forks, on Linux with two or more cores")
def test_a_worker_does_not_outlive_a_killed_parent():
    script = ("import os, signal\nfrom trainwright.background import Worker\n"
              "worker = Worker()\nprint(worker._process.pid, flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n")
    parent = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert parent.returncode == -signal.SIGKILL
    pid = int(parent.stdout.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}") and "Z" not in _state(pid):
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}") or "Z" in _state(pid), "the worker outlived its killed parent"


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
