"""How long a GAN run will take, before it starts: both networks' FLOPs per step, a few timed steps.

One GAN step is ``d_steps`` discriminator updates (the generator's forward without a graph, the
discriminator on real and generated samples, its backward, the penalty's double backward) and one
generator update (both networks forward, backward through both). ``FlopCounterMode`` counts them on
throwaway copies, and the same copies are timed for a few steps (the random streams are forked, so
the run draws exactly what it would have drawn without the estimate). Evaluations add their own time,
measured once.

Example:
    >>> est = estimate_gan(gan, real_batch, labels, d_steps=1, steps=10_000, evaluations=20)
    >>> print("\\n".join(est.lines()))
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from trainwright.compute.peak import device_label, synchronize
from trainwright.training.gan_step import GANSteps


@dataclass(frozen=True)
class GANEstimate:
    """The prediction and the numbers it was made from."""

    device: str
    batch_size: int
    generator_forward: int  # FLOPs of the generator's forward on one batch
    discriminator_forward: int  # FLOPs of the discriminator's forward on one batch
    flops_per_step: int  # one whole GAN step: d_steps discriminator updates + one generator update, backward included
    seconds_per_step: float
    timed_steps: int
    steps: int  # generator steps to train
    evaluation_seconds: float  # one evaluation of the quality measures
    evaluations: int

    @property
    def train_seconds(self) -> float:
        return self.steps * self.seconds_per_step

    @property
    def total_seconds(self) -> float:
        return self.train_seconds + self.evaluations * self.evaluation_seconds

    def lines(self) -> list[str]:
        flops = (f"FLOPs per step (batch {self.batch_size}): generator forward {_si(self.generator_forward)}FLOP, discriminator "
                 f"forward {_si(self.discriminator_forward)}FLOP; a whole step (discriminator and generator updates, backward "
                 f"and penalties) {_si(self.flops_per_step)}FLOP")
        timed = (f"estimate on {self.device}: {_duration(self.seconds_per_step)} per step (timed over {self.timed_steps} steps) "
                 f"x {self.steps:,} steps")
        if self.evaluation_seconds:
            plural = "s" if self.evaluations != 1 else ""
            timed += (f" + {self.evaluations} evaluation{plural} x {_duration(self.evaluation_seconds)} = about "
                      f"{_duration(self.total_seconds)}")
        else:
            timed += (f" = about {_duration(self.total_seconds)}, plus {self.evaluations} evaluations once the judge of the "
                      "samples is trained")
        return [flops, timed]

    def metrics(self, train_seconds: float, steps_done: int) -> dict:
        """``metrics.json["compute"]``: what the run achieved against what was estimated."""
        estimated = steps_done * self.seconds_per_step + self.evaluations * self.evaluation_seconds * steps_done / max(
            self.steps, 1
        )
        return {
            "estimated_seconds": estimated,
            "train_seconds": train_seconds,
            "steps_per_second": steps_done / train_seconds if train_seconds else None,
            "flops_per_step": self.flops_per_step,
            "generator_forward_flops": self.generator_forward,
            "discriminator_forward_flops": self.discriminator_forward,
            "achieved_flops_per_second": self.flops_per_step * steps_done / train_seconds if train_seconds else None,
            "device": self.device,
        }


def estimate_gan(
    gan: GANSteps,
    real: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    d_steps: int,
    steps: int,
    evaluations: int,
    evaluate: Callable[[GANSteps], object] | None = None,
    timed_steps: int = 10,
) -> GANEstimate:
    """Count and time GAN steps on copies of ``gan``'s networks with the real batch ``real`` (B, ...); ``gan`` is untouched.

    ``evaluate`` (the quality measures) is timed once on the copies, when given.
    """
    device = real.device
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        work = GANSteps(copy.deepcopy(gan.generator), copy.deepcopy(gan.discriminator), gan.cfg, gan.n_classes)
        batch = len(real)
        z = work.noise(batch, device)
        with Flops() as counter, torch.no_grad():
            fake = work.generator(z, labels)
        g_forward = counter.total
        with Flops() as counter, torch.no_grad():
            work.discriminator(fake, labels)
        d_forward = counter.total

        def step() -> None:
            for _ in range(d_steps):
                work.d_step(real, labels)
            work.g_step(batch, labels)

        with Flops() as counter:
            step()
        per_step = counter.total
        step()  # warm-up: first calls allocate
        synchronize(device)
        started = time.perf_counter()
        for _ in range(timed_steps):
            step()
        synchronize(device)
        seconds = (time.perf_counter() - started) / timed_steps
        evaluation = 0.0
        if evaluate is not None:
            started = time.perf_counter()
            evaluate(work)
            evaluation = time.perf_counter() - started
    return GANEstimate(
        device_label(device), batch, g_forward, d_forward, per_step, seconds, timed_steps, steps, evaluation, evaluations
    )


class Flops(TorchDispatchMode):
    """FLOPs of every operator run inside it, by torch's own formulas (``torch.utils.flop_counter``).

    ``FlopCounterMode`` also tracks modules with autograd hooks, which a gradient penalty's
    ``torch.autograd.grad`` on the inputs does not allow; counting at the dispatcher needs no hooks.
    """

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            self.total += int(count(*args, **kwargs, out_val=out))
        return out


def _si(value: float) -> str:
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}"
    return f"{value:.3g} "


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
