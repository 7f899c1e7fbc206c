"""The predictor backends that run on torch: an exported ``.pt2`` program and a run's own module.

``load_predictor`` imports this module only for them, so an ONNX predictor never imports torch.

Example:
    >>> RunPredictor(Path("runs/digits-mlp")).predict(frame)          # what tw.load(...).predict gives
    >>> TorchExportPredictor(directory, Manifest.read(directory))     # model.pt2, no trainwright model code
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainwright.data.preprocessors import load_preprocessor, load_threshold, saved_modality
from trainwright.export.graph import load_pt2
from trainwright.export.manifest import Manifest
from trainwright.export.outputs import Calibration
from trainwright.export.predictor import Predictor
from trainwright.predict import load


class TorchExportPredictor(Predictor):
    """The exported ``.pt2`` program, on torch (no trainwright model code involved)."""

    def __init__(self, directory: Path, manifest: Manifest):
        self.module = load_pt2(directory / manifest.graph)
        self.dtype = np.dtype(manifest.inputs[0].dtype)
        super().__init__(load_preprocessor(directory), Calibration.load(directory), manifest.modality, manifest.batch_size,
                         manifest.run, load_threshold(directory), manifest.delimiter, manifest.encoding)

    def _run(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.module(torch.from_numpy(x.astype(self.dtype, copy=False))).float().numpy()


class RunPredictor(Predictor):
    """A run directory's own PyTorch module (what ``trainwright.load`` gives), on the CPU."""

    def __init__(self, run_dir: Path, model: Any = None):
        self.trained = load(run_dir, model=model, device="cpu")
        batch_size = self.trained.config.evaluate.batch_size
        super().__init__(self.trained.preprocessor, Calibration.load(run_dir), saved_modality(run_dir), batch_size,
                         Path(run_dir).resolve().name, self.trained.threshold, self.trained.config.data.delimiter,
                         self.trained.config.data.encoding)

    def _run(self, x: np.ndarray) -> np.ndarray:
        x = x if x.flags.writeable else x.copy()  # torch refuses read-only arrays
        with torch.inference_mode():
            return self.trained.module(torch.from_numpy(x)).float().numpy()
