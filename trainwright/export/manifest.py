"""``manifest.json``: what an exported directory holds and how to feed its graph.

Example (an exported text LSTM):
    {"format": "onnx", "graph": "model.onnx", "modality": "text", "task": "binary", "classes": ["blue", "red"],
     "inputs": [{"name": "input", "dtype": "int64", "shape": ["batch", "sequence"]}],
     "outputs": [{"name": "output", "dtype": "float32", "shape": ["batch", 1]}],
     "output_meaning": "logit of the second class", "sequence": "dynamic", "max_sequence": 12, ...}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from trainwright.config import Frozen
from trainwright.errors import TrainwrightError

MANIFEST = "manifest.json"
FORMATS = {"onnx": "model.onnx", "torch-export": "model.pt2"}


class TensorSpec(Frozen):
    name: str
    dtype: str  # numpy's name: float32, int64, uint8
    shape: list[int | str]  # a string names a dynamic dimension


class Manifest(Frozen):
    format_version: Literal[1] = 1
    format: Literal["onnx", "torch-export"]
    graph: str  # the file, inside the directory
    exporter: str
    opset: int | None = None  # ONNX only
    versions: dict[str, str]  # trainwright, torch, onnx, onnxruntime used for the export and its check
    run: str  # the run directory's name
    model: str  # the family: mlp, cnn, lstm, ...
    modality: Literal["tabular", "images", "text", "series"]
    task: str
    target: str
    classes: list[Any]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    output_meaning: str
    sequence: Literal["dynamic", "static"] | None = None  # text and series
    max_sequence: int | None = None
    note: str = ""
    files: dict[str, str]  # role -> file name
    batch_size: int  # rows per run of the graph at prediction
    delimiter: str | None = None  # the run's data.delimiter and data.encoding: table files to predict are read with them
    encoding: str = "auto"
    parity: dict[str, Any]  # max_abs, max_rel, passed (parity.json has every check)

    def write(self, directory: Path) -> None:
        (Path(directory) / MANIFEST).write_text(json.dumps(self.model_dump(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = Path(directory) / MANIFEST
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise TrainwrightError(f"{directory} is not an exported model (it has no {MANIFEST}); `trainwright export RUN` "
                                   f"writes one") from None
        except (ValueError, ValidationError) as error:
            raise TrainwrightError(f"{path} is damaged or from another version ({str(error).splitlines()[0]}); export the run "
                                   f"again") from None


def is_exported(directory: str | Path) -> bool:
    """An exported directory: a manifest.json and no config.yaml (a run directory has both: its manifest.json
    lists the run's files, see rundir.py)."""
    return (Path(directory) / MANIFEST).is_file() and not (Path(directory) / "config.yaml").is_file()


def output_meaning(task: str, modality: str, classes: list) -> str:
    if modality == "series":
        return "the forecast, scaled with the target's training mean and std (preprocessor.json)"
    if task == "regression":
        return "the prediction, scaled with the target's training mean and std (preprocessor.json)"
    if task == "binary":
        return f"logit of class {classes[1]!r} (sigmoid -> its probability)"
    return "logits, one per class in the order of classes (softmax -> probabilities)"
