"""The checkpoint callback: everything a resumed run needs, copied often and written atomically."""

from __future__ import annotations

import math
import time

from trainwright.rundir import RunDir
from trainwright.training.callbacks.base import Callback, ThrottledWrite
from trainwright.training.checkpoint import Snapshots, write_snapshot
from trainwright.training.state import TrainingState


class Checkpoint(Callback):
    """Save ``state.state_dict()`` to the run's ``checkpoints/last.safetensors``, atomically.

    The state is copied (a consistent snapshot, ~1 MB for a small MLP, into buffers reused from
    one copy to the next) at the end of the first epoch, the last one, and every epoch that ends
    ``every`` seconds or more after the previous copy: every epoch once epochs take that long,
    and for epochs of milliseconds no copy dominates the training time. The disk write is
    throttled as ``ThrottledWrite`` says. So when training ends the checkpoint holds its last
    epoch, and after Ctrl-C or a NaN loss one at most ``every`` seconds of training back;
    ``state.saved_epoch`` says which.
    """

    order = 30  # after every callback that changes the state or may stop the run this epoch

    def __init__(self, run_dir: RunDir, interval: float = 2.0, every: float = 0.5):
        self.run_dir, self.every = run_dir, every
        self.writes = ThrottledWrite(interval)
        self.snapshots = Snapshots()  # one set of buffers: a pending write is always the latest copy
        self.taken = -math.inf

    def on_epoch_end(self, state: TrainingState, logs: dict) -> None:
        last = state.stop_reason is not None or state.epoch >= state.max_epochs
        if not last and time.monotonic() - self.taken < self.every:
            return
        self.writes.offer(write_snapshot, self.run_dir, self.run_dir.checkpoint, *self.snapshots.take(state.state_dict()))
        self.taken = time.monotonic()
        state.saved_epoch = state.epoch

    def close(self) -> None:
        self.writes.flush()
