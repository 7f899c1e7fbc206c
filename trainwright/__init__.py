"""trainwright: the whole training process of a deep learning model, done properly, on PyTorch.

Example:
    >>> import trainwright as tw
    >>> run = tw.train("examples/digits.yaml")
    >>> run.metrics["test"]["accuracy"]
    >>> model = tw.load(run.dir)
    >>> model.predict(frame)

Names load on first use, so ``import trainwright`` and ``trainwright --help`` stay quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "Config": "trainwright.config",
    "load_config": "trainwright.config",
    "TrainwrightError": "trainwright.errors",
    "TrainingDiverged": "trainwright.errors",
    "Run": "trainwright.pipeline",
    "train": "trainwright.pipeline",
    "estimate": "trainwright.pipeline",
    "Estimate": "trainwright.compute",
    "TrainedModel": "trainwright.runs",
    "load": "trainwright.runs",
}
__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from trainwright.config import Config, load_config
    from trainwright.errors import TrainingDiverged, TrainwrightError
    from trainwright.compute import Estimate
    from trainwright.pipeline import Run, estimate, train
    from trainwright.runs import TrainedModel, load


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'trainwright' has no attribute {name!r}")
