"""Callbacks: small classes that observe a run through flat ``on_*`` hooks, one per file.

A new callback is one file: a ``Callback`` subclass with the hooks it needs and an ``order``.
"""

from trainwright.training.callbacks.base import Callback, CallbackList, ThrottledWrite
from trainwright.training.callbacks.checkpoint import Checkpoint
from trainwright.training.callbacks.early_stopping import EarlyStopping
from trainwright.training.callbacks.gradient_stats import GradientStats
from trainwright.training.callbacks.history import HistoryCSV
from trainwright.training.callbacks.progress import ProgressBar
from trainwright.training.callbacks.pruning import Pruning

__all__ = [
    "Callback",
    "CallbackList",
    "Checkpoint",
    "EarlyStopping",
    "GradientStats",
    "HistoryCSV",
    "ProgressBar",
    "Pruning",
    "ThrottledWrite",
]
