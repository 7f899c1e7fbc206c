"""Predicting from an exported directory (onnxruntime, no torch) or a run directory, one interface.

``Predictor.predict(data)`` returns what ``TrainedModel.predict`` returns (the rows, a
``prediction`` column, and ``probability_<class>`` columns; a forecaster's next ``horizon``
times), computed as preprocessing -> ``outputs(x)`` -> numpy (``outputs.py``). Three backends
give ``outputs``: ``OnnxPredictor`` (onnxruntime), ``TorchExportPredictor`` (the ``.pt2``
program) and ``RunPredictor`` (the run's own PyTorch module, for serving a run directory).

An ONNX predictor imports numpy, pandas, onnxruntime and the one preprocessor module its
modality needs (tables: scikit-learn + skops; images: Pillow; text: tokenizers; series: numpy),
never torch, once those modules import torch lazily (see the export section of the README).

Example:
    >>> model = load_predictor("runs/digits-mlp/export-onnx")
    >>> model.predict(frame).iloc[0]["prediction"]
    7
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainwright.errors import TrainwrightError
from trainwright.export.manifest import Manifest, is_exported
from trainwright.export.outputs import Calibration, class_probabilities, prediction_frame
from trainwright.export.trained import load_preprocessor, modality_of


class Predictor:
    """Preprocessing + a backend's raw outputs + the numpy steps of ``predict``."""

    def __init__(self, preprocessor: Any, calibration: Calibration | None, modality: str, batch_size: int = 4096, name: str = ""):
        self.preprocessor, self.calibration, self.modality, self.batch_size = preprocessor, calibration, modality, batch_size
        self.name = name  # the run's name

    @property
    def task(self) -> str:
        return self.preprocessor.task

    @property
    def classes(self) -> list:
        return self.preprocessor.classes

    def inputs(self, data: pd.DataFrame | str | Path) -> tuple[pd.DataFrame, np.ndarray]:
        """(the rows, their model inputs (N, ...)) exactly as the run preprocessed them."""
        frame, x = self.preprocessor.inputs(data)
        return frame, np.asarray(x)  # images, text and series preprocessors return torch tensors today

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """Raw model outputs (N, outputs) float32 for inputs (N, ...), in batches of ``batch_size``."""
        parts = [self._run(np.ascontiguousarray(x[i : i + self.batch_size])) for i in range(0, len(x), self.batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.preprocessor.n_outputs), np.float32)

    def _run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def results(self, frame: pd.DataFrame, outputs: np.ndarray) -> pd.DataFrame:
        return prediction_frame(self.preprocessor, frame, outputs, self.calibration)

    def predict(self, data: pd.DataFrame | str | Path) -> pd.DataFrame:
        """The rows with a ``prediction`` column and, for classification, ``probability_<class>`` columns."""
        frame, x = self.inputs(data)
        return self.results(frame, self.outputs(x))

    def predict_proba(self, data: pd.DataFrame | str | Path) -> np.ndarray:
        """(N, classes) probabilities, columns in the order of ``classes``."""
        if self.task == "regression":
            raise TrainwrightError("predict_proba needs a classification model; this one does regression")
        return class_probabilities(self.outputs(self.inputs(data)[1]), self.task, self.calibration)


class OnnxPredictor(Predictor):
    """The exported ONNX graph on onnxruntime's CPU provider."""

    def __init__(self, directory: Path, manifest: Manifest, threads: int | None = None):
        try:
            import onnxruntime  # optional: the `export` extra
        except ImportError:
            raise TrainwrightError("predicting from an ONNX export needs onnxruntime: pip install 'trainwright[export]'") from None
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: onnxruntime warns about unused initializers on stderr
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(directory / manifest.graph), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.dtype = np.dtype(manifest.inputs[0].dtype)
        super().__init__(load_preprocessor(directory), Calibration.load(directory), manifest.modality, manifest.batch_size, manifest.run)

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x.astype(self.dtype, copy=False)})[0]


class TorchExportPredictor(Predictor):
    """The exported ``.pt2`` program, on torch (no trainwright model code involved)."""

    def __init__(self, directory: Path, manifest: Manifest):
        import torch

        from trainwright.export.graph import load_pt2

        self.torch = torch
        self.module = load_pt2(directory / manifest.graph)
        self.dtype = np.dtype(manifest.inputs[0].dtype)
        super().__init__(load_preprocessor(directory), Calibration.load(directory), manifest.modality, manifest.batch_size, manifest.run)

    def _run(self, x: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.module(self.torch.from_numpy(x.astype(self.dtype, copy=False))).float().numpy()


class RunPredictor(Predictor):
    """A run directory's own PyTorch module (what ``trainwright.load`` gives)."""

    def __init__(self, run_dir: Path, model: Any = None):
        import torch

        from trainwright.export.trained import load_trained

        self.torch = torch
        self.trained = load_trained(run_dir, model)
        batch_size = self.trained.config.evaluate.batch_size
        super().__init__(self.trained.preprocessor, Calibration.load(run_dir), modality_of(run_dir), batch_size, Path(run_dir).resolve().name)

    def _run(self, x: np.ndarray) -> np.ndarray:
        x = x if x.flags.writeable else x.copy()  # torch refuses read-only arrays
        with self.torch.inference_mode():
            return self.trained.module(self.torch.from_numpy(x)).float().numpy()


def load_predictor(path: str | Path, threads: int | None = None) -> Predictor:
    """An exported directory (manifest.json) or a run directory (config.yaml), ready to predict.

    ``threads``: onnxruntime's intra-op threads (default: its own choice, one per core).
    """
    directory = Path(path)
    if is_exported(directory):
        manifest = Manifest.read(directory)
        if manifest.format == "onnx":
            return OnnxPredictor(directory, manifest, threads)
        return TorchExportPredictor(directory, manifest)
    if (directory / "config.yaml").is_file():
        return RunPredictor(directory)
    if not directory.is_dir():
        raise TrainwrightError(f"{directory} does not exist; give a run directory or an exported one (`trainwright export RUN`)")
    raise TrainwrightError(f"{directory} is neither a trainwright run (no config.yaml) nor an exported model (no manifest.json)")
