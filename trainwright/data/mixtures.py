"""The built-in 2-D Gaussian mixtures of the mode-collapse benchmark, as in PacGAN's protocol.

``ring``: 8 Gaussians evenly spaced on a circle of radius 1, std 0.01; ``grid``: 25 Gaussians at
{-4, -2, 0, 2, 4}^2, std 0.05; equal weights (fjxmlzn/PacGAN: synthetic_data_experiments/2DRing_GAN&PacGAN/config.py
and 2DGrid_GAN&PacGAN/config.py). Samples are drawn fresh from a seeded ``torch.Generator``, so a run
sees an endless, repeatable stream.

Example:
    >>> points = MIXTURES["ring"].sample(1000, seed=0)
    >>> points.shape, round(float(points.norm(dim=1).mean()), 2)
    (torch.Size([1000, 2]), 1.0)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Mixture:
    """An equal-weight mixture of isotropic Gaussians with a common standard deviation."""

    name: str
    means: torch.Tensor  # (K, 2)
    std: float

    def sample(self, n: int, seed: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` points (n, 2): a uniformly drawn mode plus N(0, std^2 I) noise each.

        Example:
            >>> MIXTURES["grid"].sample(3, seed=1).shape
            torch.Size([3, 2])
        """
        return self.labelled(n, seed, generator)[0]

    def labelled(
        self, n: int, seed: int | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` points (n, 2) and the index of the mode each was drawn from (n,).

        Example:
            >>> points, modes = MIXTURES["ring"].labelled(4, seed=0)
            >>> points.shape, modes.shape
            (torch.Size([4, 2]), torch.Size([4]))
        """
        if generator is None:
            generator = torch.Generator().manual_seed(0 if seed is None else seed)
        modes = torch.randint(len(self.means), (n,), generator=generator)  # (n,)
        return self.means[modes] + self.std * torch.randn(n, 2, generator=generator), modes

    def batches(self, batch_size: int, seed: int = 0) -> Iterator[torch.Tensor]:
        """An endless stream of fresh batches (batch_size, 2) from one seeded generator.

        Example:
            >>> next(MIXTURES["ring"].batches(100, seed=0)).shape
            torch.Size([100, 2])
        """
        generator = torch.Generator().manual_seed(seed)
        while True:
            yield self.sample(batch_size, generator=generator)


def ring(modes: int = 8, radius: float = 1.0, std: float = 0.01) -> Mixture:
    """``modes`` Gaussians evenly spaced on a circle, the first at (radius, 0)."""
    angles = torch.arange(modes, dtype=torch.float64) * 2 * math.pi / modes
    means = radius * torch.stack([angles.cos(), angles.sin()], dim=1)
    return Mixture("ring", means.float(), std)


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> Mixture:
    """``side`` x ``side`` Gaussians on a square grid centred on the origin, ``spacing`` apart."""
    coords = [spacing * (index - (side - 1) / 2) for index in range(side)]  # -4, -2, 0, 2, 4
    means = torch.tensor(list(itertools.product(coords, coords)), dtype=torch.float32)
    return Mixture("grid", means, std)


MIXTURES: dict[str, Mixture] = {"ring": ring(), "grid": grid()}
