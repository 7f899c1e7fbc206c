"""SIGINT and SIGTERM while training: the first asks for a stop where the state is whole, the second stops at once.

Schedulers (SLURM, Kubernetes, systemd) send SIGTERM and wait a while before SIGKILL; Ctrl-C sends
SIGINT. Python's default turns SIGINT into a KeyboardInterrupt wherever the program happens to be,
in the middle of a checkpoint copy too, and lets SIGTERM end the process on the spot. While a
``StopSignals`` is active (installed from the main thread) the first of either signal only sets
``received``; the loop's next batch boundary sees it (the checkpoint callback writes the state
there and ends training). A second signal raises ``Interrupted`` at once.

Example:
    >>> signals = StopSignals().install()
    >>> for batch in batches:
    ...     step(batch)
    ...     if signals.received is not None:
    ...         save(); raise Interrupted(signals.received)
    >>> signals.restore()
"""

from __future__ import annotations

import signal
import threading

from trainwright.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Defer SIGINT and SIGTERM while active; ``received`` is the first one's number (None: none yet)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.previous: dict[int, object] = {}

    def install(self) -> StopSignals:
        """Take over the two signals (only the main thread may; elsewhere this does nothing)."""
        if not self.previous and threading.current_thread() is threading.main_thread():
            self.previous = {signum: signal.signal(signum, self._handle) for signum in SIGNALS}
        return self

    def restore(self) -> None:
        """Give the signals back to whoever had them."""
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}

    def _handle(self, signum: int, frame) -> None:
        if self.received is not None:
            raise Interrupted(signum, "a second signal stopped it at once; the last checkpoint on disk is kept")
        self.received = signum
