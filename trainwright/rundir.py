"""The run directory: its layout, and the only writer of a run's files.

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
├── env.json, episode.gif  rl only: the environment's facts; one episode of the kept policy (seeds.json with --seeds)
├── diagnosis.json         what went wrong in training: findings with evidence and remedies
├── report.html            the HTML report of all of the above
└── checkpoints/last.safetensors   everything needed to resume
```

Every file of a run is written through a ``RunDir`` method, atomically (a reader sees the old file
or the new one, never half of either), and only by the process that writes: under
torch.distributed that is rank 0, in a single process always. Other ranks' writes are no-ops, so
code that writes need not know about ranks. Later stages (predict, evaluate, report) read only this
directory, so they work on yesterday's runs.

Example:
    >>> run = RunDir.create("runs", "digits-mlp")
    >>> run.write_json(run.metrics, {"test": {"accuracy": 0.98}})
    >>> run.read_json(run.metrics)["test"]["accuracy"]
    0.98
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import distributed

from trainwright.errors import TrainwrightError
from trainwright.files import atomic_path, atomic_write


def is_writer() -> bool:
    """Whether this process writes run files: rank 0 under torch.distributed, else always."""
    return not (distributed.is_available() and distributed.is_initialized()) or distributed.get_rank() == 0


class RunDir:
    """Paths inside one run directory, and the methods that write them."""

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
        self.env_info = self.path / "env.json"  # rl only: the environment's id, spaces, solved level
        self.episode = self.path / "episode.gif"  # rl only: one episode of the kept policy
        self.seeds = self.path / "seeds.json"  # rl only, with --seeds: every seed's final return and the IQM

    @classmethod
    def create(cls, runs_dir: str | Path, name: str) -> RunDir:
        """Make a new, empty run directory; never reuse or overwrite an existing one."""
        if not re.fullmatch(r"[\w.\-]+", name) or name in (".", ".."):
            raise TrainwrightError(f"run name {name!r} may hold only letters, digits, '.', '_' and '-'")
        run = cls(Path(runs_dir) / name)
        if not is_writer():
            return run
        try:
            run.path.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise TrainwrightError(
                f"{run.path} already exists; choose another --name, or continue it with --resume {run.path}"
            ) from None
        except OSError as error:
            raise TrainwrightError(f"cannot create the run directory {run.path}: {error.strerror}") from None
        (run.path / "checkpoints").mkdir()
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory; anything else is a clear error."""
        run = cls(path)
        if not run.path.is_dir():
            raise TrainwrightError(
                f"run directory {run.path} does not exist; `trainwright train` prints the run directory as its last line"
            )
        if not run.config.is_file():
            raise TrainwrightError(f"{run.path} is not a trainwright run directory (it has no config.yaml)")
        return run

    @property
    def writes(self) -> bool:
        """Whether this process writes the run's files (see ``is_writer``)."""
        return is_writer()

    # ── writing: every file of a run goes through one of these ─────────────────────────
    def write_text(self, path: Path | str, text: str) -> None:
        if self.writes:
            atomic_write(self._inside(path), text)

    def write_bytes(self, path: Path | str, data: bytes) -> None:
        if self.writes:
            atomic_write(self._inside(path), data)

    def write_json(self, path: Path | str, data: Any) -> None:
        """Strict JSON: NaN (an undefined metric) is written as null."""
        self.write_text(path, json.dumps(_finite(data), indent=2, default=_json_default, allow_nan=False) + "\n")

    def write_files(self, files: dict[str, str | bytes]) -> None:
        """Several files by name (a preprocessor's ``files()``), each atomically."""
        for name, content in files.items():
            (self.write_text if isinstance(content, str) else self.write_bytes)(name, content)

    def write_tensors(self, path: Path | str, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
        """A safetensors file: the tensors must be on the CPU, contiguous and share no storage."""
        self.write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))

    def write_with(self, path: Path | str, write: Callable[[Path], None]) -> None:
        """``write(tmp)`` fills a temporary file beside ``path``, which then replaces ``path`` in one rename."""
        if self.writes:
            with atomic_path(self._inside(path)) as tmp:
                write(tmp)

    def save_weights(self, module: torch.nn.Module) -> None:
        """The module's weights as ``model.safetensors``."""
        # Cloning breaks storage sharing between tensors, which safetensors refuses.
        self.write_tensors(self.weights, {k: v.detach().to("cpu").clone().contiguous() for k, v in module.state_dict().items()})

    def _inside(self, path: Path | str) -> Path:
        """A file of this run: a name relative to it, or a path inside it."""
        path = Path(path)
        full = path if path.is_absolute() or path.parts[: len(self.path.parts)] == self.path.parts else self.path / path
        if self.path.resolve() not in full.resolve().parents:
            raise ValueError(f"{full} is not inside the run directory {self.path}")
        return full

    # ── reading ──────────────────────────────────────────────────────────────────────────
    def read_json(self, path: Path | str) -> Any:
        path = self.path / path if isinstance(path, str) else path
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TrainwrightError(
                f"{self.path} has no {path.name}; the run did not finish (resume it with --resume {self.path})"
            ) from None
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
    """Versions, platform, device and seed: environment.json, what is needed to repeat a run."""
    versions = {name: _version(name) for name in ("trainwright", "torchmetrics", "scikit-learn")}
    return {
        "trainwright": versions["trainwright"],
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchmetrics": versions["torchmetrics"],
        "scikit-learn": versions["scikit-learn"],
        "numpy": np.__version__,
        "pandas": _version("pandas"),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "seed": seed,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


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
