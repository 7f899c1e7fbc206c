"""Discriminator Rejection Sampling (Azadi et al. 2019): keep a generated sample with a probability that its
discriminator's logit gives, so samples where the data are not (between the modes of a mixture) are dropped.

A discriminator trained to optimality against a fixed generator has the logit log(p_data(x) / p_g(x)), so
accepting x with probability exp(logit - M) (M the largest logit) turns the generator's samples into the
data's distribution: classic rejection sampling. The discriminator at the end of adversarial training is
not optimal for the generator that is sampled (the moving average, in eval mode), so a copy of it is first
trained further against that very generator (``GANSteps.calibrate_rejection``, G frozen). The acceptance
follows the paper: F(x) = d - log(1 - exp(d - eps)) - gamma with d = logit - M, accepted with probability
sigmoid(F(x)); M is the largest logit over a burn-in of samples and gamma shifts F so that a chosen share of
the burn-in (``quantile``) has F <= 0, which trades exactness for the acceptance rate.

This is a sampling-time method: the generator is unchanged, and every sample costs 1 / (acceptance rate)
draws and a discriminator pass.

Example:
    >>> from torch import nn
    >>> d = nn.Linear(2, 1)
    >>> r = Rejection(lambda x, labels=None: d(x).squeeze(1), max_logit=1.0, gamma=0.0)
    >>> r.accept_probability(torch.tensor([1.0, -20.0])).round(decimals=3)
    tensor([1., 0.])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

EPSILON = 1e-6  # keeps log(1 - exp(d - eps)) finite at the largest logit (the paper's epsilon)
MAX_ROUNDS = 1000  # draws per requested sample at most; past it the last candidates are kept (an acceptance near 0)


@dataclass
class Rejection:
    """A calibrated discriminator (samples (B, ...) [, labels] -> logits (B,)) and the constants of the acceptance."""

    discriminator: Callable[..., torch.Tensor]
    max_logit: float  # M: the largest logit over the burn-in
    gamma: float  # the shift of F(x)
    acceptance: float = float("nan")  # the burn-in's mean acceptance probability, for the report

    def accept_probability(self, logits: torch.Tensor) -> torch.Tensor:
        """sigmoid(F(x)) for logits (N,) -> (N,) in [0, 1]."""
        delta = (logits - self.max_logit).clamp(max=0.0)  # a logit above the burn-in's largest is accepted as it
        f = delta - torch.log1p(-torch.exp(delta - EPSILON)) - self.gamma
        return torch.sigmoid(f)

    @torch.no_grad()
    def sample(
        self,
        draw: Callable[[int, torch.Tensor | None], torch.Tensor],
        n: int,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``n`` accepted samples (n, ...): ``draw(k, labels)`` makes k candidates (with those labels); every position
        still empty gets a new candidate each round, kept with its acceptance probability (uniforms from ``generator``)."""
        out: torch.Tensor | None = None
        missing: torch.Tensor | None = None  # (m,) positions of ``out`` still to fill
        for _ in range(MAX_ROUNDS):
            asked = labels if missing is None or labels is None else labels[missing]
            candidates = draw(n if missing is None else len(missing), asked)  # (m, ...)
            logits = self.discriminator(candidates, asked) if asked is not None else self.discriminator(candidates)
            uniform = torch.rand(len(candidates), generator=generator, device=generator.device if generator else None)
            keep = uniform.to(logits.device) < self.accept_probability(logits)  # (m,)
            if out is None:
                out, missing = candidates.clone(), torch.arange(n, device=candidates.device)
            out[missing[keep]] = candidates[keep]
            missing = missing[~keep]
            if not len(missing):
                break
        return out


def acceptance_constants(logits: torch.Tensor, quantile: float) -> tuple[float, float, float]:
    """M, gamma and the mean acceptance probability from burn-in logits (N,): gamma is the ``quantile`` of F(x)
    before the shift (0: no shift, the paper's exact rejection up to epsilon).

    Example:
        >>> m, gamma, rate = acceptance_constants(torch.tensor([0.0, 1.0, 2.0, 3.0]), 0.5)
        >>> m, round(gamma, 2)
        (3.0, -1.2)
    """
    logits = logits.detach().float().cpu()
    m = float(logits.max())
    delta = logits - m
    f = delta - torch.log1p(-torch.exp(delta - EPSILON))
    gamma = float(torch.quantile(f, quantile)) if quantile > 0 else 0.0
    rate = float(torch.sigmoid(f - gamma).mean())
    return m, gamma, rate
