"""TensorBoard event files in the run directory: scalars per epoch, gradient-norm histograms, the graph.

- Scalars: every number of an epoch's logs (``train_loss``, ``val_loss``, metrics, ``lr``), step = epoch.
- ``grad_norm/<layer>``: per epoch, the histogram of that layer's gradient norm over the sampled steps.
  A layer is a module with a weight matrix (Linear, Conv, ...), as in ``GradientStats``; its norm is
  the L2 norm of the weight's gradient after backward and before clipping, taken on the first step of
  each epoch and every ``every``-th after it (one fused kernel for all layers, kept on the device,
  read with one host transfer per epoch). A frozen layer (no gradient) has no histogram.
- The graph of the first module (``model``, or a GAN's ``generator``), traced by ``finish`` after
  training (a trace takes seconds on a CPU) with two rows of the first batch's inputs, on a copy of
  the module in evaluation mode; a model that cannot be traced simply has no graph.

The event files are written by a worker process (``tensorboard_worker.py`` through ``pipe.py``): a
writer thread in the training process, woken for every event, cost the digits MLP's 80 ms epochs 8 ms
each. A resumed run drops the events from the epoch it resumes at (``purge_step``), so curves do not
fold back on themselves.

Example:
    >>> board = TensorBoard(run_dir / "tensorboard", every=10)   # then: tensorboard --logdir runs
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import nn

from trainwright.tracking.callback import Tracker, TrackingWarning, numbers, require
from trainwright.tracking.pipe import WorkerPipe
from trainwright.training.state import TrainingState

WORKER = Path(__file__).with_name("tensorboard_worker.py")


class TensorBoard(Tracker):
    """Event files under ``log_dir`` (``<run>/tensorboard``); gradient norms sampled every ``every`` steps.

    Example:
        >>> board = TensorBoard(run_dir / "tensorboard", every=10)   # callbacks=[..., board]
    """

    def __init__(self, log_dir: str | Path, every: int = 10, graph: bool = True, timeout: float = 60.0):
        require("tensorboard", "track.tensorboard")
        self.log_dir, self.every, self.graph, self.timeout = Path(log_dir), every, graph, timeout
        self.finished = self.trained = False
        self.names: list[str] = []
        self.weights: list[nn.Parameter] = []
        self.samples: list[torch.Tensor] = []  # per sampled step: (L,) norms, on the device
        self.steps = 0  # backward passes so far this epoch
        self.hook = None
        self.example: tuple | None = None  # two rows of the first batch's inputs, for the graph
        self.module: nn.Module | None = None
        self.pipe = WorkerPipe(WORKER)  # started after a minute of training, or at its end

    def on_train_begin(self, state: TrainingState) -> None:
        several = len(state.modules) > 1
        for module_name, module in state.modules.items():
            for name, m in module.named_modules():
                weight = getattr(m, "weight", None)
                if isinstance(weight, nn.Parameter) and weight.ndim >= 2:
                    self.names.append(f"{module_name}/{name}" if several else name)
                    self.weights.append(weight)
        if self.weights:
            first = self.weights[0]  # stands in for a layer without a gradient this step
            self.missing = torch.full((), float("nan"), device=first.device, dtype=first.dtype)
        purge = state.epoch + 1 if state.epoch else None  # a resumed run: from the epoch it trains again
        self.pipe.put("open", "", log_dir=str(self.log_dir), purge_step=purge, layers=self.names)
        if self.graph and state.modules and state.epoch == 0:
            self.module = next(iter(state.modules.values()))
            self.hook = self.module.register_forward_pre_hook(self._catch_inputs)

    def _catch_inputs(self, module: nn.Module, args: tuple) -> None:
        if self.example is None:  # two rows are enough to trace
            self.example = tuple(a.detach()[:2].clone() if isinstance(a, torch.Tensor) else a for a in args)

    def on_after_backward(self, state: TrainingState) -> None:
        self.steps += 1
        if not self.weights or (self.steps - 1) % self.every:
            return
        grads = [w.grad if w.grad is not None else self.missing for w in self.weights]
        self.samples.append(torch.stack(torch._foreach_norm(grads)))  # (L,): one fused kernel, on the device

    def on_batch_end(self, state: TrainingState) -> None:
        if self.hook is not None and self.example is not None:
            self.hook.remove()  # a module with a hook takes torch's slow call path
            self.hook = None

    def on_epoch_end(self, state: TrainingState, logs: dict) -> None:
        norms = torch.stack(self.samples).float().cpu().tolist() if self.samples else []  # (S, L): one host transfer
        self.pipe.put("epoch", f"epoch {state.epoch}", step=state.epoch, scalars=numbers(logs), norms=norms)
        self.samples, self.steps = [], 0

    def on_train_end(self, state: TrainingState) -> None:
        self.trained = True

    def finish(self, run_dir: str | Path, metrics: dict) -> None:
        """After training: the graph, traced on a copy of the model (its hooks left out) in evaluation mode."""
        self.finished = True
        self.pipe.hurry()
        if self.example is None or self.module is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter  # only here, after training: it takes a second to import

            twin = copy.deepcopy(self.module).cpu().eval()
            for m in twin.modules():  # other callbacks' hooks must not run in the trace
                for hooks in (m._forward_pre_hooks, m._forward_hooks, m._backward_pre_hooks, m._backward_hooks):
                    hooks.clear()
            inputs = tuple(a.cpu() if isinstance(a, torch.Tensor) else a for a in self.example)
            with warnings.catch_warnings(), torch.no_grad(), SummaryWriter(str(self.log_dir), filename_suffix=".graph") as writer:
                warnings.simplefilter("ignore")  # the tracer's TracerWarnings are about the trace, not the run
                writer.add_graph(twin, inputs if len(inputs) > 1 else inputs[0])
        except Exception:  # noqa: BLE001, S110 - a model that cannot be traced has no graph; the run does not care
            pass
        self.example = None

    def summary(self) -> str:
        return f"tensorboard: tensorboard --logdir {self.log_dir}" if not self.pipe.unsent else ""

    def close(self) -> None:
        """After ``finish``: wait for the worker to write and close the files (the training loop's close,
        before it, leaves the worker running; at this process's end it closes them itself)."""
        if self.hook is not None:
            self.hook.remove()
            self.hook = None
        if self.pipe.closed:
            return
        if not self.finished:
            if not self.trained:
                self.pipe.hurry()  # training stopped (an error, Ctrl-C): what waits is written now
            return  # training ended: the finish step comes (and the worker starts then, outside the training's time)
        self.pipe.close(self.timeout)
        if self.pipe.unsent:
            warnings.warn(f"TensorBoard ({self.log_dir}): not written ({self.pipe.failure}): {len(self.pipe.unsent)} epochs",
                          TrackingWarning, stacklevel=2)
