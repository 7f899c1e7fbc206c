"""Per-layer gradient norms and dead ReLU units, per epoch: ``gradients.json``, for the diagnosis."""

from __future__ import annotations

import json
import math

import numpy as np
import torch

from trainwright.rundir import RunDir
from trainwright.training.callbacks.base import Callback, ThrottledWrite
from trainwright.training.distributed import plain
from trainwright.training.state import TrainingState


class GradientStats(Callback):
    """Per-layer gradient norms and the share of dead ReLU units, per epoch, kept in ``gradients.json``.

    A layer is a module with a weight matrix (Linear, Conv, ...); its gradient norm is the L2
    norm of that weight's gradient, taken after backward and before clipping (so clipping
    does not hide an explosion), on the first optimizer step of each epoch and every ``every``-th
    after it (``evaluate.gradient_every``; a norm costs ~5% of a small MLP's step, so sampling keeps
    the diagnosis out of the training time; 1 watches every step). A ReLU unit is dead in an epoch when
    it outputs 0 for every row of that epoch's validation pass (forward hooks registered for
    that pass only, so training steps pay nothing). Both are accumulated on the device; an
    epoch's numbers stay there until they are written (every ``interval`` seconds, and at the end)
    or checkpointed, and then all the epochs not read yet come to the host in one transfer.

    ``gradients.json`` (20 steps an epoch: 2 sampled)::

        {"every": 10, "layers": [{"name": "0", "type": "Linear", "shape": [128, 61]}, ...],
         "activations": [{"name": "1", "type": "ReLU"}, ...],
         "epochs": [{"epoch": 1, "steps": 2, "norm_mean": [...], "norm_max": [...], "dead_share": [...]}]}

    ``norm_mean``/``norm_max`` hold one value per layer (null when a norm was inf or NaN). If
    training fails mid-epoch (a NaN loss), that epoch's norms are kept with ``"partial": true``.
    """

    order = 10  # before Checkpoint, so a checkpoint holds this epoch's norms

    def __init__(self, run_dir: RunDir, every: int = 10, interval: float = 2.0, module: str = "model"):
        self.run_dir, self.every, self.module = run_dir, every, module
        self.writes = ThrottledWrite(interval, run_dir.in_background)  # off the training thread
        self.records: list[dict] = []  # the epochs read to the host
        self.unread: list[tuple[int, int, torch.Tensor, list[int]]] = []  # (epoch, sampled, values on the device, units)
        self.state: TrainingState | None = None
        self.hooks: list = []
        self.running: dict = {}  # a mid-epoch checkpoint's sums, put back when training begins

    def on_train_begin(self, state: TrainingState) -> None:
        self.state = state
        model = state.modules[self.module]
        self.layers = [
            (name, m)
            for name, m in model.named_modules()
            if isinstance(getattr(m, "weight", None), torch.nn.Parameter) and m.weight.ndim >= 2 and m.weight.requires_grad
        ]
        self.weights = [m.weight for _, m in self.layers]  # the parameters themselves: no module lookups per step
        self.activations = [(name, m) for name, m in model.named_modules() if isinstance(m, torch.nn.ReLU)]
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        self.no_grad = torch.zeros((), device=device)  # stands in for a layer that got no gradient this step
        self._reset(device)
        if self.running.get("sampled") is not None and len(self.running["norm_sum"]) == len(self.layers):
            self.norm_sum.copy_(self.running["norm_sum"])
            self.norm_max.copy_(self.running["norm_max"])
            self.sampled, self.epoch_steps = self.running["sampled"], self.running["epoch_steps"]
        if self.records:  # a resumed run: the file may hold epochs past its checkpoint, or miss some
            self.writes.offer(self._write, list(self.records))

    def _reset(self, device: torch.device) -> None:
        self.norm_sum = torch.zeros(len(self.layers), device=device)  # (L,)
        self.norm_max = torch.zeros(len(self.layers), device=device)  # (L,)
        self.sampled = 0
        self.epoch_steps = 0  # optimizer steps so far this epoch
        self.alive: list[torch.Tensor | None] = [None] * len(self.activations)  # per ReLU: (units,) bool

    def on_validation_begin(self, state: TrainingState) -> None:
        # Hooked for the validation pass only: a module with a hook takes torch's slow call path
        # (~10 us a call), which training steps should not pay.
        self.hooks = [m.register_forward_hook(self._watch(i)) for i, (_, m) in enumerate(self.activations)]

    def on_validation_end(self, state: TrainingState) -> None:
        self._unhook()

    def _unhook(self) -> None:
        for handle in self.hooks:
            handle.remove()
        self.hooks = []

    def _watch(self, index: int):
        def hook(module, inputs, output):
            # A unit fired on some row when its largest output is > 0. The units are laid out in the
            # output's own memory order (channels-last for convs), so the (rows, units) view is free
            # and the max runs over contiguous rows: ~5x faster than comparing every value.
            out = output.detach()
            if out.dim() == 2:  # (rows, units): already that view
                fired = out.amax(0) > 0
            else:
                order = sorted(range(1, out.dim()), key=lambda d: -out.stride(d))
                fired = out.permute(0, *order).reshape(len(out), -1).amax(0) > 0  # (units,)
            seen = self.alive[index]
            self.alive[index] = fired if seen is None else seen | fired

        return hook

    def on_after_backward(self, state: TrainingState) -> None:
        self.epoch_steps += 1
        if not self.layers or (self.epoch_steps - 1) % self.every:
            return
        grads = [w.grad if w.grad is not None else self.no_grad for w in self.weights]
        # One fused kernel for all L norms (what clip_grad_norm_ uses); stays on the device.
        norms = plain(torch.stack(torch._foreach_norm(grads)))  # (L,); FSDP: the shards' norms combined (a collective)
        self.norm_sum += norms
        torch.maximum(self.norm_max, norms, out=self.norm_max)  # NaN propagates, so it is seen
        self.sampled += 1

    def on_epoch_end(self, state: TrainingState, logs: dict) -> None:
        alive = [fired for fired in self.alive if fired is not None]
        values = torch.cat([self.norm_sum, self.norm_max, *alive]).float()  # stays on the device: no sync
        self.unread.append((state.epoch, self.sampled, values, [len(fired) for fired in alive]))
        self._reset(self.norm_sum.device)
        if self.writes.due():
            self.writes.offer(self._write, self._read_all())

    def _read_all(self) -> list[dict]:
        """Every epoch's record: those not read yet come to the host in one transfer (one sync for all of them)."""
        if self.unread:
            values = torch.cat([v for _, _, v, _ in self.unread]).cpu().numpy()
            start = 0
            for epoch, sampled, v, units in self.unread:
                self.records.append({"epoch": epoch, **self._record(sampled, values[start : start + len(v)], units)})
                start += len(v)
            self.unread = []
        return list(self.records)

    def _record(self, sampled: int, values: np.ndarray, units: list[int]) -> dict:
        """An epoch's numbers from its values (norm sums, norm maxima, then per ReLU its units that fired: 1.0),
        finished in float32 on the host, as the device would have (the same bits on the CPU)."""
        n = len(self.layers)
        record = {"steps": sampled, "norm_mean": [], "norm_max": []}
        if sampled:
            record["norm_mean"] = [_finite_or_none(v) for v in (values[:n] / np.float32(sampled)).tolist()]
            record["norm_max"] = [_finite_or_none(v) for v in values[n : 2 * n].tolist()]
        bounds = np.cumsum([2 * n, *units])
        dead = [np.float32(1) - part.sum() / np.float32(len(part)) for part in np.split(values, bounds[:-1])[1:]]
        record["dead_share"] = [round(float(v), 4) for v in dead]
        return record

    def _write(self, records: list[dict]) -> None:
        facts = {
            "every": self.every,
            "layers": [{"name": name, "type": type(m).__name__, "shape": list(m.weight.shape)} for name, m in self.layers],
            "activations": [{"name": name, "type": type(m).__name__} for name, m in self.activations],
            "epochs": records,
        }
        self.run_dir.write_text(self.run_dir.gradients, json.dumps(facts, allow_nan=False) + "\n")

    def close(self) -> None:
        self._unhook()  # a validation pass that failed
        # A run that failed mid-epoch (NaN loss) keeps the norms of that epoch: they show why.
        self._read_all()  # the finished epochs not read yet come first
        if self.state is not None and self.layers and self.sampled:
            values = torch.cat([self.norm_sum, self.norm_max]).float().cpu().numpy()
            partial = self._record(self.sampled, values, [])
            self.records.append({"epoch": self.state.epoch + 1, "partial": True, **partial, "dead_share": []})
            self.sampled = 0
        self.writes.offer(self._write, list(self.records))
        self.writes.flush()  # written while the run goes on

    def state_dict(self) -> dict:
        running = (
            {"norm_sum": self.norm_sum, "norm_max": self.norm_max, "sampled": self.sampled, "epoch_steps": self.epoch_steps}
            if self.state is not None
            else {}
        )  # this epoch's sums so far: a checkpoint may be taken mid-epoch
        return {"records": json.dumps(self._read_all()), "running": running}

    def load_state_dict(self, state: dict) -> None:
        self.records = json.loads(state.get("records", "[]"))
        self.running = state.get("running") or {}


def _finite_or_none(value: float) -> float | None:
    """4 significant digits are plenty for a diagnosis; JSON has no inf or NaN, so those are null."""
    return float(f"{value:.4g}") if math.isfinite(value) else None
