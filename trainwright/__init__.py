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
    "load_config": "trainwright.configure",
    "TrainwrightError": "trainwright.errors",
    "TrainingDiverged": "trainwright.errors",
    "Run": "trainwright.recipes.finish",
    "train": "trainwright.api",
    "estimate": "trainwright.api",
    "play": "trainwright.api",
    "Estimate": "trainwright.compute",
    "TrainedModel": "trainwright.predict",
    "load": "trainwright.predict",
}
__all__ = [
    "Config",
    "Estimate",
    "Run",
    "TrainedModel",
    "TrainingDiverged",
    "TrainwrightError",
    "__version__",
    "estimate",
    "load",
    "load_config",
    "play",
    "train",
]

if TYPE_CHECKING:
    from trainwright.api import estimate, play, train
    from trainwright.compute import Estimate
    from trainwright.config import Config
    from trainwright.configure import load_config
    from trainwright.errors import TrainingDiverged, TrainwrightError
    from trainwright.predict import TrainedModel, load
    from trainwright.recipes.finish import Run


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'trainwright' has no attribute {name!r}")
