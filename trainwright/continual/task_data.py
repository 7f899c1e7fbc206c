"""One task's splits in the shape the shared recipe stages take (``SplitData``): the loop, the
estimate, the run directory and the finish stage read tensors, a preprocessor, a task and a summary.

A continual recipe makes one per task (and one for the whole updated model), from tensors it has
already cut and preprocessed, with the input shape given rather than read from a preprocessor.

Example:
    >>> import torch
    >>> x, y = torch.zeros(4, 64), torch.zeros(4, dtype=torch.long)
    >>> data = TaskData(x, y, x, y, x, y, None, "multiclass", "task 2", True, {}, shape=(64,))
    >>> data.input_shape, data.task
    ((64,), 'multiclass')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trainwright.data.split import SplitData


@dataclass(frozen=True)
class TaskData(SplitData):
    """``SplitData`` with the model's input shape and (images) the training batches' augmentation given."""

    shape: tuple[int, ...] = ()
    train_transform: Any = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.shape

    def report_lines(self) -> list[str]:
        return []
