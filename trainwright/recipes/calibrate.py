"""Calibrating a finished run: rebuild its split from the run's own config and seed, fit the
calibration on the validation outputs, judge it on the test outputs, keep it in the run directory.

From then on ``predict`` returns calibrated probabilities (``predict.load_calibrator``).

Example:
    >>> result = calibrate_run("runs/digits-mlp-20260101-120000", "temperature")
    >>> result["before"]["ece"], result["after"]["ece"]
"""

from __future__ import annotations

from pathlib import Path

import torch

from trainwright.data.prepare import prepare_data
from trainwright.errors import TrainwrightError
from trainwright.evaluate.calibration import Method, calibrate_outputs
from trainwright.evaluate.metrics import predict_outputs
from trainwright.predict import load
from trainwright.recipes.setup import check_same_data
from trainwright.rundir import RunDir


def calibrate_run(run_dir: str | Path, method: Method = "temperature") -> dict:
    """Calibrate a finished classifier run; writes calibration.json and reliability.png, returns the former."""
    run = RunDir.open(run_dir)
    model = load(run.path, calibrated=False)
    if model.task == "regression":
        raise TrainwrightError("calibration applies to classifiers; this run does regression")
    if model.threshold is not None:
        raise TrainwrightError(
            f"{run.path} predicts with a decision threshold set on its own probabilities (threshold.json); calibrating "
            "would move them under it: train again without evaluate.threshold to calibrate"
        )
    data = prepare_data(model.config.data)
    check_same_data(run, data, "calibration")
    if not data.held_out:
        raise TrainwrightError(
            "this run held out no validation rows (the data set was too small to split); calibration needs them"
        )

    def outputs(x: torch.Tensor) -> torch.Tensor:
        return predict_outputs(model.module, x.to(model.device), model.config.evaluate.batch_size).float().cpu()

    result, png = calibrate_outputs(method, model.task, (outputs(data.x_val), data.y_val), (outputs(data.x_test), data.y_test))
    run.write_json(run.path / "calibration.json", result)
    run.write_bytes(run.path / "reliability.png", png)
    return result
