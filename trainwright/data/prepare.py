"""The data stage's one entry point, whatever the modality, and loading its state back.

Every modality's prepare function returns an object with the same shape (see ``Prepared``):
device-agnostic tensors for train/val/test, the fitted preprocessor, the task, one example's
input shape, a JSON summary (the run's data.json) and console lines. Its preprocessor writes
``preprocessor.json`` with a ``modality`` key, which is how a run directory is read back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import torch

from trainwright.config import DataConfig
from trainwright.data.tabular import TabularPreprocessor, prepare_tabular
from trainwright.errors import TrainwrightError


class Prepared(Protocol):
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    preprocessor: TabularPreprocessor
    task: str
    name: str
    held_out: bool
    summary: dict

    @property
    def input_shape(self) -> tuple[int, ...]: ...

    def report_lines(self) -> list[str]: ...


def prepare_data(cfg: DataConfig) -> Prepared:
    """Load, clean, split and preprocess what ``cfg.source`` names.

    Example:
        >>> data = prepare_data(DataConfig(source="iris"))
        >>> data.input_shape, data.task
        ((4,), 'multiclass')
    """
    return prepare_tabular(cfg)


PREPROCESSORS = {"tabular": TabularPreprocessor}


def load_preprocessor(directory: Path) -> TabularPreprocessor:
    """The fitted preprocessor saved in a run directory, of whatever modality it was."""
    try:
        facts = json.loads((Path(directory) / "preprocessor.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise TrainwrightError(f"{directory} has no readable preprocessor.json; it is not a finished trainwright run") from None
    modality = facts.get("modality", "tabular")
    if modality not in PREPROCESSORS:
        raise TrainwrightError(f"{directory} was written for {modality!r} data, which this version of trainwright cannot read")
    return PREPROCESSORS[modality].load(Path(directory))
