"""Work beside the main process: a function called in a forked child process, its result read later.

The report draws its figures in children while the main process reads the rest; ``train`` hands the
classical baselines, the preprocessor's files and the scoring of its outputs to one ``Worker`` (below)
as soon as the data are prepared, so they are ready by the time the network is. A forked child
starts with everything the parent has imported and built: the data are not copied or pickled, torch
and scikit-learn are not imported again, and starting one takes milliseconds. Only the result
travels back (pickled, through a pipe).

Fork is used on Linux only (where it is Python's long-standing default; macOS and Windows spawn
a fresh interpreter instead). Elsewhere, or when the child dies (killed, out of memory), the
function runs in the process itself when its result is asked for, as it would without this
module, so results never depend on where they were computed.

A ``Worker`` is one process that runs the jobs sent to it one after the other (so it never takes more
than one core), their arguments and results pickled through pipes. The command line forks one when it
starts, before torch is imported, to load what the work beside a run needs (scikit-learn, skops,
torchmetrics, matplotlib: several seconds of CPU) on a core the command's own start-up leaves idle; a
run without it forks one after its data stage, which has the data by the fork (``shared``), not pickled.

Example:
    >>> baselines = Background(fit_baselines, data)   # forks now; the child starts fitting
    >>> ...                                            # meanwhile, train the network
    >>> baselines.result()                             # waits only if the child is still running
    >>> worker = Worker("trainwright.recipes.setup:preload")   # first thing, before torch loads
    >>> worker.submit(fit_baselines, data).result()
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import multiprocessing
import os
import queue
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any


def forks() -> bool:
    """Whether work runs in forked children here (Linux), rather than in the process itself."""
    return sys.platform.startswith("linux")


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def spare_cores(busy: int) -> int:
    """Cores this process may run on beyond its ``busy`` threads (0 when they take every core)."""
    return max(0, cores() - busy)


def lower_priority(pid: int, nice: int) -> None:
    """Raise process ``pid``'s niceness by ``nice``, up to 19 (lowering it again needs privileges; a process that
    has gone is left alone)."""
    if nice:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, min(19, os.getpriority(os.PRIO_PROCESS, pid) + nice))


class Background:
    def __init__(self, fn: Callable[..., Any], *args: Any, threads: int | None = None, fork: bool = True, **kwargs: Any) -> None:
        """Call ``fn(*args, **kwargs)`` in a forked child (``threads``: its OpenMP/BLAS thread limit, default 1);
        ``fork=False``, or where processes do not fork: in this process, when the result is asked for."""
        self._call = (fn, args, kwargs)
        self._done, self._value = False, None
        self._process = self._pipe = None
        self.forked = fork and forks()
        if self.forked:
            context = multiprocessing.get_context("fork")
            self._pipe, send = context.Pipe(duplex=False)
            with warnings.catch_warnings():
                # Python 3.12+ warns that forking a multi-threaded process may deadlock the child; the
                # child runs only ``fn``, on its own data, and none of the parent's threads' work.
                warnings.simplefilter("ignore", DeprecationWarning)
                self._process = context.Process(target=_child, args=(send, fn, args, kwargs, threads), daemon=True)
                self._process.start()
            send.close()  # the child holds the sending end; EOF here means it died

    def yield_to(self, nice: int) -> None:
        """Lower the child's priority by ``nice`` (a training about to take every core); raising it needs privileges."""
        if self._process is not None:
            lower_priority(self._process.pid, nice)

    def ready(self) -> bool:
        """Whether ``result()`` returns at once: the child has finished (work not forked is not done yet)."""
        return self._done or (self._pipe is not None and self._pipe.poll())

    def result(self) -> Any:
        """The function's return value; an exception it raised is raised here."""
        if not self._done:
            ok, value = self._receive() if self._pipe is not None else (None, None)
            if ok is None:  # not forked, or the child died: do the work here
                fn, args, kwargs = self._call
                ok, value = True, fn(*args, **kwargs)
            self._done, self._value = True, value
            self._call = (None, (), {})  # drop the references to the inputs
            if not ok:
                raise value
        return self._value

    def cancel(self) -> None:
        """Stop the child if it is still running (a run that failed no longer needs its result)."""
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
        self._close()
        self._done = True

    def _receive(self) -> tuple[bool | None, Any]:
        try:
            ok, value = self._pipe.recv()
        except (EOFError, OSError):
            ok, value = None, None
        self._close()
        return ok, value

    def _close(self) -> None:
        if self._pipe is not None:
            self._pipe.close()
        if self._process is not None:
            self._process.join()
        self._pipe = self._process = None


