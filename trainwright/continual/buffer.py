"""The replay buffer: a fixed number of old training rows, balanced over the classes, saved as safetensors.

Rows are chosen reproducibly: after each task, every class that received new rows gets its
candidates (rows kept before + new rows) in a random order drawn from ``(seed, update)``; a
class keeps the first rows of its order up to its quota. Classes without new rows keep their
order, so a shrinking quota drops the rows chosen last and never reshuffles the old choice.

Example:
    >>> buffer = ReplayBuffer(size=20, seed=0)
    >>> buffer.add(torch.randn(100, 4), torch.arange(100) % 2)
    >>> buffer.y.bincount().tolist()
    [10, 10]
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from trainwright.errors import TrainwrightError
from trainwright.files import atomic_path


def balanced_quota(counts: torch.Tensor, capacity: int) -> torch.Tensor:
    """Rows to keep per class: as equal as the classes allow, summing to ``min(capacity, counts.sum())``.

    A class with fewer rows than its equal share keeps all of them and its spare goes to the
    others (water-filling); a remainder goes one row each to the lowest classes with rows left.

    Example:
        >>> balanced_quota(torch.tensor([50, 3, 50]), 20).tolist()
        [9, 3, 8]
    """
    counts = counts.long()
    quota = torch.zeros_like(counts)
    remaining = min(capacity, int(counts.sum()))
    while remaining > 0:  # at most one pass per class
        open_ = quota < counts
        each = remaining // int(open_.sum())
        if each == 0:  # fewer rows left than open classes: one each, lowest class first
            quota[open_.nonzero().squeeze(1)[:remaining]] += 1
            break
        add = torch.minimum(counts - quota, torch.full_like(counts, each)) * open_
        quota += add
        remaining -= int(add.sum())
    return quota


class ReplayBuffer:
    """Old training rows x (N, *features) and labels y (N,), ``size`` rows or a ``share`` of the old rows."""

    def __init__(self, size: int | None = None, share: float | None = None, seed: int = 0):
        if (size is None) == (share is None):
            raise ValueError("give a replay buffer size (rows) or a share of the old data, one of them")
        self.size, self.share, self.seed = size, share, seed
        self.x: torch.Tensor | None = None
        self.y: torch.Tensor | None = None
        self.seen_rows = 0  # old training rows offered so far (the base of `share`)
        self.updates = 0

    def __len__(self) -> int:
        return 0 if self.y is None else len(self.y)

    def capacity(self, old_rows: int) -> int:
        """Rows the buffer holds once ``old_rows`` old training rows exist; too many rows is a user error."""
        if self.share is not None:
            return max(1, int(self.share * old_rows))  # floor: at most `share` of the old data
        if self.size > old_rows:
            raise TrainwrightError(
                f"the replay buffer of {self.size} rows is larger than the old training data ({old_rows} rows); "
                f"set continual.replay.size to at most {old_rows}, or continual.replay.share (e.g. 0.1) for a share of the "
                "old rows"
            )
        return self.size

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Offer a finished task's training rows; the buffer keeps a class-balanced subset of old and new."""
        capacity = self.capacity(self.seen_rows + len(y))
        pool_x = x if self.x is None else torch.cat([self.x, x.to(self.x.device)])
        pool_y = y if self.y is None else torch.cat([self.y, y.to(self.y.device)])
        # A sort key per pool row in [class, class + 1): kept rows of untouched classes keep their order,
        # classes with new rows get a fresh random order over old and new together.
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.updates)
        key = torch.arange(len(pool_y), dtype=torch.float64) / len(pool_y)
        fresh = torch.isin(pool_y, y.to(pool_y.device).unique()).cpu()
        key[fresh] = torch.rand(int(fresh.sum()), generator=generator, dtype=torch.float64)
        order = torch.argsort(pool_y.cpu().double() + key)  # by class, then key
        sorted_y = pool_y.cpu()[order]
        counts = torch.bincount(sorted_y)
        first = torch.cumsum(counts, 0) - counts  # (classes,) position of each class's first row
        rank = torch.arange(len(sorted_y)) - first[sorted_y]
        keep = order[rank < balanced_quota(counts, capacity)[sorted_y]]
        self.x, self.y = pool_x[keep.to(pool_x.device)], pool_y[keep.to(pool_y.device)]
        self.seen_rows += len(y)
        self.updates += 1

    def sample(self, rows: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``rows`` buffered rows drawn uniformly with replacement: x (rows, *features), y (rows,)."""
        index = torch.randint(len(self), (rows,), generator=generator, device=generator.device)
        index = index.to(self.y.device)
        return self.x[index], self.y[index]

    def to(self, device: torch.device | str) -> ReplayBuffer:
        """Move the buffered rows to ``device`` (where the training batches are); returns self."""
        if self.y is not None:
            self.x, self.y = self.x.to(device), self.y.to(device)
        return self

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """(tensors, metadata) of a safetensors file: the rows x, y on the CPU and the settings as JSON."""
        meta = {"size": self.size, "share": self.share, "seed": self.seed, "seen_rows": self.seen_rows, "updates": self.updates}
        tensors = {} if self.y is None else {"x": self.x.detach().cpu().contiguous(), "y": self.y.detach().cpu().contiguous()}
        return tensors, {"replay": json.dumps(meta)}

    def save(self, path: str | Path) -> None:
        """Write the rows (x, y) and the settings to one safetensors file, atomically (a run writes it through RunDir)."""
        tensors, metadata = self.state()
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)

    @classmethod
    def load(cls, path: str | Path) -> ReplayBuffer:
        """The buffer saved at ``path``; adding rows to it continues the same reproducible choice."""
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = json.loads(f.metadata()["replay"])
                tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
        except (OSError, KeyError, json.JSONDecodeError, SafetensorError) as error:
            raise TrainwrightError(f"{path} is not a replay buffer ({error}); train with strategy: replay to write one"
                                   ) from error
        buffer = cls(meta["size"], meta["share"], meta["seed"])
        buffer.seen_rows, buffer.updates = meta["seen_rows"], meta["updates"]
        buffer.x, buffer.y = tensors.get("x"), tensors.get("y")
        return buffer
