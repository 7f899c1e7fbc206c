"""The run directory: its layout, writing it, and loading a trained model back from it.

```
runs/<name>/
├── config.yaml            resolved config (every default filled in)
├── environment.json       versions, device, seed: what is needed to repeat the run
├── data.json              data summary: columns, cleaning actions with counts, split sizes
├── preprocessor.skops     fitted scikit-learn preprocessing (skops: loads no arbitrary code); tables only
├── preprocessor.json      its plain facts: target, task, classes, columns (images: mode, size, mean, std;
│                          series: columns, window, scaler mean and std)
├── tokenizer.json         text only: the trained tokenizer, in the tokenizers library's JSON format
├── model.safetensors      the trained (best) weights
├── model.json             architecture facts: family, input and output widths, parameters
├── history.csv            one row per epoch
├── gradients.json         per epoch: gradient norm per layer, share of dead ReLU units
├── metrics.json           test/validation/training metrics, baselines, best epoch, epochs, seconds
├── misclassified.png      images only: a grid of the misclassified test images
├── examples.png           images only: a few training images per class, before and after augmentation
├── predictions_test.csv   the test rows' true values, predictions and class probabilities
├── diagnosis.json         what went wrong in training: findings with evidence and remedies
├── report.html            the HTML report of all of the above
└── checkpoints/last.safetensors   everything needed to resume
```
Later stages (predict, evaluate, report) read only this directory, so they work on yesterday's runs.
"""

from __future__ import annotations

import json
import platform
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from trainwright.calibrate import Calibrator, load_calibrator
from trainwright.config import Config, load_config
from trainwright.data.prepare import Preprocessor, load_preprocessor, with_input_stage
from trainwright.errors import TrainwrightError
from trainwright.evaluate.metrics import classification_metrics, confusion_matrix, forecast_metrics, predict_outputs, regression_metrics
from trainwright.files import atomic_path, atomic_write
from trainwright.models.registry import build_model
from trainwright.training.losses import probabilities


