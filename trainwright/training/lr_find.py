"""The learning-rate range test (Smith 2015, "Cyclical Learning Rates for Training Neural Networks",
arXiv 1506.01186): train for a short while with the learning rate rising exponentially, watch the loss.

The sweep runs ``steps`` optimizer steps (100 by default, as fastai's and Lightning's finders do;
several epochs of a small set, a fraction of one of a large set) from ``min_lr`` to ``max_lr``,
smooths the loss with an exponential moving average (beta 0.98, bias-corrected), and stops when
the smoothed loss exceeds 4x its best or becomes NaN. The suggestion is fastai's ``valley`` rule
(fastai/callback/schedule.py): on the curve without its first tenth and last 5 points, the longest
stretch over which the loss keeps falling, and a learning rate a little past its middle (the
stretch split in thirds, plus half a third). When the curve gives none (fewer than 20 usable
points, or a loss that never fell), there is no suggestion and ``reason`` says why; nothing ever
passes None on as a learning rate.

Everything the sweep touches is put back exactly (``preserved``): the model's parameters and
buffers, its train/eval mode, and the random streams (CPU and CUDA); the sweep's optimizer and
batch shuffling are its own. So a run after a sweep is bit for bit the run without one (tested).

Example:
    >>> step_loss = supervised_loss(model, loss_fn)
    >>> sweep = lr_sweep(model, batches, step_loss, OptimizerConfig(name="adam"), generator=torch.Generator())
    >>> sweep.suggestion, sweep.rule
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
from torch import nn

from trainwright.config import OptimizerConfig
from trainwright.data.batches import TensorBatches
from trainwright.training.loop import StepLoss
from trainwright.training.optim import build_optimizer, weight_penalty

RULE = ("valley: the longest stretch of falling smoothed loss (leaving out the first tenth of the sweep and its last "
        "5 points), a learning rate 1/2 of the way into it (fastai's valley rule)")
MIN_POINTS = 20


@dataclass(frozen=True)
class LRSweep:
    lrs: list[float]
    losses: list[float]  # raw training loss at each step
    smoothed: list[float]  # bias-corrected exponential moving average
    stopped: str  # why the sweep ended
    suggestion: float | None
    rule: str
    reason: str | None  # why there is no suggestion
    valley: tuple[int, int] | None  # (first, last) step of the stretch the suggestion comes from

    def to_dict(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def preserved(model: nn.Module) -> Iterator[None]:
    """Put the model's tensors, its mode and the random streams back exactly as they were on exit."""
    state = copy.deepcopy(model.state_dict())
    modes = {name: m.training for name, m in model.named_modules()}
    rng = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        with torch.no_grad():
            model.load_state_dict(state)
        for name, m in model.named_modules():
            m.training = modes[name]
        torch.set_rng_state(rng)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        for p in model.parameters():
            p.grad = None


def lr_sweep(model: nn.Module, batches: TensorBatches, step_loss: StepLoss, optimizer: OptimizerConfig, *,
             generator: torch.Generator, params=None, l1: float = 0.0, l2: float = 0.0, amp=None, min_lr: float = 1e-7,
             max_lr: float = 10.0, steps: int = 100, beta: float = 0.98, divergence: float = 4.0) -> LRSweep:
    """Run the range test on ``model`` (restored afterwards); ``params``: parameters or groups (default all).

    A group's learning rate follows the sweep in proportion to its lr over ``optimizer.lr``."""
    lrs_planned = [min_lr * (max_lr / min_lr) ** (i / max(steps - 1, 1)) for i in range(steps)]
    with preserved(model):
        opt = build_optimizer(optimizer, params if params is not None else model.parameters())
        shares = [group["lr"] / optimizer.lr for group in opt.param_groups]  # a transferred backbone keeps its share
        model.train()
        amp = amp or contextlib.nullcontext()
        recorded = torch.full((steps,), math.nan, device=batches.device)  # read every 10 steps, not every step
        curve = Curve(lrs_planned, beta, divergence)
        step = 0
        while curve.stopped is None and step < steps:
            for xb, yb in batches.epoch(generator):  # as many epochs as the steps need
                for group, share in zip(opt.param_groups, shares):
                    group["lr"] = lrs_planned[step] * share
                with amp:
                    loss = step_loss(xb, yb)
                objective = loss + weight_penalty(model, l1, l2) if (l1 or l2) else loss
                opt.zero_grad(set_to_none=True)
                objective.backward()
                opt.step()
                recorded[step] = loss.detach().float()
                step += 1
                if step % 10 == 0 or step == steps:
                    curve.read(recorded[len(curve.losses) : step].tolist())  # one host sync per 10 steps
                    if curve.stopped is not None or step == steps:
                        break
    lrs, losses, smoothed = curve.lrs, curve.losses, curve.smoothed
    stopped = curve.stopped or f"reached max_lr {max_lr:g} after {steps} steps"
    suggestion, valley, reason = suggest(lrs, smoothed)
    return LRSweep(lrs, losses, smoothed, stopped, suggestion, RULE, reason, valley)


class Curve:
    """The sweep's points as they are read: raw and smoothed loss, and whether to stop."""

    def __init__(self, lrs: list[float], beta: float, divergence: float):
        self.planned, self.beta, self.divergence = lrs, beta, divergence
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.average, self.best = 0.0, math.inf
        self.stopped: str | None = None

    def read(self, values: list[float]) -> None:
        for value in values:
            i = len(self.losses)
            if not math.isfinite(value):
                self.stopped = f"the loss became {value} at lr {self.planned[i]:.3g}"
                return
            self.average = self.beta * self.average + (1 - self.beta) * value
            smooth = self.average / (1 - self.beta ** (i + 1))  # bias-corrected: the average starts at 0
            self.lrs.append(self.planned[i])
            self.losses.append(value)
            self.smoothed.append(smooth)
            self.best = min(self.best, smooth)
            if smooth > self.divergence * self.best:
                self.stopped = f"the smoothed loss passed {self.divergence:g}x its best at lr {self.planned[i]:.3g}"
                return


def suggest(lrs: list[float], smoothed: list[float]) -> tuple[float | None, tuple[int, int] | None, str | None]:
    """fastai's valley rule on the trimmed curve; (lr, (first, last), None) or (None, None, why not)."""
    start, end = len(lrs) // 10, len(lrs) - 5
    points = smoothed[start:end]
    if len(points) < MIN_POINTS:
        return None, None, (f"only {max(len(points), 0)} usable points on the curve (the sweep stopped after {len(lrs)} "
                            f"steps), fewer than {MIN_POINTS}: lower the top of the sweep (--max-lr) or raise --steps")
    n = len(points)
    longest = [1] * n  # longest strictly falling sequence ending at i
    best_end = 0
    for i in range(1, n):
        for j in range(i):
            if points[i] < points[j] and longest[i] < longest[j] + 1:
                longest[i] = longest[j] + 1
        if longest[best_end] < longest[i]:
            best_end = i
    best_start = best_end - longest[best_end] + 1
    fell = points[best_end] < 0.95 * points[best_start]
    if best_end - best_start < 4 or not fell:
        return None, None, ("the loss did not fall anywhere in the sweep (no stretch of 5 falling points that lowers it by "
                            "5%): check the data and the model, or widen the sweep (--min-lr, --max-lr)")
    third = (best_end - best_start) / 3
    index = best_start + int(third) + int(third / 2)
    return lrs[start + index], (start + best_start, start + best_end), None
