"""Mini-batches sliced from tensors that already live on the training device.

One gather per epoch (``x[perm]``) and then contiguous views: no DataLoader, no per-sample
Python, no host-to-device copies in the hot loop. Data larger than ``WHOLE_GATHER_BYTES`` (a
memory-mapped image cache) is gathered batch by batch instead, so an epoch never copies it whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

WHOLE_GATHER_BYTES = 1 << 30


class TensorBatches:
    """Shuffled (or ordered) batches over device-resident ``x`` (N, ...) and ``y`` (N, ...).

    ``batch_size`` is an int (1 = stochastic gradient descent) or ``"full"`` (full-batch).
    ``transform``, when given, maps each batch's ``x`` (image augmentation on the device); use it
    for training batches only.

    Example:
        >>> batches = TensorBatches(torch.randn(10, 3), torch.zeros(10), batch_size=4)
        >>> [len(xb) for xb, _ in batches.epoch(torch.Generator().manual_seed(0))]
        [4, 4, 2]
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor | tuple[torch.Tensor, ...],  # a tuple travels together: (labels, teacher outputs)
        batch_size: int | str,
        drop_singleton: bool = False,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        self.x, self.y = x, y
        self.transform = transform
        self.n = len(x)
        self.batch_size = self.n if batch_size == "full" else min(int(batch_size), self.n)
        # BatchNorm cannot normalise a batch of one sample in training mode.
        self.drop_singleton = drop_singleton and self.n > 1

    def __len__(self) -> int:
        steps, rest = divmod(self.n, self.batch_size)
        return steps + (1 if rest and not (self.drop_singleton and rest == 1) else 0)

    @property
    def rows(self) -> int:
        """Rows an epoch yields: ``n``, less a trailing single row that batch norm cannot take."""
        return self.n - 1 if self.drop_singleton and self.n % self.batch_size == 1 else self.n

    def epoch(self, generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield the batches of one epoch, shuffled with ``generator`` when one is given."""
        x, y = self.x, self.y
        perm = None
        if generator is not None and self.batch_size < self.n:
            perm = torch.randperm(self.n, generator=generator, device=generator.device)
            if perm.device != x.device:
                perm = perm.to(x.device)
            if x.element_size() * x.numel() <= WHOLE_GATHER_BYTES:
                x, y, perm = x[perm], _take(y, perm), None
        for start in range(0, self.n, self.batch_size):
            if self.drop_singleton and self.n - start == 1:
                break
            rows = slice(start, start + self.batch_size) if perm is None else perm[start : start + self.batch_size]
            xb, yb = x[rows], _take(y, rows)
            yield (xb if self.transform is None else self.transform(xb)), yb


def _take(y: torch.Tensor | tuple[torch.Tensor, ...], rows) -> torch.Tensor | tuple[torch.Tensor, ...]:
    return tuple(t[rows] for t in y) if isinstance(y, tuple) else y[rows]
