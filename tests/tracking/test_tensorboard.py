"""TensorBoard event files, read back with TensorBoard's own event reader."""

from __future__ import annotations

import pytest
import torch
from callback_loop import LoopState, mlp, run_loop
from torch import nn

from trainwright.tracking.pipe import WorkerPipe
from trainwright.tracking.tensorboard import WORKER, TensorBoard
from trainwright.training.callbacks import Callback

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                        reason="the track extra (tensorboard) is not installed")


def read(log_dir):
    events = event_accumulator.EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    return events


class Norms(Callback):
    """The per-layer gradient norms of the sampled steps, computed by hand: (epoch, layer) -> [norms]."""

    def __init__(self, layers: dict[str, nn.Module], every: int):
        self.layers, self.every, self.steps, self.seen = layers, every, 0, {}

    def on_after_backward(self, state) -> None:
        self.steps += 1
        if (self.steps - 1) % self.every == 0:
            for name, layer in self.layers.items():
                if layer.weight.grad is not None:
                    self.seen.setdefault((state.epoch + 1, name), []).append(float(layer.weight.grad.norm()))

    def on_epoch_end(self, state, logs) -> None:
        self.steps = 0


def test_scalars_per_epoch_gradient_norm_histograms_and_the_graph(tmp_path):
    model = mlp()
    model[0].requires_grad_(False)  # a frozen layer has no gradient, so no histogram
    board = TensorBoard(tmp_path / "tensorboard", every=3)  # 4 steps an epoch: steps 1 and 4 are sampled
    norms = Norms({"2": model[2], "4": model[4]}, every=3)
    state = run_loop([norms, board], model, epochs=3)
    board.close()  # the loop's close: the finish step comes; a run shorter than a minute has not started the worker yet
    assert board.pipe.process is None and board.example is not None
    board.finish(tmp_path, {})  # the finish step, after training: the graph
    board.close()  # then the worker closes the files and exits
    assert board.pipe.closed and not board.pipe.unsent

    events = read(tmp_path / "tensorboard")
    tags = events.Tags()
    assert set(tags["scalars"]) == {"train_loss", "val_loss", "lr"}
    for key in tags["scalars"]:
        logged = [(e.step, e.value) for e in events.Scalars(key)]
        assert logged == [(epoch, pytest.approx(logs[key], rel=1e-6)) for epoch, logs in enumerate(state.history, start=1)]

    assert set(tags["histograms"]) == {"grad_norm/2", "grad_norm/4"}
    for name in ("2", "4"):
        epochs = events.Histograms(f"grad_norm/{name}")
        assert [e.step for e in epochs] == [1, 2, 3]
        for e in epochs:
            expected = norms.seen[(e.step, name)]
            assert len(expected) == 2 and e.histogram_value.num == 2
            assert e.histogram_value.min == pytest.approx(min(expected), rel=1e-5)
            assert e.histogram_value.max == pytest.approx(max(expected), rel=1e-5)
            assert e.histogram_value.sum == pytest.approx(sum(expected), rel=1e-5)
            assert sum(e.histogram_value.bucket) == 2
            assert e.histogram_value.bucket_limit[-1] == pytest.approx(max(expected), rel=1e-5)
    assert tags["graph"]  # the MLP was traced
    assert "Linear" in str(events.Graph())


class Untraceable(nn.Module):
    """Stands for a model torch.jit.trace cannot follow: it trains as usual, and raises while traced."""

    def __init__(self):
        super().__init__()
        self.net = mlp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing():
            raise RuntimeError("data-dependent control flow the tracer cannot record")
        return self.net(x)


def test_a_model_that_cannot_be_traced_has_no_graph_and_training_goes_on(tmp_path):
    board = TensorBoard(tmp_path / "tensorboard", every=1)
    run_loop([board], Untraceable(), epochs=2)
    board.finish(tmp_path, {})
    board.close()
    events = read(tmp_path / "tensorboard")
    assert not events.Tags()["graph"]
    assert [e.step for e in events.Scalars("val_loss")] == [1, 2]
    assert len(events.Histograms("grad_norm/net.0")) == 2


def test_a_resumed_run_replaces_the_epochs_after_its_checkpoint(tmp_path):
    model = mlp()
    first = TensorBoard(tmp_path / "tensorboard", graph=False)
    state = run_loop([first], model, epochs=3)
    first.close()
    first.pipe.abandon()  # the run died after epoch 3 (at its exit the worker gets what waits and closes the file) ...
    assert first.pipe.process.wait(timeout=60) == 0
    # ... and its checkpoint is from epoch 2: epoch 3 is trained again.
    again = TensorBoard(tmp_path / "tensorboard", graph=False)
    resumed = LoopState(model, state.optimizers["model"], epoch=2, history=state.history[:2])
    state = run_loop([again], model, epochs=2, state=resumed)
    again.finish(tmp_path, {})
    again.close()
    logged = [(e.step, e.value) for e in read(tmp_path / "tensorboard").Scalars("val_loss")]
    assert logged == [(epoch, pytest.approx(logs["val_loss"], rel=1e-6)) for epoch, logs in enumerate(state.history, start=1)]


def test_a_run_longer_than_the_quiet_minute_logs_live_from_a_worker_at_the_lowest_priority(tmp_path):
    pipe = WorkerPipe(WORKER, quiet=0)  # as after a minute of training: each put may go to the worker
    pipe.put("open", "", log_dir=str(tmp_path / "tensorboard"), purge_step=None, layers=[])
    assert pipe.process is not None and "--low" in pipe.process.args  # started while training: it takes idle CPU only
    pipe.put("epoch", "epoch 1", step=1, scalars={"val_loss": 0.5}, norms=[])
    pipe.hurry()
    pipe.close(timeout=60)
    assert pipe.closed and not pipe.unsent
    assert [(e.step, e.value) for e in read(tmp_path / "tensorboard").Scalars("val_loss")] == [(1, 0.5)]
