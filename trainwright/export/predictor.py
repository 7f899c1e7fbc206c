"""Predicting from an exported directory (onnxruntime, no torch) or a run directory, one interface.

``Predictor.predict(data)`` takes what ``TrainedModel.predict`` takes (a frame, a table file, a
dict of columns or a list of rows) and returns what it returns (the rows, a ``prediction`` column
from the run's decision threshold when it has one, and ``probability_<class>`` columns; a
forecaster's next ``horizon`` times), computed as preprocessing -> ``outputs(x)`` -> numpy
(``outputs.py``). Three backends
give ``outputs``: ``OnnxPredictor`` (onnxruntime), ``TorchExportPredictor`` (the ``.pt2``
program) and ``RunPredictor`` (the run's own PyTorch module, for serving a run directory).

An ONNX predictor imports numpy, pandas, onnxruntime and the preprocessors (scikit-learn and
skops, Pillow, tokenizers), never torch: the torch backends live in ``torch_predictors.py``.

Example:
    >>> model = load_predictor("runs/digits-mlp/export-onnx")
    >>> model.predict(frame).iloc[0]["prediction"]
    7
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainwright.data.preprocessors import load_preprocessor, load_threshold
from trainwright.data.sources import Rows, as_table
from trainwright.errors import TrainwrightError
from trainwright.export.manifest import Manifest, is_exported
from trainwright.export.outputs import Calibration, class_probabilities, prediction_frame


class Predictor:
    """Preprocessing + a backend's raw outputs + the numpy steps of ``predict``."""

    def __init__(self, preprocessor: Any, calibration: Calibration | None, modality: str, batch_size: int = 4096, name: str = "",
                 threshold: float | None = None, delimiter: str | None = None, encoding: str = "auto"):
        self.preprocessor, self.calibration, self.modality, self.batch_size = preprocessor, calibration, modality, batch_size
        self.name = name  # the run's name
        self.threshold = threshold  # binary: predict the second class from this probability (threshold.json)
        self.delimiter, self.encoding = delimiter, encoding  # the run's data.delimiter and data.encoding, for table files

    @property
    def task(self) -> str:
        return self.preprocessor.task

    @property
    def classes(self) -> list:
        return self.preprocessor.classes

    def inputs(self, data: Rows) -> tuple[pd.DataFrame, np.ndarray]:
        """(the rows, their model inputs (N, ...)) exactly as the run preprocessed them."""
        table = as_table(data) if self.modality == "images" else as_table(data, self.delimiter, self.encoding)
        frame, x = self.preprocessor.inputs(table)
        return frame, np.asarray(x)

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """Raw model outputs (N, outputs) float32 for inputs (N, ...), in batches of ``batch_size``."""
        parts = [self._run(np.ascontiguousarray(x[i : i + self.batch_size])) for i in range(0, len(x), self.batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.preprocessor.n_outputs), np.float32)

    def _run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def results(self, frame: pd.DataFrame, outputs: np.ndarray) -> pd.DataFrame:
        return prediction_frame(self.preprocessor, frame, outputs, self.calibration, self.threshold)

    def predict(self, data: Rows) -> pd.DataFrame:
        """The rows with a ``prediction`` column and, for classification, ``probability_<class>`` columns."""
        frame, x = self.inputs(data)
        return self.results(frame, self.outputs(x))

    def predict_proba(self, data: Rows) -> np.ndarray:
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
            raise TrainwrightError("predicting from an ONNX export needs onnxruntime: pip install onnxruntime "
                                   "(or 'trainwright[export]')") from None
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: onnxruntime warns about unused initializers on stderr
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(directory / manifest.graph), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.dtype = np.dtype(manifest.inputs[0].dtype)
        super().__init__(load_preprocessor(directory), Calibration.load(directory), manifest.modality, manifest.batch_size,
                         manifest.run, load_threshold(directory), manifest.delimiter, manifest.encoding)

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x.astype(self.dtype, copy=False)})[0]


def require_torch(directory: Path, what: str) -> None:
    """A clear error where torch is not installed (a minimal install predicts from ONNX exports only)."""
    if importlib.util.find_spec("torch") is None:
        raise TrainwrightError(f"{directory} is {what}, which needs torch to predict, and torch is not installed: pip install "
                               f"torch, or predict from an ONNX export of the run (trainwright export RUN, where torch is)")


def load_predictor(path: str | Path, threads: int | None = None) -> Predictor:
    """An exported directory (manifest.json) or a run directory (config.yaml), ready to predict.

    ``threads``: onnxruntime's intra-op threads (default: its own choice, one per core).
    """
    directory = Path(path)
    manifest = Manifest.read(directory) if is_exported(directory) else None
    if manifest is not None and manifest.format == "onnx":
        return OnnxPredictor(directory, manifest, threads)
    if manifest is None and not (directory / "config.yaml").is_file():
        if not directory.is_dir():
            raise TrainwrightError(f"{directory} does not exist; give a run directory or an exported one "
                                   f"(`trainwright export RUN`)")
        raise TrainwrightError(f"{directory} is neither a trainwright run (no config.yaml) nor an exported model "
                               f"(no manifest.json)")
    require_torch(directory, "a torch.export program (model.pt2)" if manifest is not None else "a run directory")
    # Lazy, a heavy dependency: these two backends run on torch, which an ONNX predictor does without.
    from trainwright.export.torch_predictors import RunPredictor, TorchExportPredictor

    return TorchExportPredictor(directory, manifest) if manifest is not None else RunPredictor(directory)