class Later:
    """``fn(*bound, *args)`` with ``args`` known only later. With a ``worker``, ``prepare()`` (loading what ``fn``
    needs) is sent to it now and ``fn`` when ``send`` gives the arguments, so only ``fn``'s own work is left
    when they are known; without one, ``fn`` runs here when the result is asked for."""

    def __init__(self, fn: Callable[..., Any], *bound: Any, prepare: Callable[[], Any] | None = None,
                 worker: Worker | None = None) -> None:
        self._fn, self._bound, self._args, self._worker = fn, bound, None, worker
        self._job: Job | None = None
        if worker is not None and prepare is not None:
            worker.submit(prepare)  # its result is never read: the worker reads past it
        self.forked = worker is not None and worker.alive

    def send(self, *args: Any) -> None:
        """The arguments (plain picklable values: numpy arrays rather than tensors); the worker starts ``fn``."""
        self._args = args
        if self._worker is not None:
            self._job = self._worker.submit(self._fn, *self._bound, *args)

    def result(self) -> Any:
        """``fn``'s return value (after ``send``); an exception it raised is raised here."""
        if self._job is not None:
            return self._job.result()
        return self._fn(*self._bound, *self._args)

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()


class Worker:
    """One forked process started early, before this one loads its heavy modules: it loads what later jobs
    need (``prepare``, a ``"module:function"`` name, called at once) on a core this process's own start-up
    leaves idle, then runs the jobs sent to it (``submit``) one at a time, in the order sent. A job's
    function, arguments and result travel pickled through pipes (numpy arrays, tensors and fitted
    scikit-learn objects do). Where processes do not fork or there is one core, a job whose arguments do
    not pickle, or all jobs once the worker has died, run in this process when their result is asked for,
    so results never depend on where they were computed.

    ``shared``: an object the worker has by the fork itself (it exists before the worker starts, e.g. a run's
    prepared data): a job's argument that is this very object travels as a token, not pickled."""

    def __init__(self, prepare: str | None = None, shared: Any = None) -> None:
        self._jobs = self._results = self._process = None
        self._shared = shared
        self._waiting: collections.deque[Job] = collections.deque()  # sent, result not read yet, oldest first
        if forks() and cores() > 1:
            context = multiprocessing.get_context("fork")
            receive_jobs, self._jobs = context.Pipe(duplex=False)
            self._results, send_results = context.Pipe(duplex=False)
            theirs = (self._jobs, self._results)  # this process's ends, which the worker closes in its copy
            self._process = context.Process(target=_serve, args=(receive_jobs, send_results, prepare, theirs, shared),
                                            daemon=True)
            self._process.start()
            receive_jobs.close()
            send_results.close()

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Job:
        """``fn(*args, **kwargs)`` in the worker after the jobs sent before it; its result is the job's ``result()``."""
        job = Job(self, fn, args, kwargs)
        if self._jobs is not None:
            wire = tuple(_SHARED if self._shared is not None and arg is self._shared else arg for arg in args)
            try:
                self._jobs.send((fn, wire, kwargs))  # pickled whole before anything is written
            except Exception:  # noqa: BLE001 - does not pickle (whatever its __reduce__ raised), or the worker died
                return job
            job.forked = True
            self._waiting.append(job)
        return job

    def yield_to(self, nice: int) -> None:
        """Lower the worker's priority by ``nice`` (a training about to take every core); raising it needs privileges."""
        if self.alive:
            lower_priority(self._process.pid, nice)

    def _next(self) -> None:
        """Read the oldest waiting job's outcome; when the worker has died, every waiting job runs here instead."""
        job = self._waiting[0]
        try:
            ok, value = self._results.recv()
        except (EOFError, OSError):
            self.close()  # moves every waiting job here
            return
        self._waiting.popleft()
        if ok is None:  # its result did not pickle: computed here
            job.forked = False
        else:
            job._settle(ok, value)

    def close(self) -> None:
        """Stop the worker (a job still running is abandoned); jobs whose result was not read run here when asked."""
        for job in self._waiting:
            job.forked = False
        self._waiting.clear()
        for end in (self._jobs, self._results):
            if end is not None:
                end.close()
        if self._process is not None:
            if self._process.is_alive():
                self._process.terminate()
            self._process.join()
        self._jobs = self._results = self._process = None


