"""One discriminator step and one generator step of a GAN, for a recipe loop to call per batch.

``GANSteps`` holds the two networks, their Adam optimizers, the loss kind and the exponential moving
average of the generator's weights (torch's ``AveragedModel``), which is what ``sample`` draws from:
averaging the generator over its last ~1/(1 - decay) steps smooths out the oscillation of adversarial
training (Yazıcı et al. 2019). The steps return their losses and mean logits as tensors on the
device, so a loop never waits for the device inside an epoch.

Data-parallel (``replicas``, several processes under torchrun): each process steps on its share of
every global batch (``share``: whole packs), draws the noise of the whole global batch and takes its
own rows of it (so every process's random stream stays the one a single process draws from), weights
its share's loss by its part of the batch, and the gradients are summed over the processes
(``Replicas.sum_gradients``) before each optimizer step: every process takes the one-process step.
DistributedDataParallel is not used because it cannot follow these steps (gradients with respect to
the inputs for the penalties, the discriminator run frozen inside the generator's step).

Example:
    >>> from trainwright.config.gan import GANConfig
    >>> from trainwright.models.gan import build_discriminator, build_generator
    >>> cfg = GANConfig(g_hidden=[16], d_hidden=[16])
    >>> gan = GANSteps(build_generator(cfg, (2,)), build_discriminator(cfg, (2,)), cfg)
    >>> d = gan.d_step(torch.randn(8, 2)); g = gan.g_step(8)
    >>> gan.sample(5).shape
    torch.Size([5, 2])
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from trainwright.config.gan import GANConfig
from trainwright.training.distributed import Replicas
from trainwright.training.gan_losses import discriminator_loss, generator_loss, gradient_penalty, r1_penalty
from trainwright.training.gan_rejection import Rejection, acceptance_constants


def adam(params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    """Adam with torch's fused kernel (one pass per tensor) where the parameters allow it, else the default one."""
    params = list(params)
    if all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params):
        try:
            return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
        except (RuntimeError, TypeError):  # a torch without the fused CPU kernel
            pass
    return torch.optim.Adam(params, lr=lr, betas=betas)


class DiscriminatorStep(NamedTuple):
    """What a discriminator step measured, each a 0-d tensor on the device (data-parallel: this process's part,
    weighted by its share of the batch, so that the processes' parts add up to the global batch's)."""

    loss: torch.Tensor  # the loss minimized, penalty included
    real: torch.Tensor  # mean logit on real samples: D's score on the data
    fake: torch.Tensor  # mean logit on generated samples


