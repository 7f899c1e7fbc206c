"""Serve a run (or an exported model) over HTTP: ``serve(path, host, port, workers)``.

Example:
    >>> from trainwright.serve import serve
    >>> serve("runs/digits-mlp/export-onnx")       # http://127.0.0.1:8000/  (form), /predict, /health, /docs

FastAPI, uvicorn and python-multipart are the ``serve`` extra; they are imported on first use,
and a missing one is a one-line error naming the extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from trainwright.errors import TrainwrightError

__all__ = ["create_app", "serve"]

if TYPE_CHECKING:
    from trainwright.serve.app import create_app, serve


def __getattr__(name: str):
    if name in __all__:
        try:  # optional: the `serve` extra
            for package in ("fastapi", "uvicorn", "python_multipart"):
                importlib.import_module(package)
        except ImportError as error:
            raise TrainwrightError(f"serving needs {error.name}: pip install 'trainwright[serve]'") from None
        return getattr(importlib.import_module("trainwright.serve.app"), name)
    raise AttributeError(f"module 'trainwright.serve' has no attribute {name!r}")
