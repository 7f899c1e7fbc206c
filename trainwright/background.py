"""Work beside the main process: a function called in a forked child process, its result read later.

``train`` starts the classical baselines and the preprocessor's files as soon as the data are
prepared, so they are ready by the time the network is; the report draws its training figures in
a child while the main process draws the others. A forked child starts with everything the
parent has imported and built: the data are not copied or pickled, torch and scikit-learn are not
imported again, and starting one takes milliseconds. Only the result travels back (pickled,
through a pipe).

Fork is used on Linux only (where it is Python's long-standing default; macOS and Windows spawn
a fresh interpreter instead). Elsewhere, or when the child dies (killed, out of memory), the
function runs in the process itself when its result is asked for, as it would without this
module, so results never depend on where they were computed.

Example:
    >>> baselines = Background(fit_baselines, data)   # forks now; the child starts fitting
    >>> ...                                            # meanwhile, train the network
    >>> baselines.result()                             # waits only if the child is still running
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
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
    """``fn(*args)`` with arguments known only later, in a forked child started now: the child runs
    ``prepare()`` at once (loading what ``fn`` needs) and ``fn`` when the parent sends the arguments
    (``send``), so only ``fn``'s own work is left when they are known. Not forked, or when the child died:
    ``fn(*args)`` here, when the result is asked for."""

    def __init__(self, fn: Callable[..., Any], prepare: Callable[[], Any] | None = None, fork: bool = True) -> None:
        self._fn, self._args = fn, None
        self._inbox = self._job = None
        if fork and forks():
            receive, self._inbox = multiprocessing.get_context("fork").Pipe(duplex=False)
            self._job = Background(_when_sent, receive, self._inbox, prepare, fn)
            receive.close()  # the child holds the receiving end
        self.forked = self._job is not None

    def send(self, *args: Any) -> None:
        """The arguments (plain picklable values: numpy arrays rather than tensors); the child starts ``fn``."""
        self._args = args
        if self._inbox is not None:
            with contextlib.suppress(OSError):  # the child died: result() calls fn here
                self._inbox.send(args)
            self._inbox.close()
            self._inbox = None

    def result(self) -> Any:
        """``fn``'s return value (after ``send``); an exception it raised is raised here."""
        if self._job is not None:
            try:
                return self._job.result()
            except _NotSent:  # the child died before it read them, or its call here has no pipe to read
                self._job = None
        return self._fn(*self._args)

    def cancel(self) -> None:
        if self._inbox is not None:
            self._inbox.close()
            self._inbox = None
        if self._job is not None:
            self._job.cancel()


class _NotSent(Exception):
    """The arguments of a ``Later`` never reached its child."""


def _when_sent(receive, inbox, prepare: Callable[[], Any] | None, fn: Callable[..., Any]) -> Any:
    inbox.close()  # the child's copy of the sending end: the parent's is the only one, so its close is EOF here
    if prepare is not None:
        prepare()
    try:
        args = receive.recv()
    except (EOFError, OSError):
        raise _NotSent from None
    return fn(*args)


def _child(send, fn: Callable[..., Any], args: tuple, kwargs: dict, threads: int | None) -> None:
    # Ctrl-C reaches the whole process group: the parent handles it (its checkpoint) and stops the child.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
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
