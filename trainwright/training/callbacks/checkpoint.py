"""The checkpoint callback: everything a resumed run needs, by time, mid-epoch too, and on SIGINT/SIGTERM."""

from __future__ import annotations

import sys
import time

import torch

from trainwright.errors import Interrupted
from trainwright.rundir import RunDir
from trainwright.training.callbacks.base import Callback
from trainwright.training.checkpoint import Snapshots, write_snapshot
from trainwright.training.distributed import Replicas
from trainwright.training.signals import StopSignals
from trainwright.training.state import TrainingState


class Checkpoint(Callback):
    """Write ``state.state_dict()`` to the run's ``checkpoints/last.safetensors``, atomically.

    When: at the first batch boundary (after an optimizer step, ``on_step_end``) or epoch end once
    ``every`` seconds have passed since the last write, at the end of training (the last epoch or
    an early stop), and when SIGINT or SIGTERM arrives (``StopSignals``: the state is written at
    the next boundary and ``Interrupted`` ends the run; a second signal ends it at once). So a kill
    loses at most ``every`` seconds of training, and a run killed before its first checkpoint has
    trained less than that and starts again from the beginning (same seed, same run).

    The interval stretches to ``1 / max_share`` times what the last write took (copy, file,
    checksum), so checkpoints never cost more than ``max_share`` of the training time. The one at the
    end of training is written on the run directory's writer thread (``RunDir.in_background``), so
    the evaluation that follows does not wait for it; ``RunDir.settle`` (and every later write of
    the run, and ``unlock``) waits for it. A state
    whose weights are no longer finite (a NaN loss mid-epoch) is not written: the last good
    checkpoint stays. ``state.saved_epoch`` (and ``saved_step`` where the loop has steps) say
    what the file holds. Between writes the hot loop pays one clock read per optimizer step.

    Data-parallel (``replicas``): rank 0 writes, and the processes agree at each boundary whether
    one is due (its time on any process, or a signal any of them received: one small all-reduce),
    so they all take the state at the same step, and the state's collectives (the loss summed over
    the processes) find every process there.
    """

    order = 30  # after every callback that changes the state or may stop the run this epoch

    def __init__(self, run_dir: RunDir, every: float = 10.0, max_share: float = 0.05, replicas: Replicas | None = None):
        self.run_dir, self.every, self.max_share = run_dir, every, max_share
        self.replicas = replicas or Replicas()
        self.alone = not self.replicas.active  # with others, every step's decision is agreed (a collective)
        self.snapshots = Snapshots()  # buffers reused from one write to the next
        self.signals = StopSignals()
        self.due = time.monotonic() + every

    def on_train_begin(self, state: TrainingState) -> None:
        self.signals.install()
        self.due = time.monotonic() + self.every

    def on_step_end(self, state: TrainingState) -> None:
        if self.alone and self.signals.received is None and time.monotonic() < self.due:
            return  # most steps: nothing due and no signal, one clock read
        due, signum = self.agree()
        if signum is not None:
            self.save(state)
            raise self.interrupted(state, signum)
        if due:
            self.save(state)

    def on_epoch_end(self, state: TrainingState, logs: dict) -> None:
        last = state.stop_reason is not None or state.epoch >= state.max_epochs
        due, signum = self.agree()
        if due or last or signum is not None:
            # The last one is written while the run goes on to its evaluation (a signal's, before it ends the run).
            self.save(state, background=last and signum is None)
        if signum is not None:
            raise self.interrupted(state, signum)

    def agree(self) -> tuple[bool, int | None]:
        """Whether a checkpoint is due, and the signal received (None: none). With several processes: due on
        any, a signal any of them had received by now; one that arrives later is counted at the next boundary,
        on every process at once, so all of them stop at the same step."""
        due, signum = time.monotonic() >= self.due, self.signals.received
        if not self.replicas.active:
            return due, signum
        due, signum = self.replicas.any(due, signum or 0)
        return bool(due), int(signum) or None

    def save(self, state: TrainingState, background: bool = False) -> None:
        started = time.monotonic()
        if not finite(state, self.replicas):
            return
        taken = state.state_dict()  # on every process: it may hold collectives
        if self.run_dir.writes:
            self.run_dir.settle()  # a snapshot handed to the writer thread is in the buffers this one reuses
            snapshot = self.snapshots.take(taken)
            if background:
                self.run_dir.in_background(lambda: write_snapshot(self.run_dir, self.run_dir.checkpoint, *snapshot))
            else:
                write_snapshot(self.run_dir, self.run_dir.checkpoint, *snapshot)
        now = time.monotonic()
        self.due = now + max(self.every, (now - started) / self.max_share)
        state.saved_epoch = state.epoch
        if hasattr(state, "saved_step"):  # loops that checkpoint only between epochs have no steps
            state.saved_step = state.step

    def interrupted(self, state: TrainingState, signum: int) -> Interrupted:
        where = state.position() if hasattr(state, "position") else f"after epoch {state.epoch}"
        stop = Interrupted(signum, f"the checkpoint holds the run {where}", self.run_dir.path)
        if self.replicas.active:  # continued on as many processes
            stop.resume_with = self.replicas.resume_command(self.run_dir.path)
        return stop

    def close(self) -> None:
        self.signals.restore()


def finite(state: TrainingState, replicas: Replicas | None = None) -> bool:
    """Whether every trained weight is finite (one device sync; only when a checkpoint is written). FSDP: each
    process checks its shards, and all agree (one small all-reduce)."""
    params = [p.detach() for module in state.modules.values() for p in module.parameters()]
    # Only FSDP makes DTensors, and it has imported their module then: not imported for every run (with sympy,
    # about a second on our machine).
    dtensor = getattr(sys.modules.get("torch.distributed.tensor"), "DTensor", ())
    sharded = any(isinstance(p, dtensor) for p in params)
    params = [p.to_local() if isinstance(p, dtensor) else p for p in params]
    ok = not params or bool(torch.stack([torch.isfinite(p).all() for p in params]).all())
    return not replicas.any(float(not ok))[0] if sharded and replicas is not None else ok