class Job:
    """A function call sent to a ``Worker``: ``result()`` is its return value (an exception it raised is raised here)."""

    def __init__(self, worker: Worker, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        self._worker, self._call = worker, (fn, args, kwargs)
        self._done, self._ok, self._value = False, True, None
        self.forked = False  # set by the worker once it holds the job

    def _settle(self, ok: bool, value: Any) -> None:
        self._done, self._ok, self._value = True, ok, value
        self._call = (None, (), {})

    def ready(self) -> bool:
        return self._done

    def result(self) -> Any:
        while not self._done and self.forked:
            self._worker._next()
        if not self._done:  # not sent, or the worker died before it answered
            fn, args, kwargs = self._call
            self._settle(True, fn(*args, **kwargs))
        if not self._ok:
            raise self._value
        return self._value

    def cancel(self) -> None:
        """A job held by a worker runs to its end there (its result is dropped when read); one not sent never runs."""
        self._settle(True, None)


_warm: Worker | None = None
# "1" or "0": start the worker (start_worker) or not, whatever the load; unset: only when a core is idle.
WORKER_ENV = "TRAINWRIGHT_WORKER"


def idle_core() -> bool:
    """Whether a core is idle enough to give a worker (the last minute's load average at least a quarter of a core
    under the cores this process may use), or ``$TRAINWRIGHT_WORKER`` says so. On a busy machine (a test
    suite's workers, other jobs) a worker would only take CPU from others."""
    asked = os.environ.get(WORKER_ENV)
    if asked in ("0", "1"):
        return asked == "1" and forks() and cores() > 1
    return forks() and cores() > 1 and os.getloadavg()[0] < cores() - 0.25


def start_worker(prepare: str | None = None) -> None:
    """Start this process's ``Worker`` now (the command line calls it first thing), for the first run to ``claim``."""
    global _warm
    if _warm is None:
        _warm = Worker(prepare)


def claim_worker() -> Worker | None:
    """The worker ``start_worker`` started, to its first caller only (who closes it); None when none was started."""
    global _warm
    worker, _warm = _warm, None
    return worker if worker is not None and worker.alive else None


class _Shared:
    """In a job's arguments as sent: the worker's ``shared`` object, which it has already."""


_SHARED = _Shared()


def _serve(jobs, results, prepare: str | None, theirs: tuple, shared: Any) -> None:
    for end in theirs:  # with only the parent holding the jobs' sending end, its exit (even a SIGKILL) is EOF here
        end.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent handles it and stops the worker
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's close: not the command's handler, inherited by the fork
    # A job may fork children of its own (``Background``: the report's sections, drawn at once), which multiprocessing
    # refuses a daemonic process; the parent still stops this one as its daemon.
    multiprocessing.current_process().daemon = False
    # One thread: the other cores are the training's. Set before torch and scikit-learn load (they read these
    # once), and again for what had loaded before the fork.
    os.environ.update({name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    if prepare is not None:
        module, name = prepare.split(":")
        with contextlib.suppress(Exception):  # loading early is an optimization: a job loads what it needs anyway
            getattr(importlib.import_module(module), name)()
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    _limits = threadpool_limits(1)
    # Results go back from a thread of their own: the parent reads them only when asked, and a result bigger
    # than the pipe's buffer, sent from this loop, would stop it reading the next job, while the parent's
    # sending of a job bigger than the buffer waited for it to be read (a deadlock, seen in the test suite).
    outbox: queue.SimpleQueue = queue.SimpleQueue()
    sender = threading.Thread(target=_send_results, args=(outbox, results), daemon=True)
    sender.start()
    while True:
        try:
            fn, args, kwargs = jobs.recv()
        except (EOFError, OSError):
            break
        args = tuple(shared if isinstance(arg, _Shared) else arg for arg in args)
        try:
            outcome = (True, fn(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 - raised again in the parent, where the result is read
            outcome = (False, error)
        outbox.put(outcome)
    outbox.put(None)
    sender.join()


def _send_results(outbox: queue.SimpleQueue, results) -> None:
    while (outcome := outbox.get()) is not None:
        try:
            results.send(outcome)  # pickled whole before anything is written
        except BaseException:  # noqa: BLE001 - the value does not pickle: the parent computes it itself
            try:
                results.send((None, None))
            except BaseException:  # noqa: BLE001 - the parent has gone
                return


def _child(send, fn: Callable[..., Any], args: tuple, kwargs: dict, threads: int | None) -> None:
    # Ctrl-C reaches the whole process group: the parent handles it (its checkpoint) and stops the child;
    # SIGTERM (the parent's cancel) ends the child, not the command's handler inherited by the fork.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        # Always a limit (1 thread unless asked): a parent that has run an OpenMP parallel region (torch on
        # 2+ threads) leaves GNU OpenMP's pool behind in the fork, and the child's first parallel region
        # would wait on it forever; one thread never enters the pool.
        from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

        _limits = threadpool_limits(threads or 1)  # this process only: OpenMP (scikit-learn, torch) and BLAS pools
        outcome = (True, fn(*args, **kwargs))
    except BaseException as error:  # noqa: BLE001 - raised again in the parent, where the result is read
        outcome = (False, error)
    try:
        send.send(outcome)
    except BaseException:  # noqa: BLE001 - the parent has gone (interrupted) or the value does not pickle
        try:
            send.send((None, None))  # the parent then does the work itself
        except BaseException:  # noqa: BLE001, S110 - nobody is listening any more
            pass