class GANSteps:
    """A generator and a discriminator with their optimizers, stepped by ``d_step`` and ``g_step``.

    ``n_classes`` > 0 makes both steps class-conditional: ``d_step`` takes the real labels (the fakes are
    asked for the same ones), ``g_step`` draws labels uniformly unless given some. ``total_steps`` (generator
    steps) enables the linear learning-rate decay; ``opt_g``/``opt_d`` replace the default fused Adam.
    ``replicas``: data-parallel, the processes stepping the two networks together (see the module's docstring).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        cfg: GANConfig,
        n_classes: int = 0,
        total_steps: int | None = None,
        opt_g: torch.optim.Optimizer | None = None,
        opt_d: torch.optim.Optimizer | None = None,
        replicas: Replicas | None = None,
    ):
        self.generator, self.discriminator, self.cfg = generator, discriminator, cfg
        self.replicas = replicas or Replicas()
        self.loss, self.gp_weight, self.r1, self.pack = cfg.loss, cfg.gp_weight, cfg.r1, cfg.pack
        self.latent_size, self.n_classes = generator.latent_size, n_classes  # the builders resolve latent_size: auto
        self.opt_g = opt_g if opt_g is not None else adam(generator.parameters(), cfg.lr_g, cfg.betas)
        self.opt_d = opt_d if opt_d is not None else adam(discriminator.parameters(), cfg.lr_d, cfg.betas)
        self.ema = AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True) if cfg.ema else None
        self._d_params, self._g_params = list(discriminator.parameters()), list(generator.parameters())
        self.rejection: Rejection | None = None  # set by calibrate_rejection: sample() then rejects (gan.sample.rejection)
        # Linear decay to 0 over the last (1 - decay_from) of the generator steps: with a constant rate the
        # samples keep circling the modes; a falling one lets them settle (Mimicry's lr_decay="linear").
        self.schedules: list[torch.optim.lr_scheduler.LRScheduler] = []
        if cfg.lr_decay == "linear" and total_steps:
            start = cfg.decay_from * total_steps

            def factor(step: int) -> float:
                return 1.0 if step < start else max(0.0, (total_steps - step) / (total_steps - start))

            self.schedules = [torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in (self.opt_g, self.opt_d)]

    def noise(self, n: int, device: torch.device | str | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Latent noise z ~ N(0, I), (n, latent_size)."""
        device = device if device is not None else next(self.generator.parameters()).device
        return torch.randn(n, self.latent_size, device=device, generator=generator)

    def random_labels(
        self, n: int, device: torch.device | str | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor | None:
        """Uniform class labels (n,) for a conditional GAN, None for an unconditional one."""
        if not self.n_classes:
            return None
        device = device if device is not None else next(self.generator.parameters()).device
        return torch.randint(self.n_classes, (n,), device=device, generator=generator)

    def share(self, batch_size: int) -> slice:
        """This process's samples of a global batch of ``batch_size``: whole packs, the shares of the processes
        differing by at most one pack (one process: every usable sample)."""
        packs, rank, size = batch_size // self.pack, self.replicas.rank, self.replicas.size
        return slice(packs * rank // size * self.pack, packs * (rank + 1) // size * self.pack)

    def d_step(self, real: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int | None = None) -> DiscriminatorStep:
        """One update of the discriminator on a batch of real samples (B, ...) and as many generated ones.
        Data-parallel: ``real`` is this process's share (``share(batch_size)``) of a global batch of ``batch_size``."""
        batch_size = batch_size or real.shape[0]
        usable, mine = batch_size - batch_size % self.pack, self.share(batch_size)  # whole packs only
        n = mine.stop - mine.start
        real, labels = real[:n], (labels[:n] if labels is not None else None)
        part = n / usable  # of the global batch's mean loss
        with torch.no_grad():  # no graph through G: its weights do not change in this step
            fake = self.generator(self.noise(usable, real.device)[mine], labels)  # the global batch's noise, our rows
        if self.r1:  # the penalty needs the gradient with respect to the real samples
            real = real.detach().requires_grad_(True)
        d_real, d_fake = self.discriminator(real, labels), self.discriminator(fake, labels)  # (n // pack,) each
        loss = discriminator_loss(self.loss, d_real, d_fake)
        if self.loss == "wgan_gp":
            alpha = torch.rand(usable, *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)[mine]  # (n, 1, ...)
            loss = loss + self.gp_weight * gradient_penalty(self.discriminator, real, fake, labels, self.pack, alpha)
        if self.r1:
            loss = loss + self.r1 / 2 * r1_penalty(d_real, real, self.pack)
        self.opt_d.zero_grad(set_to_none=True)
        (loss * part).backward()
        self.replicas.sum_gradients(self._d_params)  # data-parallel: the global batch's gradient on every process
        self.opt_d.step()
        return DiscriminatorStep(loss.detach() * part, d_real.detach().mean() * part, d_fake.detach().mean() * part)

    def g_step(self, batch_size: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """One update of the generator on ``batch_size`` generated samples; updates the moving average. Returns the loss
        (data-parallel: this process's part of it; ``labels``, when given, are its share's, as ``d_step``'s)."""
        usable, mine = batch_size - batch_size % self.pack, self.share(batch_size)
        n = mine.stop - mine.start
        device = next(self.generator.parameters()).device
        if labels is None:
            labels = self.random_labels(usable, device)
            labels = labels[mine] if labels is not None else None
        else:
            labels = labels[:n]
        for param in self._d_params:  # D's weight gradients are not needed here: skip computing them
            param.requires_grad_(False)
        try:
            fake = self.generator(self.noise(usable, device)[mine], labels)  # the global batch's noise, our rows
            loss = generator_loss(self.loss, self.discriminator(fake, labels)) * (n / usable)
            self.opt_g.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            for param in self._d_params:
                param.requires_grad_(True)
        self.replicas.sum_gradients(self._g_params)
        self.opt_g.step()
        if self.ema is not None:
            self.ema.update_parameters(self.generator)
        for schedule in self.schedules:
            schedule.step()
        return loss.detach()

    @torch.no_grad()
    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        ema: bool = True,
        generator: torch.Generator | None = None,
        rejection: bool = True,
    ) -> torch.Tensor:
        """``n`` samples (n, ...) from the moving average (or the live generator), in eval mode; ``generator`` seeds z.
        Once ``calibrate_rejection`` has run, the samples are those its discriminator accepts (``rejection=False``:
        the generator's own).

        Example: ``gan.sample(100, labels=torch.full((100,), 3))`` draws 100 samples of class 3.
        """
        if rejection and self.rejection is not None:
            def draw(k: int, asked: torch.Tensor | None) -> torch.Tensor:
                return self.sample(k, asked, ema, generator, rejection=False)

            return self.rejection.sample(draw, n, labels if labels is not None else self.random_labels(n, None, generator),
                                         generator)
        model = self.ema.module if ema and self.ema is not None else self.generator
        device = next(model.parameters()).device
        if labels is None:
            labels = self.random_labels(n, device, generator)
        was_training = model.training
        model.eval()  # BatchNorm uses its running statistics: a sample does not depend on its batch
        try:
            return model(self.noise(n, device, generator), labels)
        finally:
            model.train(was_training)

    def calibrate_rejection(
        self,
        real_batches: Callable[[], tuple[torch.Tensor, torch.Tensor | None]],
        steps: int,
        quantile: float,
        ema: bool = True,
        burn_in: int = 10_000,
        lr: float | None = None,
    ) -> Rejection:
        """Discriminator Rejection Sampling's calibration (``training/gan_rejection.py``): a copy of the discriminator
        trained ``steps`` more steps (logistic loss, Adam at ``lr``, default ``lr_d``) to tell ``real_batches()``
        (real samples (B, ...), labels or None) from the generator that ``sample`` draws from, which stays fixed;
        then M and gamma from a burn-in of ``burn_in`` samples. Sets ``self.rejection`` and returns it."""
        if self.pack != 1:
            raise ValueError("rejection sampling scores single samples: it needs gan.pack 1")
        discriminator = copy.deepcopy(self.discriminator).train()
        optimizer = adam(discriminator.parameters(), lr or self.cfg.lr_d, self.cfg.betas)
        self.rejection = None
        for _ in range(steps):
            real, labels = real_batches()
            labels = labels if self.n_classes else None
            fake = self.sample(len(real), labels, ema, rejection=False)
            loss = discriminator_loss("non_saturating", discriminator(real, labels), discriminator(fake, labels))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        discriminator.eval()
        for param in discriminator.parameters():
            param.requires_grad_(False)
        with torch.no_grad():
            labels = self.random_labels(burn_in)
            logits = discriminator(self.sample(burn_in, labels, ema, rejection=False), labels)  # (burn_in,)
        self.rejection = Rejection(discriminator, *acceptance_constants(logits, quantile))
        return self.rejection

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint needs to resume: both networks, both optimizers, the moving average."""
        state = {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        if self.schedules:
            state["schedules"] = [schedule.state_dict() for schedule in self.schedules]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        for schedule, schedule_state in zip(self.schedules, state.get("schedules", [])):
            schedule.load_state_dict(schedule_state)
