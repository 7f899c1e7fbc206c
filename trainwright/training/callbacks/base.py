"""The callback base and the list that runs callbacks in their order.

Callbacks observe a run through flat ``on_*`` hooks and may ask it to stop; they never reach into
the loop. A callback's ``order`` says where it runs among the others, so orderings that matter are
code, not comments: a checkpoint (``order`` 30) is taken after early stopping (0) has updated its
best weights and after the gradient statistics (10) have closed the epoch, so it holds them.

Example:
    >>> class PrintLoss(Callback):
    ...     def on_epoch_end(self, state, logs):
    ...         print(state.epoch, logs["train_loss"])
    >>> callbacks = CallbackList([PrintLoss(), EarlyStopping(cfg)])   # runs EarlyStopping first
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import ClassVar

from trainwright.training.state import TrainingState

HOOKS = (
    "on_train_begin",
    "on_after_backward",
    "on_batch_end",
    "on_step_end",
    "on_validation_begin",
    "on_validation_end",
    "on_epoch_end",
    "on_train_end",
)


class Callback:
    """Base with no-op hooks; subclasses override what they need."""

    order: ClassVar[int] = 50  # lower runs first; see the module docstring for the built-ins' places

    def on_train_begin(self, state: TrainingState) -> None: ...
    def on_after_backward(self, state: TrainingState) -> None:
        """Gradients are in ``.grad``, before clipping and the optimizer step."""

    def on_batch_end(self, state: TrainingState) -> None: ...
    def on_step_end(self, state: TrainingState) -> None:
        """After an optimizer step and the batch's bookkeeping: the whole state is consistent here,
        so a checkpoint taken now resumes exactly (loops that step per epoch never call it)."""

    def on_validation_begin(self, state: TrainingState) -> None: ...
    def on_validation_end(self, state: TrainingState) -> None: ...
    def on_epoch_end(self, state: TrainingState, logs: dict) -> None: ...
    def on_train_end(self, state: TrainingState) -> None: ...
    def close(self) -> None:
        """Release what the callback holds; called after training, also when it fails."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...


class CallbackList:
    """Callbacks sorted by ``order`` (stably), each hook dispatched only to those that define it:
    a per-batch hook that nobody overrides costs the loop nothing."""

    def __init__(self, callbacks: Iterable[Callback] = ()):
        self.callbacks = sorted(callbacks, key=lambda cb: cb.order)
        self._hooks = {
            hook: [getattr(cb, hook) for cb in self.callbacks if getattr(type(cb), hook) is not getattr(Callback, hook)]
            for hook in HOOKS
        }

    def hooks(self, name: str) -> list:
        """The bound ``name`` hooks of the callbacks that override it, in order: a loop that fetches a per-batch
        hook's list once calls nothing on a batch where no callback has anything to do."""
        return self._hooks[name]

    def append(self, callback: Callback) -> None:
        """Add a callback; it takes its place by ``order``."""
        self.__init__([*self.callbacks, callback])

    def __getitem__(self, index: int) -> Callback:
        return self.callbacks[index]

    def __iter__(self) -> Iterator[Callback]:
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def on_train_begin(self, state: TrainingState) -> None:
        for hook in self._hooks["on_train_begin"]:
            hook(state)

    def on_after_backward(self, state: TrainingState) -> None:
        for hook in self._hooks["on_after_backward"]:
            hook(state)

    def on_batch_end(self, state: TrainingState) -> None:
        for hook in self._hooks["on_batch_end"]:
            hook(state)

    def on_step_end(self, state: TrainingState) -> None:
        for hook in self._hooks["on_step_end"]:
            hook(state)

    def on_validation_begin(self, state: TrainingState) -> None:
        for hook in self._hooks["on_validation_begin"]:
            hook(state)

    def on_validation_end(self, state: TrainingState) -> None:
        for hook in self._hooks["on_validation_end"]:
            hook(state)

    def on_epoch_end(self, state: TrainingState, logs: dict) -> None:
        for hook in self._hooks["on_epoch_end"]:
            hook(state, logs)

    def on_train_end(self, state: TrainingState) -> None:
        for hook in self._hooks["on_train_end"]:
            hook(state)

    def close(self) -> None:
        """Close every callback, also when one fails (its error is raised after the others closed)."""
        failure: BaseException | None = None
        for cb in self.callbacks:
            try:
                cb.close()
            except BaseException as error:  # noqa: BLE001 - re-raised below, once every callback is closed
                failure = failure or error
        if failure is not None:
            raise failure

    def keys(self) -> list[str]:
        """Each callback's key in a checkpoint: its class name, with ``#2``, ``#3``, ... for repeats,
        so two callbacks of one class never overwrite each other's state."""
        keys, seen = [], {}
        for cb in self.callbacks:
            name = type(cb).__name__
            seen[name] = seen.get(name, 0) + 1
            keys.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
        return keys

    def state_dict(self) -> dict:
        return {key: cb.state_dict() for key, cb in zip(self.keys(), self.callbacks)}

    def load_state_dict(self, state: dict) -> None:
        for key, cb in zip(self.keys(), self.callbacks):
            cb.load_state_dict(state.get(key, {}))


class ThrottledWrite:
    """Hold the latest write and do it at most once every ``interval`` seconds, plus at ``flush``.

    Every epoch's state is captured when it ends; the disk sees it within ``interval`` seconds,
    and always when training ends, fails or is interrupted (``flush`` runs from ``close``). For
    epochs of milliseconds this keeps file writes from dominating training; for real epochs of
    seconds or more, every epoch is written. ``run``: what runs a due write, e.g. ``RunDir.in_background``
    (the writer thread when the run defers its writes: the training thread only hands the rows over);
    by default the write runs at once.
    """

    def __init__(self, interval: float, run: Callable[[Callable[[], None]], None] | None = None):
        self.interval, self.run = interval, run
        self.last = time.monotonic()  # as if written now: the first write comes ``interval`` seconds in
        self.pending: tuple | None = None

    def due(self) -> bool:
        """Whether an ``offer`` now would write (``interval`` seconds have passed since the last write): a
        caller whose rows are costly to make makes them only then, and offers them at the end anyway."""
        return time.monotonic() - self.last >= self.interval

    def offer(self, write, *args) -> None:
        self.pending = (write, args)
        if self.due():
            self.flush()

    def flush(self) -> None:
        if self.pending is not None:
            write, args = self.pending
            self.pending = None
            if self.run is None:
                write(*args)
            else:
                self.run(lambda: write(*args))
            self.last = time.monotonic()
