"""TensorBoard event files in the run directory: scalars per epoch, gradient-norm histograms, the graph.

- Scalars: every number of an epoch's logs (``train_loss``, ``val_loss``, metrics, ``lr``), step = epoch.
- ``grad_norm/<layer>``: per epoch, the histogram of that layer's gradient norm over the sampled steps
  (``BUCKETS`` equal buckets, computed for all layers in one pass).
  A layer is a module with a weight matrix (Linear, Conv, ...), as in ``GradientStats``; its norm is
  the L2 norm of the weight's gradient after backward and before clipping, taken on the first step of
  each epoch and every ``every``-th after it (one fused kernel for all layers, kept on the device,
  read with one host transfer per epoch). A frozen layer (no gradient) has no histogram.
- The graph of the first module (``model``, or a GAN's ``generator``), traced by ``finish`` after
  training (a trace takes seconds on a CPU, and holds the GIL) with two rows of the first batch's
  inputs, on a copy of the module in evaluation mode; a model that cannot be traced simply has no graph.

``SummaryWriter`` writes the files from its own thread. A resumed run drops events after the epoch it
resumes from (``purge_step``), so curves do not fold back on themselves. The training loop's close
flushes the files; ``close`` after ``finish`` closes them.

Example:
    >>> board = TensorBoard(run_dir / "tensorboard", every=10)   # then: tensorboard --logdir runs
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import nn

from trainwright.tracking.callback import Tracker, numbers, require
from trainwright.training.state import TrainingState

BUCKETS = 20  # per layer and epoch: the sampled steps are tens at most


class TensorBoard(Tracker):
    """Event files under ``log_dir`` (``<run>/tensorboard``); gradient norms sampled every ``every`` steps.

    Example:
        >>> board = TensorBoard(run_dir / "tensorboard", every=10)   # callbacks=[..., board]
    """

    def __init__(self, log_dir: str | Path, every: int = 10, graph: bool = True):
        require("tensorboard", "track.tensorboard")
        from torch.utils.tensorboard import SummaryWriter  # imported here, before training: it takes a second

        self.writer_class = SummaryWriter
        self.log_dir, self.every, self.graph = Path(log_dir), every, graph
        self.writer = None
        self.finished = False
        self.names: list[str] = []
        self.weights: list[nn.Parameter] = []
        self.samples: list[torch.Tensor] = []  # per sampled step: (L,) norms, on the device
        self.steps = 0  # backward passes so far this epoch
        self.hook = None
        self.example: tuple | None = None  # two rows of the first batch's inputs, for the graph
        self.module: nn.Module | None = None

    def on_train_begin(self, state: TrainingState) -> None:
        self.writer = self.writer_class(log_dir=str(self.log_dir), purge_step=state.epoch + 1 if state.epoch else None)
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
        for key, value in numbers(logs).items():
            self.writer.add_scalar(key, value, state.epoch)
        if self.samples:
            norms = torch.stack(self.samples).cpu()  # (S, L): the one host transfer per epoch
            for name, histogram in zip(self.names, histograms(norms)):
                if histogram is not None:
                    self.writer.add_histogram_raw(f"grad_norm/{name}", **histogram, global_step=state.epoch)
        self.samples, self.steps = [], 0

    def finish(self, run_dir: str | Path, metrics: dict) -> None:
        """After training: the graph, traced on a copy of the model (its hooks left out) in evaluation mode."""
        self.finished = True
        if self.example is None or self.module is None or self.writer is None:
            return
        try:
            twin = copy.deepcopy(self.module).cpu().eval()
            for m in twin.modules():  # other callbacks' hooks must not run in the trace
                for hooks in (m._forward_pre_hooks, m._forward_hooks, m._backward_pre_hooks, m._backward_hooks):
                    hooks.clear()
            inputs = tuple(a.cpu() if isinstance(a, torch.Tensor) else a for a in self.example)
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # the tracer's TracerWarnings are about the trace, not the run
                self.writer.add_graph(twin, inputs if len(inputs) > 1 else inputs[0])
        except Exception:  # noqa: BLE001, S110 - a model that cannot be traced has no graph; the run does not care
            pass
        self.example = None

    def summary(self) -> str:
        return f"tensorboard: tensorboard --logdir {self.log_dir}"

    def close(self) -> None:
        """The training loop's close flushes the event files; after ``finish`` they are closed."""
        if self.hook is not None:
            self.hook.remove()
            self.hook = None
        if self.writer is None:
            return
        if not self.finished:
            self.writer.flush()
            return
        self.writer.close()  # flushes
        self.writer = None


def histograms(samples: torch.Tensor, buckets: int = BUCKETS) -> list[dict | None]:
    """TensorBoard's histogram fields for each column of (S, L) samples (non-finite: no sample), all columns at once.

    ``buckets`` equal buckets from the column's min to its max; None for a column without samples.
    (``SummaryWriter.add_histogram`` takes ~1 ms a layer in numpy; this is one pass for all layers.)

    Example:
        >>> histograms(torch.tensor([[1.0, float("nan")], [3.0, float("nan")]]), buckets=2)[0]["bucket_counts"]
        [1.0, 1.0]
    """
    x = samples.double()
    seen = torch.isfinite(x)  # (S, L)
    lo = torch.where(seen, x, torch.inf).amin(0)  # (L,)
    hi = torch.where(seen, x, -torch.inf).amax(0)
    width = (hi - lo).nan_to_num(0).clamp_min(1e-12) / buckets  # one value: all in the first bucket
    index = ((x - lo) / width).nan_to_num(0).floor().clamp(0, buckets - 1).long()  # (S, L)
    counts = torch.zeros(x.shape[1], buckets, dtype=torch.float64).scatter_add_(1, index.T, seen.T.double())  # (L, B)
    limits = lo[:, None] + width[:, None] * torch.arange(1, buckets + 1, dtype=torch.float64)  # (L, B) right edges
    values = torch.where(seen, x, 0.0)
    facts = zip(seen.sum(0).tolist(), lo.tolist(), hi.tolist(), values.sum(0).tolist(), values.pow(2).sum(0).tolist(),
                limits.tolist(), counts.tolist())  # one tuple per layer, in the order of keys
    keys = ("num", "min", "max", "sum", "sum_squares", "bucket_limits", "bucket_counts")
    return [dict(zip(keys, column)) if column[0] else None for column in facts]
