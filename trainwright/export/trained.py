"""Everything export and serve take from the rest of trainwright, in one place.

The trained-model API (``load``, ``TrainedModel``, ``RunDir``), the data stage (to rebuild a
run's test rows) and the preprocessors' classes. Each import is inside its function: importing
this module costs nothing, and prediction from an exported directory touches only the one
preprocessor module it needs (no torch; see ``predictor.py``).

Example:
    >>> model = load_trained("runs/digits-mlp")          # a TrainedModel
    >>> x, source = test_inputs(model, "runs/digits-mlp")  # (N, ...) inputs of the run's test split
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from trainwright.errors import TrainwrightError

# preprocessor.json's "modality" -> (module, class): only the one needed is imported, so a table
# model's prediction needs neither Pillow nor tokenizers, and none needs torch once the
# preprocessor modules import it lazily (the list of changes is in the export README section).
PREPROCESSORS = {
    "tabular": ("trainwright.data.tabular", "TabularPreprocessor"),
    "images": ("trainwright.data.images", "ImagePreprocessor"),
    "text": ("trainwright.data.text", "TextPreprocessor"),
    "series": ("trainwright.data.series", "SeriesPreprocessor"),
}


def modality_of(directory: Path) -> str:
    """The modality a run (or exported) directory's preprocessor.json names."""
    try:
        facts = json.loads((Path(directory) / "preprocessor.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise TrainwrightError(f"{directory} has no readable preprocessor.json; it is not a finished trainwright run or export") from None
    modality = facts.get("modality", "tabular")
    if modality not in PREPROCESSORS:
        raise TrainwrightError(f"{directory} was written for {modality!r} data, which this version of trainwright cannot read")
    return modality


def load_preprocessor(directory: Path) -> Any:
    """The fitted preprocessor saved in ``directory``, importing only its modality's module."""
    module, name = PREPROCESSORS[modality_of(directory)]
    return getattr(importlib.import_module(module), name).load(Path(directory))


def open_run(run_dir: str | Path) -> Any:
    """The run directory (``RunDir``); a clear error when it is not one."""
    from trainwright.runs import RunDir

    return RunDir.open(run_dir)


def load_trained(run_dir: str | Path, model: Any = None) -> Any:
    """The run's ``TrainedModel`` on the CPU, calibrated when the run is."""
    from trainwright.runs import load

    return load(run_dir, model=model, device="cpu")


def test_inputs(trained: Any, run_dir: str | Path) -> tuple[Any, str]:
    """The run's test split rebuilt from its config and data, as model inputs (N, ...), and a
    phrase saying where they came from. The data must be those the run was trained on."""
    from trainwright.data.prepare import prepare_data

    run = open_run(run_dir)
    data = prepare_data(trained.config.data)
    if run.read_json(run.data) != json.loads(json.dumps(data.summary)):
        raise TrainwrightError(f"the data differ from when {run.path} was trained (see its data.json); the export's parity check "
                               f"needs the run's test rows: restore the data, or give rows of your own (rows=..., --rows FILE)")
    where = "test split" if data.held_out else "training rows (the run held none out)"
    return data.x_test, f"{len(data.x_test)} rows of the run's {where}, rebuilt from its config"


def rows_inputs(trained: Any, rows: Any) -> tuple[Any, str]:
    """Inputs for rows the caller gives (a frame or a file), through the run's preprocessing."""
    _, x = trained.preprocessor.inputs(rows)
    return x, f"{len(x)} rows given for the check"
