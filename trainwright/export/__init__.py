"""Export a finished run (ONNX or torch.export) and predict from the exported directory.

Example:
    >>> from trainwright.export import export_run, load_predictor
    >>> export_run("runs/digits-mlp", "onnx")                        # runs/digits-mlp/export-onnx/, parity checked
    >>> load_predictor("runs/digits-mlp/export-onnx").predict(frame)   # onnxruntime, no torch

Names load on first use: ``load_predictor`` must not pull in torch through ``export_run``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "export_run": "trainwright.export.exporter",
    "load_predictor": "trainwright.export.predictor",
    "Predictor": "trainwright.export.predictor",
    "Manifest": "trainwright.export.manifest",
    "is_exported": "trainwright.export.manifest",
}
__all__ = ["Manifest", "Predictor", "export_run", "is_exported", "load_predictor"]

if TYPE_CHECKING:
    from trainwright.export.exporter import export_run
    from trainwright.export.manifest import Manifest, is_exported
    from trainwright.export.predictor import Predictor, load_predictor


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'trainwright.export' has no attribute {name!r}")