class RunDir:
    """Paths inside one run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config = self.path / "config.yaml"
        self.environment = self.path / "environment.json"
        self.data = self.path / "data.json"
        self.weights = self.path / "model.safetensors"
        self.model_info = self.path / "model.json"
        self.history = self.path / "history.csv"
        self.metrics = self.path / "metrics.json"
        self.gradients = self.path / "gradients.json"
        self.predictions = self.path / "predictions_test.csv"
        self.diagnosis = self.path / "diagnosis.json"
        self.report = self.path / "report.html"
        self.misclassified = self.path / "misclassified.png"  # images only
        self.examples = self.path / "examples.png"  # images only
        self.checkpoint = self.path / "checkpoints" / "last.safetensors"

    @classmethod
    def create(cls, runs_dir: str | Path, name: str) -> RunDir:
        """Make a new, empty run directory; never reuse or overwrite an existing one."""
        if not re.fullmatch(r"[\w.\-]+", name) or name in (".", ".."):
            raise TrainwrightError(f"run name {name!r} may hold only letters, digits, '.', '_' and '-'")
        path = Path(runs_dir) / name
        try:
            path.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise TrainwrightError(f"{path} already exists; choose another --name, or continue it with --resume {path}") from None
        except OSError as error:
            raise TrainwrightError(f"cannot create the run directory {path}: {error.strerror}") from None
        (path / "checkpoints").mkdir()
        return cls(path)

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory; anything else is a clear error."""
        run = cls(path)
        if not run.path.is_dir():
            raise TrainwrightError(f"run directory {run.path} does not exist; `trainwright train` prints the run directory as its last line")
        if not run.config.is_file():
            raise TrainwrightError(f"{run.path} is not a trainwright run directory (it has no config.yaml)")
        return run

    def write_json(self, path: Path, data: Any) -> None:
        """Strict JSON: NaN (an undefined metric) is written as null."""
        atomic_write(path, json.dumps(_finite(data), indent=2, default=_json_default, allow_nan=False) + "\n")

    def read_json(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TrainwrightError(f"{self.path} has no {path.name}; the run did not finish (resume it with --resume {self.path})") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise TrainwrightError(f"{path} is corrupt; it is not valid JSON") from None


def default_run_name(data_name: str, model_type: str) -> str:
    stem = re.sub(r"[^\w.\-]+", "-", f"{data_name}-{model_type}").strip("-")
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def unique_name(runs_dir: str | Path, name: str) -> str:
    """``name``, or ``name-2``, ``name-3``, ... if a run of that name already exists."""
    candidate, n = name, 1
    while (Path(runs_dir) / candidate).exists():
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def environment(device: torch.device, seed: int) -> dict:
    import sklearn
    import torchmetrics

    from trainwright import __version__

    return {
        "trainwright": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
        "torchmetrics": torchmetrics.__version__, "scikit-learn": sklearn.__version__, "numpy": np.__version__,
        "pandas": pd.__version__, "platform": platform.platform(), "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "seed": seed, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def save_weights(path: Path, model: nn.Module) -> None:
    # Cloning breaks storage sharing between tensors, which safetensors refuses.
    tensors = {k: v.detach().to("cpu").clone().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))


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

    @property
    def task(self) -> str:
        return self.preprocessor.task

    @property
    def classes(self) -> list:
        return self.preprocessor.classes

    def _inputs(self, data: pd.DataFrame | str | Path) -> tuple[pd.DataFrame, torch.Tensor]:
        frame, x = self.preprocessor.inputs(data)
        return frame, torch.as_tensor(x)

    def _outputs(self, x: torch.Tensor) -> torch.Tensor:
        return predict_outputs(self.module, x.to(self.device), self.config.evaluate.batch_size).float().cpu()

    def predict_proba(self, data: pd.DataFrame | str | Path) -> np.ndarray:
        """(N, classes) probabilities, columns in the order of ``classes``."""
        if self.task == "regression":
            raise TrainwrightError("predict_proba needs a classification model; this one does regression")
        return self._probabilities(self._outputs(self._inputs(data)[1])).numpy()

    def _probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.calibrator.probabilities(outputs) if self.calibrator else probabilities(outputs, self.task)

    def predict(self, data: pd.DataFrame | str | Path) -> pd.DataFrame:
        """The rows with a ``prediction`` column and, for classification, ``probability_<class>`` columns."""
        frame, x = self._inputs(data)
        outputs = self._outputs(x)
        if hasattr(self.preprocessor, "prediction_frame"):  # series: the next horizon times after the tail
            return self.preprocessor.prediction_frame(frame, outputs.numpy())
        result = frame.copy()
        if self.task == "regression":
            predictions = self.preprocessor.decode_target(outputs.numpy())
            result[_free_name(result, "prediction")] = predictions
            return result
        probs = self._probabilities(outputs).numpy()
        result[_free_name(result, "prediction")] = self.preprocessor.decode_target(probs.argmax(1))
        for i, label in enumerate(self.classes):
            result[_free_name(result, f"probability_{label}")] = probs[:, i]
        return result

    def evaluate(self, data: pd.DataFrame | str | Path) -> dict:
        """Test metrics on labelled data (it must hold the target; images: or a folder of class folders)."""
        frame, x = self._inputs(data)
        target = self.preprocessor.target
        if target not in frame.columns:
            raise TrainwrightError(f"the labelled data has no target column {target!r}; columns are: {', '.join(map(str, frame.columns))}")
        labelled = frame[target].notna().to_numpy(copy=True)  # writable: torch refuses read-only arrays
        if not labelled.any():
            raise TrainwrightError(f"no labelled rows: every value of {target!r} is missing")
        y = torch.from_numpy(np.asarray(self.preprocessor.encode_target(frame[target][labelled])))
        return score(self._outputs(x[torch.from_numpy(labelled)]), y, self.preprocessor, self.calibrator)


def score(outputs: torch.Tensor, y: torch.Tensor, preprocessor: Preprocessor, calibrator: Calibrator | None = None) -> dict:
    """The task's metrics for raw model outputs against encoded targets (regression in original units)."""
    if preprocessor.task == "regression":
        pred = torch.from_numpy(np.asarray(preprocessor.decode_target(outputs.cpu().numpy()), dtype=np.float64))
        true = torch.from_numpy(np.asarray(preprocessor.decode_target(y.cpu().numpy()), dtype=np.float64))
        if getattr(preprocessor, "modality", "") == "series":
            return forecast_metrics(pred, true)
        return regression_metrics(pred, true)
    probs = calibrator.probabilities(outputs.cpu()) if calibrator else probabilities(outputs.cpu(), preprocessor.task)
    y = y.cpu()
    return {**classification_metrics(probs, y), "confusion_matrix": confusion_matrix(probs, y)}


def load(run_dir: str | Path, model: nn.Module | None = None, device: str = "cpu", calibrated: bool = True) -> TrainedModel:
    """Load a finished run's model and preprocessing. Pass ``model=`` for a run of your own module.

    A calibrated run (``trainwright calibrate``) predicts calibrated probabilities unless ``calibrated=False``.
    """
    run = RunDir.open(run_dir)
    config = load_config(run.config)
    preprocessor = load_preprocessor(run.path)
    info = run.read_json(run.model_info)
    vocab_size = getattr(preprocessor, "vocab_size", None)  # text: the saved tokenizer's vocabulary
    module = model if model is not None else build_model(config.model, tuple(info["input_shape"]), info["out_features"], vocab_size)
    module = with_input_stage(preprocessor, module)
    load_weights(run.weights, module)
    target = torch.device(device)
    calibrator = load_calibrator(run.path) if calibrated else None
    return TrainedModel(config, preprocessor, module.to(target).eval(), target, calibrator)


KEY_METRIC = {"regression": "r2", "binary": "accuracy", "multiclass": "accuracy"}


def summarize_run(run: RunDir) -> dict:
    """One line's worth of facts about a run, for ``trainwright runs``: data, model, key test metric, epochs, time."""
    def optional(path: Path) -> dict:
        try:
            return run.read_json(path) if path.is_file() else {}
        except TrainwrightError:
            return {}

    data, model, metrics, env = optional(run.data), optional(run.model_info), optional(run.metrics), optional(run.environment)
    task = data.get("task") or metrics.get("task")
    key = KEY_METRIC.get(task or "", "accuracy")
    return {
        "name": run.path.name,
        "path": run.path,
        "data": data.get("name") or data.get("source"),
        "model": model.get("type"),
        "parameters": model.get("parameters"),
        "task": task,
        "metric": key,
        "value": (metrics.get("test") or {}).get(key),
        "epochs": metrics.get("epochs"),
        "seconds": metrics.get("train_seconds"),
        "started": env.get("started"),
        "finished": bool(metrics),
    }


def list_runs(runs_dir: str | Path) -> list[dict]:
    """Every run directory directly under ``runs_dir``, oldest first.

    Example:
        >>> [r["name"] for r in list_runs("runs")]
        ['digits-mlp-20260101-120000', 'iris-mlp-20260101-121500']
    """
    root = Path(runs_dir)
    if not root.is_dir():
        raise TrainwrightError(f"{root} is not a directory; `trainwright runs DIR` lists the runs that `train --runs-dir DIR` wrote")
    runs = [summarize_run(RunDir(path)) for path in root.iterdir() if (path / "config.yaml").is_file()]
    return sorted(runs, key=lambda r: (r["started"] or "", r["name"]))


def compare_runs(run_dirs: list[str | Path]) -> tuple[list[str], dict[str, list], dict[str, list]]:
    """Names, the config keys whose values differ (``{dotted.key: [value per run]}``) and the
    test metrics side by side (``{metric: [value per run]}``, with epochs and training time).

    Example:
        >>> names, differ, metrics = compare_runs(["runs/a", "runs/b"])
        >>> differ
        {'train.optimizer.lr': [0.001, 0.01]}
    """
    if len(run_dirs) < 2:
        raise TrainwrightError("compare needs at least two run directories, e.g. trainwright compare runs/a runs/b")
    runs = [RunDir.open(path) for path in run_dirs]
    configs = [_flatten(load_config(run.config).to_dict()) for run in runs]
    keys = list(dict.fromkeys(key for config in configs for key in config))
    missing = object()
    differ = {key: [config.get(key) for config in configs] for key in keys
              if len({repr(config.get(key, missing)) for config in configs}) > 1}
    summaries = [summarize_run(run) for run in runs]
    tests = [(run.read_json(run.metrics).get("test") or {}) if run.metrics.is_file() else {} for run in runs]
    metric_names = list(dict.fromkeys(name for test in tests for name in test))
    metrics: dict[str, list] = {name: [test.get(name) for test in tests] for name in metric_names}
    metrics["epochs"] = [s["epochs"] for s in summaries]
    metrics["train_seconds"] = [s["seconds"] for s in summaries]
    return [run.path.name for run in runs], differ, metrics


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"optimizer": {"lr": 0.1}}}`` -> ``{"train.optimizer.lr": 0.1}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def read_rows(path: str | Path) -> pd.DataFrame:
    """New rows for predict/evaluate, in any table format ``train`` reads."""
    from trainwright.data.sources import read_table

    return read_table(path)


def _free_name(frame: pd.DataFrame, name: str) -> str:
    """``name``, or ``name_1``, ... if the input already has such a column."""
    candidate, n = name, 0
    while candidate in frame.columns:
        n += 1
        candidate = f"{name}_{n}"
    return candidate


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
