"""Mini-batches sliced from tensors that already live on the training device.

One gather per epoch (``x[perm]``) and then contiguous views: no DataLoader, no per-sample
Python, no host-to-device copies in the hot loop. Data larger than ``WHOLE_GATHER_BYTES`` (a
memory-mapped image cache) is gathered batch by batch instead, so an epoch never copies it whole.

When the training data does not fit on the device, ``StreamedBatches`` keeps it on the host and
DataLoader workers gather each batch (same order as ``TensorBatches`` for the same generator),
into pinned memory, copied to the device without blocking. ``make_batches`` picks one.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset

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
        self.device = x.device  # where the batches arrive (StreamedBatches: the training device, not x's)
        self.transform = transform
        self.n = len(x)
        self.batch_size = self.n if batch_size == "full" else min(int(batch_size), self.n)
        # BatchNorm cannot normalise a batch of one sample in training mode.
        self.drop_singleton = drop_singleton and self.n > 1
        self.part, self.parts = 0, 1  # data-parallel: this process's share of each global batch (``shard``)

    def shard(self, part: int, parts: int) -> TensorBatches:
        """Yield only share ``part`` of ``parts`` of each global batch (contiguous; sizes differ by at most a
        row), drawn from the same shuffle as one process draws; ``len``, ``batch_size`` and ``rows`` stay global.

        Example:
            >>> batches = TensorBatches(torch.arange(10.0)[:, None], torch.zeros(10), batch_size=4).shard(1, 2)
            >>> [xb.flatten().tolist() for xb, _ in batches.epoch()]
            [[2.0, 3.0], [6.0, 7.0], [9.0]]
        """
        self.part, self.parts = part, parts
        return self

    def __len__(self) -> int:
        steps, rest = divmod(self.n, self.batch_size)
        return steps + (1 if rest and not (self.drop_singleton and rest == 1) else 0)

    @property
    def rows(self) -> int:
        """Rows an epoch yields: ``n``, less a trailing single row that batch norm cannot take."""
        return self.n - 1 if self.drop_singleton and self.n % self.batch_size == 1 else self.n

    def epoch(self, generator: torch.Generator | None = None, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield the batches of one epoch, shuffled with ``generator`` when one is given, from batch
        ``start`` on (a resumed epoch: the shuffle is drawn as before, the first batches are not built)."""
        x, y = self.x, self.y
        perm = self._permutation(generator)
        if perm is not None and self.parts == 1 and x.element_size() * x.numel() <= WHOLE_GATHER_BYTES:
            x, y, perm = x[perm], _take(y, perm), None
        for rows in self._batch_rows(perm, start):
            xb, yb = x[rows], _take(y, rows)
            yield (xb if self.transform is None else self.transform(xb)), yb

    def _permutation(self, generator: torch.Generator | None) -> torch.Tensor | None:
        if generator is None or self.batch_size >= self.n:
            return None
        perm = torch.randperm(self.n, generator=generator, device=generator.device)
        return perm if perm.device == self.x.device else perm.to(self.x.device)

    def _batch_rows(self, perm: torch.Tensor | None, first: int = 0) -> Iterator[slice | torch.Tensor]:
        for start in range(first * self.batch_size, self.n, self.batch_size):
            if self.drop_singleton and self.n - start == 1:
                break
            rows = min(self.batch_size, self.n - start)  # the global batch; this process takes its share of it
            lo, hi = start + rows * self.part // self.parts, start + rows * (self.part + 1) // self.parts
            yield slice(lo, hi) if perm is None else perm[lo:hi]


class StreamedBatches(TensorBatches):
    """The same batches, in the same order, for host-resident data that does not fit on ``device``.

    DataLoader workers gather each batch (one indexed read of a memory-mapped cache, not one call
    per sample) into pinned memory when the device is a GPU; the copy to the device does not block,
    so it overlaps the previous step.

    Example:
        >>> batches = StreamedBatches(torch.randn(10, 3), torch.zeros(10), 4, device=torch.device("cpu"), workers=0)
        >>> [len(xb) for xb, _ in batches.epoch(torch.Generator().manual_seed(0))]
        [4, 4, 2]
    """

    def __init__(self, x, y, batch_size, drop_singleton=False, transform=None, *, device: torch.device, workers: int = 2):
        super().__init__(x, y, batch_size, drop_singleton, transform)
        self.device, self.workers = device, workers

    def epoch(self, generator: torch.Generator | None = None, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        perm = self._permutation(generator)
        loader = DataLoader(
            _Rows(self.x, self.y), sampler=list(self._batch_rows(perm, start)), batch_size=None,  # one item = one batch
            num_workers=self.workers, pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(0),  # its worker seeds; else it draws from the global RNG (dropout's)
            worker_init_fn=_ignore_interrupts,
        )
        for xb, yb in loader:
            xb = xb.to(self.device, non_blocking=True)
            yb = (
                tuple(t.to(self.device, non_blocking=True) for t in yb)
                if isinstance(yb, (tuple, list))
                else yb.to(self.device, non_blocking=True)
            )
            yield (xb if self.transform is None else self.transform(xb)), yb


def _ignore_interrupts(worker: int) -> None:
    """Ctrl-C reaches the whole process group: workers leave it to the main process, which writes a
    checkpoint at the next batch boundary and stops them (a worker that died first would fail that step)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Rows(Dataset):
    """Indexed by a whole batch of rows (a slice or an index tensor)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor | tuple[torch.Tensor, ...]):
        self.x, self.y = x, y

    def __getitem__(self, rows):
        return self.x[rows], _take(self.y, rows)


def make_batches(
    x: torch.Tensor,
    y: torch.Tensor | tuple[torch.Tensor, ...],
    batch_size: int | str,
    device: torch.device,
    placement: str = "auto",
    workers: int = 2,
    drop_singleton: bool = False,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> TensorBatches:
    """Device-resident batches when the data fits on ``device`` (or ``placement`` says so), else streamed ones."""
    if placement == "stream" or (placement == "auto" and not fits_on(device, x)):
        return StreamedBatches(x, y, batch_size, drop_singleton, transform, device=device, workers=workers)
    y = tuple(t.to(device) for t in y) if isinstance(y, tuple) else y.to(device)
    return TensorBatches(x.to(device), y, batch_size, drop_singleton, transform)


def fits_on(device: torch.device, x: torch.Tensor) -> bool:
    """The host always holds what it already holds; a GPU takes data up to half its free memory."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return x.element_size() * x.numel() <= free // 2


def _take(y: torch.Tensor | tuple[torch.Tensor, ...], rows) -> torch.Tensor | tuple[torch.Tensor, ...]:
    return tuple(t[rows] for t in y) if isinstance(y, tuple) else y[rows]
