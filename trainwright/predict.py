"""A trained run put to use: loading its model back, predicting new data, scoring labelled data.

Everything here reads the run directory alone (config, preprocessing, weights, calibration), so it
works on a run trained yesterday or on another machine.

Example:
    >>> model = load("runs/digits-mlp-20260101-120000")
    >>> model.predict(frame)        # the frame's rows + prediction (+ one probability column per class)
    >>> model.evaluate(labelled)    # metrics on labelled rows
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from trainwright.config import Config
from trainwright.configure import load_config
from trainwright.data.prepare import Preprocessor, load_preprocessor, with_input_stage
from trainwright.data.preprocessors import load_threshold
from trainwright.data.sources import Rows, as_table, read_table
from trainwright.errors import TrainwrightError
from trainwright.evaluate.calibration import Calibrator
from trainwright.evaluate.metrics import (
    classification_metrics,
    confusion_matrix,
    forecast_metrics,
    predict_outputs,
    predicted_classes,
    regression_metrics,
)
from trainwright.models.registry import build_model
from trainwright.rundir import RunDir
from trainwright.training.losses import probabilities


def load_weights(path: Path, model: nn.Module) -> None:
    """Strictly load weights: names and shapes must match exactly."""
    try:
        tensors = load_file(str(path))
    except FileNotFoundError:
        raise TrainwrightError(f"{path} is missing; the run did not finish training") from None
    except (SafetensorError, OSError) as error:
        raise TrainwrightError(f"{path} is not a readable safetensors file ({error})") from None
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != found:
        differ = sorted(k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k))[:5]
        details = ", ".join(f"{k}: model {expected.get(k)} vs file {found.get(k)}" for k in differ)
        raise TrainwrightError(f"the weights in {path} do not fit this model ({details})")
    model.load_state_dict(tensors)


@dataclass
class TrainedModel:
    """A trained model with its preprocessing, ready for new data.

    ``data`` is what the model was trained on: for tables a frame or a table file; for images
    a folder of images, a table of image paths, or a frame with the image column.

    Example:
        >>> model = tw.load("runs/digits-mlp-20260101-120000")
        >>> model.predict(frame)          # the frame's rows + prediction (+ one probability column per class)
        >>> tw.load("runs/shapes-cnn-20260101-120000").predict("new_images/")   # path, prediction, probabilities
    """

    config: Config
    preprocessor: Preprocessor
    module: nn.Module
    device: torch.device
    calibrator: Calibrator | None = None  # set once the run is calibrated: probabilities go through it
    threshold: float | None = None  # binary: predict the second class from this probability (threshold.json)

    @property
    def task(self) -> str:
        return self.preprocessor.task

    @property
    def classes(self) -> list:
        return self.preprocessor.classes

    def _inputs(self, data: Rows) -> tuple[pd.DataFrame, torch.Tensor]:
        frame, x = self.preprocessor.inputs(self._table(data))
        return frame, torch.as_tensor(x)

    def _table(self, data: Rows) -> pd.DataFrame | str | Path:
        """``as_table``; a table file is read with the delimiter and encoding it was trained with (``data.delimiter``,
        ``data.encoding``). Image tables are left to the image preprocessor, which reads their paths relative to the table."""
        if getattr(self.preprocessor, "modality", "") == "images":
            return as_table(data)
        return as_table(data, self.config.data.delimiter, self.config.data.encoding)

    def _outputs(self, x: torch.Tensor) -> torch.Tensor:
        return predict_outputs(self.module, x.to(self.device), self.config.evaluate.batch_size).float().cpu()

    def predict_proba(self, data: Rows) -> np.ndarray:
        """(N, classes) probabilities, columns in the order of ``classes``."""
        if self.task == "regression":
            raise TrainwrightError("predict_proba needs a classification model; this one does regression")
        return self._probabilities(self._outputs(self._inputs(data)[1])).numpy()

    def _probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.calibrator.probabilities(outputs) if self.calibrator else probabilities(outputs, self.task)

    def predict(self, data: Rows) -> pd.DataFrame:
        """The rows with a ``prediction`` column and, for classification, ``probability_<class>`` columns.

        ``data``: a frame, a table file (or, for images, a folder), a dict of columns
        (``{"size": [3.1, 2.0], "color": ["red", "blue"]}``, or one value per column for one row) or a
        list of rows (``[{"size": 3.1, "color": "red"}, ...]``).
        """
        frame, x = self._inputs(data)
        outputs = self._outputs(x)
        if hasattr(self.preprocessor, "prediction_frame"):  # series: the next horizon times after the tail
            return self.preprocessor.prediction_frame(frame, outputs.numpy())
        result = frame.copy()
        if self.task == "regression":
            predictions = self.preprocessor.decode_target(outputs.numpy())
            result[_free_name(result, "prediction")] = predictions
            return result
        probs = self._probabilities(outputs)
        predicted = predicted_classes(probs, self.threshold).numpy()
        result[_free_name(result, "prediction")] = self.preprocessor.decode_target(predicted)
        probs = probs.numpy()
        for i, label in enumerate(self.classes):
            result[_free_name(result, f"probability_{label}")] = probs[:, i]
        return result

    def evaluate(self, data: Rows) -> dict:
        """Test metrics on labelled data (it must hold the target; images: or a folder of class folders;
        a forecaster: a stretch of the series, cut into every window of lookback rows and the horizon after)."""
        if hasattr(self.preprocessor, "labelled_windows"):  # a forecaster: every window of the table
            x, y = self.preprocessor.labelled_windows(self._table(data))
            return score(self._outputs(x), y, self.preprocessor)
        frame, x = self._inputs(data)
        target = self.preprocessor.target
        if target not in frame.columns:
            raise TrainwrightError(
                f"the labelled data has no target column {target!r}; columns are: {', '.join(map(str, frame.columns))}"
            )
        labelled = frame[target].notna().to_numpy(copy=True)  # writable: torch refuses read-only arrays
        if not labelled.any():
            raise TrainwrightError(f"no labelled rows: every value of {target!r} is missing")
        y = torch.from_numpy(np.asarray(self.preprocessor.encode_target(frame[target][labelled])))
        return score(self._outputs(x[torch.from_numpy(labelled)]), y, self.preprocessor, self.calibrator, self.threshold)


def score(outputs: torch.Tensor, y: torch.Tensor, preprocessor: Preprocessor, calibrator: Calibrator | None = None,
          threshold: float | None = None) -> dict:
    """The task's metrics for raw model outputs against encoded targets (regression in original units);
    ``threshold``: a binary decision threshold (else the likelier class)."""
    if preprocessor.task == "regression":
        pred = torch.from_numpy(np.asarray(preprocessor.decode_target(outputs.cpu().numpy()), dtype=np.float64))
        true = torch.from_numpy(np.asarray(preprocessor.decode_target(y.cpu().numpy()), dtype=np.float64))
        if getattr(preprocessor, "modality", "") == "series":
            return forecast_metrics(pred, true, preprocessor.mase_scale)
        return regression_metrics(pred, true)
    probs = calibrator.probabilities(outputs.cpu()) if calibrator else probabilities(outputs.cpu(), preprocessor.task)
    y = y.cpu()
    return {**classification_metrics(probs, y, threshold), "confusion_matrix": confusion_matrix(probs, y, threshold)}


def load(run_dir: str | Path, model: nn.Module | None = None, device: str = "cpu", calibrated: bool = True) -> TrainedModel:
    """Load a finished run's model and preprocessing. Pass ``model=`` for a run of your own module.

    A calibrated run (``trainwright calibrate``) predicts calibrated probabilities unless ``calibrated=False``.
    """
    run = RunDir.open(run_dir)
    names = ("preprocessor.json", "preprocessor.skops", "tokenizer.json", "calibration.json")
    run.verify(run.config, run.model_info, run.weights, *(run.path / name for name in names),
               fix="predict will not use it; restore the run from a backup, or train it again")
    config = load_config(run.config)
    preprocessor = load_preprocessor(run.path)
    info = run.read_json(run.model_info)
    vocab_size = getattr(preprocessor, "vocab_size", None)  # text: the saved tokenizer's vocabulary
    module = (
        model if model is not None else build_model(config.model, tuple(info["input_shape"]), info["out_features"], vocab_size)
    )
    module = with_input_stage(preprocessor, module)
    load_weights(run.weights, module)
    target = torch.device(device)
    calibrator = load_calibrator(run.path) if calibrated else None
    return TrainedModel(config, preprocessor, module.to(target).eval(), target, calibrator, load_threshold(run.path))


def read_rows(path: str | Path) -> pd.DataFrame:
    """New rows for predict/evaluate, in any table format ``train`` reads."""
    return read_table(path)


def load_calibrator(run_dir: Path) -> Calibrator | None:
    """The run's calibrator, if it was calibrated."""
    path = Path(run_dir) / "calibration.json"
    if not path.is_file():
        return None
    try:
        return Calibrator.from_dict(json.loads(path.read_text(encoding="utf-8"))["parameters"])
    except (ValueError, KeyError, TypeError):
        raise TrainwrightError(f"{path} is damaged; delete it and run `trainwright calibrate {run_dir}` again") from None


def _free_name(frame: pd.DataFrame, name: str) -> str:
    """``name``, or ``name_1``, ... if the input already has such a column."""
    candidate, n = name, 0
    while candidate in frame.columns:
        n += 1
        candidate = f"{name}_{n}"
    return candidate
