"""The exceptions a user sees, and how a value from their data is quoted in a message.

The CLI prints ``str(error)`` of a TrainwrightError as a single line and exits with code 2,
without a traceback; the Python API lets it propagate. Messages say what is wrong and how to fix it.
An ``Interrupted`` run (SIGINT, SIGTERM) exits with 128 + the signal's number (130, 143).
"""

from __future__ import annotations

import shlex
import signal
from pathlib import Path

# A message quotes at most this much of a value from the user's data (a 50 MB cell must not become
# a 50 MB line), and a whole message is cut to at most ``MAX_MESSAGE`` characters.
QUOTE_LIMIT = 60
MAX_MESSAGE = 2000


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)``, or of its first ``limit`` characters with the length when it is longer.

    Example:
        >>> quote("x" * 1000)
        "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... (1,000 characters)"
    """
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(value)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


def clip(message: str, limit: int = MAX_MESSAGE) -> str:
    """A message of at most about ``limit`` characters: its start and its end (the fix) are kept."""
    if len(message) <= limit:
        return message
    head, tail = message[: limit * 2 // 3], message[-(limit // 3) :]
    return f"{head} ... ({len(message) - len(head) - len(tail):,} characters cut) ... {tail}"


class TrainwrightError(Exception):
    """Bad input (data, config, paths, checkpoints) that the user can fix.

    Example:
        >>> raise TrainwrightError("target column 'price' is not in data.csv; columns are: a, b")
    """

    def __init__(self, message: str = "", *args: object):
        super().__init__(clip(str(message)), *args)


class TrainingDiverged(TrainwrightError):
    """The loss became NaN or infinite in ``epoch``; the last good checkpoint is kept."""

    def __init__(self, message: str, *, epoch: int = 0, loss: float = float("nan")):
        super().__init__(message)
        self.epoch, self.loss = epoch, loss


class WriteFailed(TrainwrightError):
    """A run file could not be written (a full disk, a file size limit, no permission); the
    previous version of the file and every other file of the run are intact."""


class RunLocked(TrainwrightError):
    """Another process is writing the run directory."""


class Interrupted(KeyboardInterrupt):
    """SIGINT (Ctrl-C) or SIGTERM (a scheduler, ``kill``) stopped the run.

    ``detail`` says what the checkpoint holds; ``run_dir`` is where to resume from (None when the
    run directory did not exist yet); ``said``: the whole line, as a process the data-parallel launcher
    started said it. A KeyboardInterrupt, so ``except Exception`` lets it through.
    """

    def __init__(self, signum: int = signal.SIGINT, detail: str = "", run_dir: Path | None = None, said: str = ""):
        super().__init__(detail)
        self.signum, self.detail, self.run_dir, self.said = int(signum), detail, run_dir, said
        self.resume_with = ""  # the command that continues the run, when not plain `train --resume` (data-parallel)

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process a signal ended: 130, 143."""
        return 128 + self.signum

    def message(self) -> str:
        """One line: which signal, what the checkpoint holds, and the command that continues the run."""
        if self.said:  # the data-parallel launcher: what its first process said, as that process said it
            return self.said
        name = signal.Signals(self.signum).name
        text = f"interrupted by {name}" + (f"; {self.detail}" if self.detail else "")
        if self.run_dir is None:
            return text if self.detail else f"{text}; no run directory was made yet, so there is nothing to resume"
        command = self.resume_with or f"trainwright train --resume {shlex.quote(str(self.run_dir))}"
        return f"{text}: continue with `{command}`"
