"""The progress display off a terminal: plain lines, so `trainwright train ... > log` shows progress."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from trainwright.training.callbacks import ProgressBar


def test_off_a_terminal_progress_is_a_plain_line_per_epoch_and_within_long_epochs():
    out = io.StringIO()
    bar = ProgressBar(Console(file=out, width=200), total_epochs=3, steps_per_epoch=4, metric="val_accuracy", every=0, within=0)
    state = SimpleNamespace(epoch=0)
    bar.on_train_begin(state)
    bar.on_batch_end(state)
    for epoch in (1, 2):
        state.epoch = epoch
        bar.on_epoch_end(state, {"epoch": epoch, "train_loss": 0.5 / epoch, "val_loss": 0.6 / epoch, "val_accuracy": 0.9})
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("epoch 1/3: step 1/4 (")
    assert lines[1].startswith("epoch 1/3: loss 0.5000  val_loss 0.6000  val_accuracy 0.9000 (") and "left)" in lines[1]
    assert lines[2].startswith("epoch 2/3: loss 0.2500") and len(lines) == 3
    quiet = io.StringIO()  # the default: a line only when 10 s have passed, so quick runs stay short
    bar = ProgressBar(Console(file=quiet), total_epochs=3, steps_per_epoch=4, metric="val_loss")
    bar.on_train_begin(state)
    bar.on_epoch_end(state, {"train_loss": 0.1, "val_loss": 0.2})
    assert quiet.getvalue() == ""
