"""The rows an export's parity check runs on: the run's own test split, or rows the caller gives.

Example:
    >>> x, where = test_inputs(load("runs/digits-mlp"), RunDir.open("runs/digits-mlp"))
    >>> x.shape, where
    ((270, 61), "270 rows of the run's test split, rebuilt from its config")
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from trainwright.data.prepare import prepare_data
from trainwright.errors import TrainwrightError
from trainwright.predict import TrainedModel
from trainwright.rundir import RunDir


def test_inputs(trained: TrainedModel, run: RunDir) -> tuple[np.ndarray, str]:
    """The run's test split rebuilt from its config and data, as model inputs (N, ...), and a
    phrase saying where they came from. The data must be those the run was trained on."""
    data = prepare_data(trained.config.data)
    if run.read_json(run.data) != json.loads(json.dumps(data.summary)):
        raise TrainwrightError(f"the data differ from when {run.path} was trained (see its data.json); the export's parity check "
                               f"needs the run's test rows: restore the data, or give rows of your own (rows=..., --rows FILE)")
    where = "test split" if data.held_out else "training rows (the run held none out)"
    unit = "windows" if getattr(trained.preprocessor, "modality", "") == "series" else "rows"  # a forecaster's inputs
    return data.x_test.numpy(), f"{len(data.x_test)} {unit} of the run's {where}, rebuilt from its config"


def rows_inputs(trained: TrainedModel, rows: pd.DataFrame | str | Path) -> tuple[np.ndarray, str]:
    """Inputs for rows the caller gives (a frame or a table file), through the run's preprocessing."""
    if isinstance(rows, str | Path) and not Path(rows).exists():
        raise TrainwrightError(f"{rows} does not exist; give a table of rows to check the export on (--rows FILE), or leave "
                               f"--rows out to check on the run's test split")
    _, x = trained.preprocessor.inputs(rows)
    return np.asarray(x), f"{len(x)} rows given for the check"
