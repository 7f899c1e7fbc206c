"""Background: a function called in a forked child, its result (or its error) read in the parent."""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
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


WORKS = forks() and cores() > 1  # where a Worker forks (Linux, two or more cores); elsewhere its jobs run here


def test_later_prepares_at_once_and_runs_when_its_arguments_are_sent():
    worker = Worker()
    try:
        job = Later(add_pid, np.arange(3), prepare=time.time, worker=worker)
        assert job.forked == WORKS
        job.send(os.getpid())
        value, elsewhere = job.result()
        assert value.tolist() == [1, 2, 3] and elsewhere == WORKS
    finally:
        worker.close()
    here = Later(add_pid, 41)
    assert not here.forked
    here.send(os.getpid())
    assert here.result() == (42, False)


def test_later_does_the_work_here_when_its_worker_died_or_is_cancelled():
    worker = Worker()
    try:
        job = Later(add_pid, prepare=functools.partial(die_in_child, os.getpid()), worker=worker)  # before the arguments
        time.sleep(0.2)
        job.send(1, os.getpid())
        assert job.result() == (2, False)
        cancelled = Later(add_pid, worker=worker)
        cancelled.cancel()
    finally:
        worker.close()
    assert multiprocessing.active_children() == []


class Unpicklable:
    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows

    def __reduce__(self):
        raise TypeError("sent whole: pickled")


def sum_rows_and_pid(shared: Unpicklable, extra: int) -> tuple[int, int]:
    return int(shared.rows.sum()) + extra, os.getpid()


@pytest.mark.skipif(not WORKS, reason="a worker forks, on Linux with two or more cores")
def test_a_worker_has_its_shared_object_by_the_fork_not_pickled():
    shared = Unpicklable(np.arange(10))
    worker = Worker(shared=shared)
    try:
        job = worker.submit(sum_rows_and_pid, shared, 1)
        assert job.forked and job.result() == (46, worker._process.pid)
        other = worker.submit(sum_rows_and_pid, Unpicklable(np.arange(3)), 0)  # not the shared one: it must pickle
        assert not other.forked and other.result() == (3, os.getpid())
    finally:
        worker.close()


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


def zeros(n: int) -> np.ndarray:
    return np.zeros(n)


@pytest.mark.skipif(not WORKS, reason="a worker forks, on Linux with two or more cores")
def test_big_results_left_unread_do_not_stop_a_big_job_being_sent():
    # Results and a job each bigger than a pipe's buffer (64 KB): the worker must keep reading jobs while its
    # results wait for the parent, which sends before it reads (finish sends the outputs, then asks for scores).
    worker = Worker()
    try:
        unread = [worker.submit(zeros, 200_000) for _ in range(2)]  # 1.6 MB each
        sending = threading.Thread(target=lambda: worker.submit(double, np.ones(200_000)), daemon=True)
        sending.start()
        sending.join(timeout=60)
        assert not sending.is_alive(), "deadlock: the worker stopped reading jobs while its results waited"
        assert [len(job.result()) for job in unread] == [200_000, 200_000]
    finally:
        worker.close()


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


def doubled_in_children(values: list[int]) -> list[tuple[int, int]]:
    """Each value doubled in a forked child of this process (a worker's job: the report's sections), with its pid."""
    jobs = [Background(double_with_pid, value) for value in values]
    return [job.result() for job in jobs]


def double_with_pid(value: int) -> tuple[int, int]:
    return 2 * value, os.getpid()


@pytest.mark.skipif(not WORKS, reason="a worker forks, on Linux with two or more cores")
def test_a_workers_job_may_fork_children_of_its_own():
    worker = Worker()
    try:
        worker_pid = worker.submit(os.getpid).result()
        results = worker.submit(doubled_in_children, [1, 2, 3]).result()
    finally:
        worker.close()
    assert [value for value, _ in results] == [2, 4, 6]
    pids = {pid for _, pid in results}
    assert len(pids) == 3 and not pids & {worker_pid, os.getpid()}  # three children of the worker's own
    assert multiprocessing.active_children() == []


@pytest.mark.skipif(not forks(), reason="a child forks on Linux")
def test_a_child_can_be_given_a_lower_priority():
    child = Background(slow_pid, 1.0)
    try:
        child.yield_to(5)
        assert os.getpriority(os.PRIO_PROCESS, child._process.pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 5)
    finally:
        child.cancel()
