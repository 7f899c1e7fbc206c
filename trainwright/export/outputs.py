"""From raw model outputs to what ``predict`` writes, in numpy alone (no torch at prediction time).

The same steps as ``TrainedModel.predict``: probabilities (softmax, or sigmoid as ``[1 - p, p]``
for binary), through the run's calibration when it has one (``calibration.json``: temperature,
vector scaling or isotonic maps), then the rows with a ``prediction`` column (for two classes,
the second from the run's decision threshold when it has one, ``threshold.json``) and one
``probability_<class>`` column per class; a forecaster's frame comes from its preprocessor.

Example:
    >>> calibration = Calibration.load(Path("runs/digits-mlp/export-onnx"))
    >>> prediction_frame(preprocessor, frame, logits, calibration).columns[-3:]
    Index(['probability_7', 'probability_8', 'probability_9'], dtype='object')
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from trainwright.errors import TrainwrightError


def probabilities(outputs: np.ndarray, task: str) -> np.ndarray:
    """(N, C) float32 class probabilities from logits (N, C), or (N, 1) for binary -> [1 - p, p]."""
    z = np.asarray(outputs, dtype=np.float64)
    if task == "binary":
        p = 1.0 / (1.0 + np.exp(-z[:, 0]))
        return np.stack([1.0 - p, p], axis=1).astype(np.float32)
    z = z - z.max(axis=1, keepdims=True)  # a stable softmax
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class Calibration:
    """The fitted map of ``calibration.json``'s ``parameters``, applied with numpy."""

    method: str
    task: str
    temperature: float | None = None
    scale: tuple[float, ...] | None = None
    bias: tuple[float, ...] | None = None
    isotonic: tuple[dict, ...] | None = None  # per class: {"x": breakpoints, "y": values}

    @classmethod
    def load(cls, directory: Path) -> Calibration | None:
        """The calibration saved in ``directory``, or None when it holds none."""
        path = Path(directory) / "calibration.json"
        if not path.is_file():
            return None
        try:
            p = json.loads(path.read_text(encoding="utf-8"))["parameters"]
            return cls(p["method"], p["task"], p.get("temperature"), _tuple(p.get("scale")), _tuple(p.get("bias")),
                       _tuple(p.get("isotonic")))
        except (ValueError, KeyError, TypeError):
            raise TrainwrightError(f"{path} is damaged; delete it and calibrate the run again") from None

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        z = np.asarray(outputs, dtype=np.float32)
        if self.method == "temperature":
            return probabilities(z / np.float32(self.temperature), self.task)
        if self.method == "vector":
            return probabilities(z * np.asarray(self.scale, np.float32) + np.asarray(self.bias, np.float32), self.task)
        raw = probabilities(z, self.task)
        if self.task == "binary":  # one map on p(positive); the negative class is its complement
            p = np.interp(raw[:, 1], self.isotonic[0]["x"], self.isotonic[0]["y"])
            return np.stack([1 - p, p], axis=1).astype(np.float32)
        mapped = np.stack([np.interp(raw[:, c], part["x"], part["y"]) for c, part in enumerate(self.isotonic)], axis=1)
        mapped = np.clip(mapped, 1e-6, None)  # a row all mapped to 0 would not renormalize
        return (mapped / mapped.sum(axis=1, keepdims=True)).astype(np.float32)


def _tuple(value):
    return tuple(value) if value is not None else None


def class_probabilities(outputs: np.ndarray, task: str, calibration: Calibration | None) -> np.ndarray:
    """(N, C) probabilities, calibrated when the run was."""
    return calibration.probabilities(outputs) if calibration else probabilities(outputs, task)


def predicted_classes(probs: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """(N,) class indices: the most probable class, or for two classes p(second) >= ``threshold`` when one is set
    (``evaluate.metrics.predicted_classes`` in numpy)."""
    if threshold is not None and probs.shape[1] == 2:
        return (probs[:, 1] >= np.float32(threshold)).astype(np.int64)
    return probs.argmax(1)


def prediction_frame(preprocessor, frame: pd.DataFrame, outputs: np.ndarray,
                     calibration: Calibration | None = None, threshold: float | None = None) -> pd.DataFrame:
    """The rows with ``prediction`` and, for classification, ``probability_<class>`` columns,
    exactly the columns ``TrainedModel.predict`` writes. ``outputs``: the model's (N, outputs);
    ``threshold``: a binary decision threshold (else the likelier class)."""
    outputs = np.asarray(outputs)
    if hasattr(preprocessor, "prediction_frame"):  # series: the next horizon times after the tail
        return preprocessor.prediction_frame(frame, outputs)
    result = frame.copy()
    if preprocessor.task == "regression":
        result[free_name(result, "prediction")] = preprocessor.decode_target(outputs)
        return result
    probs = class_probabilities(outputs, preprocessor.task, calibration)
    result[free_name(result, "prediction")] = preprocessor.decode_target(predicted_classes(probs, threshold))
    for i, label in enumerate(preprocessor.classes):
        result[free_name(result, f"probability_{label}")] = probs[:, i]
    return result


def free_name(frame: pd.DataFrame, name: str) -> str:
    """``name``, or ``name_1``, ... if the input already has such a column."""
    candidate, n = name, 0
    while candidate in frame.columns:
        n += 1
        candidate = f"{name}_{n}"
    return candidate
