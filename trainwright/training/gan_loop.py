"""The GAN loop: alternating discriminator and generator steps, judged every ``gan.evaluate.every_steps``.

A GAN has no natural epoch (a built-in mixture is an endless stream; 2,000 steps on 8x8 digits are a
hundred passes over them), so the loop's unit is an evaluation period: ``every_steps`` generator steps,
then the quality measures. Callbacks see a period as an epoch (``training/state.py``): history.csv gets
one row per period, the checkpoint is taken at its end, and early stopping keeps the best generator by
the quality measure. Per step: ``gan.d_steps`` discriminator steps on real batches, then one generator
step (``GANSteps``). The losses, D's mean logits and G's gradient norm are summed on the device and
read once per period, so the hot loop never waits on a host sync.

Data-parallel (the networks' ``GANSteps.replicas``): every process draws the same shuffle and takes
its share of each global batch (``RealBatches(share=gan.share(batch_size))``), the period's sums are
added over the processes once per period, rank 0 judges the generator and every process takes its
measures and its decision to stop.

Example:
    >>> run = GANFit(gan, RealBatches(x_train, y_train, 64, torch.Generator().manual_seed(0)), evaluate,
    ...              steps=10_000, every=500, d_steps=1, conditional=False)
    >>> fit_gan(run).history[-1]["quality"]
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from trainwright.errors import TrainingDiverged
from trainwright.training.callbacks import CallbackList
from trainwright.training.gan_step import GANSteps


class RealBatches:
    """Batches of real samples (B, ...) and their labels (B,) from the training rows: shuffled passes,
    whole batches only (a GAN step needs ``batch_size`` samples, a multiple of the packing).

    ``prepare`` maps a batch to what the discriminator sees (images: uint8 -> [-1, 1] floats) on ``device``.
    Its position is part of ``state_dict``, so a resumed run draws the very batches it would have drawn.
    ``share``: data-parallel, this process's rows of every global batch (``GANSteps.share``).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None, batch_size: int, generator: torch.Generator,
                 device: torch.device | str = "cpu", prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 share: slice = slice(None)):
        if len(x) < batch_size:
            raise ValueError(f"{len(x)} training samples are fewer than one batch of {batch_size}")
        self.x, self.y, self.batch_size, self.generator, self.share = x, y, batch_size, generator, share
        self.device, self.prepare = torch.device(device), prepare
        self.order = torch.randperm(len(x), generator=generator, device=generator.device)
        self.position = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.position + self.batch_size > len(self.order):  # a new pass; the rows a pass left over wait for it
            self.order = torch.randperm(len(self.x), generator=self.generator, device=self.generator.device)
            self.position = 0
        index = self.order[self.position : self.position + self.batch_size][self.share]
        self.position += self.batch_size
        xb = self.x[index.to(self.x.device)].to(self.device, non_blocking=True)
        yb = self.y[index.to(self.y.device)].to(self.device, non_blocking=True) if self.y is not None else None
        return (self.prepare(xb) if self.prepare is not None else xb), yb

    def state_dict(self) -> dict:
        return {"order": self.order.cpu(), "position": self.position, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.order, self.position = state["order"].to(self.generator.device), int(state["position"])
        self.generator.set_state(state["generator"])


Evaluate = Callable[[GANSteps], dict[str, float]]  # the networks -> the quality measures, e.g. {"quality": 0.9, "modes": 25}


@dataclass
class GANFit:
    """Everything one GAN run holds; a checkpoint is ``state_dict()`` of this. It is the
    ``TrainingState`` its callbacks see, with one "epoch" per evaluation period."""

    gan: GANSteps
    batches: RealBatches
    evaluate: Evaluate
    steps: int  # generator steps in all
    every: int  # generator steps per evaluation period
    d_steps: int = 1
    conditional: bool = False
    callbacks: CallbackList = field(default_factory=CallbackList)
    epoch: int = 0  # evaluation periods completed
    saved_epoch: int = 0  # the period the checkpoint holds (set by the Checkpoint callback)
    history: list[dict] = field(default_factory=list)
    stop_reason: str | None = None

    @property
    def max_epochs(self) -> int:
        return math.ceil(self.steps / self.every)

    @property
    def step(self) -> int:
        """Generator steps done."""
        return min(self.epoch * self.every, self.steps)

    @property
    def modules(self) -> dict[str, nn.Module]:
        modules = {"generator": self.gan.generator, "discriminator": self.gan.discriminator}
        if self.gan.ema is not None:
            modules["generator_ema"] = self.gan.ema  # what samples are drawn from: kept with the best period too
        return modules

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.gan.opt_g, "discriminator": self.gan.opt_d}

    def request_stop(self, reason: str) -> None:
        self.stop_reason = reason

    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "epoch": self.epoch, "history": json.dumps(self.history), "gan": self.gan.state_dict(),
            "batches": self.batches.state_dict(), "rng": rng, "callbacks": self.callbacks.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.history = state["epoch"], json.loads(state["history"])
        self.saved_epoch = self.epoch
        self.gan.load_state_dict(state["gan"])
        self.batches.load_state_dict(state["batches"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.callbacks.load_state_dict(state["callbacks"])


MEASURED = ("d_loss", "g_loss", "d_real", "d_fake", "g_grad_norm")  # per period, means over its steps


def fit_gan(run: GANFit) -> GANFit:
    """Train from period ``run.epoch + 1`` until ``run.steps`` generator steps or a callback stops it."""
    gan, batches, callbacks, replicas = run.gan, run.batches, run.callbacks, run.gan.replicas
    g_params = [p for p in gan.generator.parameters() if p.requires_grad]
    device = g_params[0].device
    callbacks.on_train_begin(run)
    try:
        for epoch in range(run.epoch + 1, run.max_epochs + 1):
            started = time.perf_counter()
            n = min(run.every, run.steps - (epoch - 1) * run.every)
            sums = torch.zeros(len(MEASURED), device=device)  # summed on the device: no per-step sync
            for _ in range(n):
                # ① The discriminator: d_steps updates, each on a fresh real batch and as many generated samples.
                for _ in range(run.d_steps):
                    real, labels = batches.next()
                    d = gan.d_step(real, labels if run.conditional else None, batches.batch_size)
                # ② The generator: one update, asked for the last real batch's labels (the data's class shares).
                g_loss = gan.g_step(batches.batch_size, labels if run.conditional else None)
                # G's gradients are still in .grad after its step: their norm shows whether D still teaches it.
                g_norm = torch.stack(torch._foreach_norm([p.grad for p in g_params if p.grad is not None])).norm()
                # Data-parallel: the losses and logits are each process's part; G's gradients are the same on every one.
                sums += torch.stack([d.loss, g_loss, d.real, d.fake, g_norm / replicas.size])
                callbacks.on_batch_end(run)

            # ③ Once per period: read the sums, judge the generator, log, let the callbacks decide.
            means = dict(zip(MEASURED, (replicas.sum(sums) / n).tolist(), strict=True))  # the one sync of the period
            if not all(math.isfinite(v) for v in means.values()):
                kept = f"the last good checkpoint (step {run.saved_epoch * run.every}) is kept" if run.saved_epoch else \
                    "no period finished, so there is no checkpoint"
                raise TrainingDiverged(
                    f"the GAN's losses became NaN or infinite before generator step {min(epoch * run.every, run.steps)}; {kept}. "
                    "Lower gan.lr_d and gan.lr_g, raise gan.r1 (e.g. 0.1) or set gan.spectral_norm: true",
                    epoch=epoch, loss=means["d_loss"],
                )
            run.callbacks.on_validation_begin(run)
            try:  # rank 0 judges (the measures draw from their own generators: the random streams stay together)
                quality = replicas.from_rank0(run.evaluate(gan) if replicas.rank == 0 else None)
            finally:
                run.callbacks.on_validation_end(run)
            logs = {"epoch": epoch, "step": min(epoch * run.every, run.steps), **means, **quality,
                    "lr_g": gan.opt_g.param_groups[0]["lr"], "lr_d": gan.opt_d.param_groups[0]["lr"]}
            logs["seconds"] = time.perf_counter() - started
            run.epoch = epoch
            run.history.append(logs)
            callbacks.on_epoch_end(run, logs)
            run.stop_reason = replicas.from_rank0(run.stop_reason)  # decided once: every process stops together
            if run.stop_reason:
                break
        callbacks.on_train_end(run)
    finally:
        callbacks.close()
    return run
