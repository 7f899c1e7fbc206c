"""GAN losses on raw discriminator logits: non-saturating, hinge, and Wasserstein with gradient penalty.

Each discriminator loss takes the logits on real and on generated samples, (N,) each, and returns a
scalar to minimize; each generator loss takes the logits on generated samples. Working on logits
(softplus instead of log(sigmoid)) avoids the saturation of sigmoid + BCE that stalls DCGAN runs
(soumith/ganhacks#36).

Example:
    >>> real, fake = torch.tensor([2.0, 3.0]), torch.tensor([-2.0, -1.0])
    >>> round(float(discriminator_loss("hinge", real, fake)), 3), round(float(generator_loss("hinge", fake)), 3)
    (0.0, 1.5)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

LossKind = Literal["non_saturating", "hinge", "wgan_gp"]


def discriminator_loss(kind: LossKind, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss on logits ``real`` and ``fake`` (N,), without any gradient penalty.

    non_saturating: -log sigmoid(real) - log(1 - sigmoid(fake)), the BCE of Goodfellow et al. 2014;
    hinge: relu(1 - real) + relu(1 + fake) (Lim & Ye 2017, SNGAN); wgan_gp: fake - real (Gulrajani et al. 2017).

    Example:
        >>> float(discriminator_loss("wgan_gp", torch.tensor([1.0]), torch.tensor([3.0])))
        2.0
    """
    if kind == "non_saturating":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return fake.mean() - real.mean()


def generator_loss(kind: LossKind, fake: torch.Tensor) -> torch.Tensor:
    """The generator's loss on the discriminator's logits for generated samples (N,).

    non_saturating: -log sigmoid(fake), the strong-gradient variant of the minimax loss; hinge and
    wgan_gp: -fake.

    Example:
        >>> round(float(generator_loss("non_saturating", torch.tensor([0.0]))), 4)
        0.6931
    """
    if kind == "non_saturating":
        return F.softplus(-fake).mean()
    return -fake.mean()


def gradient_penalty(
    discriminator: Callable[..., torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    labels: torch.Tensor | None = None,
    pack: int = 1,
    alpha: torch.Tensor | None = None,
) -> torch.Tensor:
    """WGAN-GP's penalty: mean of (||grad_x D(x)|| - 1)^2 at random points x between real and fake samples.

    ``real`` and ``fake`` are (B, ...) with the same labels; with packing, one logit depends on ``pack``
    consecutive samples and the norm is taken over the gradient of the whole pack. ``alpha`` (B, 1, ...):
    where between them, uniform in [0, 1) (drawn here by default).

    Example:
        >>> d = torch.nn.Linear(2, 1, bias=False)
        >>> _ = d.weight.data.copy_(torch.tensor([[3.0, 4.0]]))  # gradient norm 5 everywhere
        >>> float(gradient_penalty(lambda x, y=None: d(x).squeeze(1), torch.zeros(4, 2), torch.ones(4, 2)).detach())
        16.0
    """
    if alpha is None:
        alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)  # (B, 1, ...)
    between = torch.lerp(real.detach(), fake.detach(), alpha).requires_grad_(True)
    logits = discriminator(between, labels) if labels is not None else discriminator(between)  # (B // pack,)
    (grad,) = torch.autograd.grad(logits.sum(), between, create_graph=True)  # (B, ...)
    norms = grad.reshape(grad.shape[0] // pack, -1).norm(dim=1)  # (B // pack,)
    return (norms - 1).square().mean()


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor, pack: int = 1) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): mean squared norm of grad_x D(x) on the real samples ``real`` (B, ...), per pack.

    ``real_logits`` (B // pack,) must come from ``real`` with ``requires_grad``, so the discriminator's forward
    pass on the real batch serves both its loss and this penalty. Penalizing the slope on the data damps
    the circling of the two players around the equilibrium, so the generator settles onto the data.

    Example:
        >>> d = torch.nn.Linear(2, 1, bias=False)
        >>> _ = d.weight.data.copy_(torch.tensor([[3.0, 4.0]]))
        >>> x = torch.zeros(4, 2, requires_grad=True)
        >>> float(r1_penalty(d(x).squeeze(1), x).detach())
        25.0
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)  # (B, ...)
    return grad.reshape(grad.shape[0] // pack, -1).square().sum(dim=1).mean()
