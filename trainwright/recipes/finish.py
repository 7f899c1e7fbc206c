"""The finish stage: what a run measured goes into its directory, then the diagnosis and the report.

``finish`` is the step every recipe ends with, whatever it trained: it diagnoses the run from its
directory alone and writes the report (a run whose loss became NaN gets both too, of what did
happen). ``finish_supervised`` is what a recipe with a held-out test split calls first: metrics on
the test, validation and training splits, the classical baselines, the test predictions, the
model's weights, the image grids, the optional calibration.

Example:
    >>> run = finish_supervised(run_dir, cfg, data, module, device, fit, est, seconds, console)
    >>> finish(run_dir, console)   # a recipe of another kind: after writing its own metrics.json
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from trainwright.background import Background
from trainwright.compute import Estimate, compute_metrics, compute_summary
from trainwright.compute.stages import Stages
from trainwright.config import Config
from trainwright.data.images import ImageData
from trainwright.data.prepare import Prepared
from trainwright.evaluate.baselines import baseline_predictions, score_baselines, verdict
from trainwright.evaluate.calibration import calibrate_outputs
from trainwright.evaluate.diagnose import print_findings
from trainwright.evaluate.image_grids import examples_png, misclassified_png
from trainwright.evaluate.metrics import predict_outputs
from trainwright.predict import TrainedModel, load, score
from trainwright.recipes.setup import wants_baselines
from trainwright.report import write_report
from trainwright.rundir import RunDir
from trainwright.runs import diagnose_run
from trainwright.training.callbacks import EarlyStopping
from trainwright.training.loop import Fit
from trainwright.training.losses import probabilities


@dataclass
class Run:
    """The result of a training recipe: where it was written and what it measured."""

    dir: Path
    config: Config
    metrics: dict
    history: list[dict]

    def load(self, model: nn.Module | None = None) -> TrainedModel:
        return load(self.dir, model=model)


def finish(run_dir: RunDir, console: Console, diverged: dict | None = None) -> None:
    """Diagnose the run and write its report, both from the run directory alone (``diverged``:
    ``{"epoch", "loss", "lr"}`` for a run whose loss became NaN)."""
    findings = diagnose_run(run_dir.path, diverged=diverged)
    run_dir.write_json(run_dir.diagnosis, {"findings": findings})
    print_findings(console, findings)
    console.print(f"report: {write_report(run_dir.path)}", highlight=False, soft_wrap=True)


def finish_supervised(run_dir: RunDir, cfg: Config, data: Prepared, module: nn.Module, device: torch.device, fit: Fit,
                      est: Estimate, seconds: float, console: Console, *, stages: Stages | None = None,
                      baselines: Background | None = None) -> Run:
    """Evaluate the kept weights on the untouched test split, write every result, then ``finish``.

    ``baselines``: the baselines' predictions being computed beside the run (``setup.Beside``); without
    it, they are fitted here."""
    pre = data.preprocessor
    stages = stages or Stages()
    stopper = next(cb for cb in fit.callbacks if isinstance(cb, EarlyStopping))
    with stages.time("evaluation"):
        val_outputs, test_outputs = outputs_for(module, data.x_val, device, cfg), outputs_for(module, data.x_test, device, cfg)
        metrics = {
            "task": data.task,
            "test": score(test_outputs, data.y_test, pre),
            "val": score(val_outputs, data.y_val, pre),
            "train": score(outputs_for(module, data.x_train, device, cfg), data.y_train, pre),
            "held_out": data.held_out,
            "best_epoch": stopper.best_epoch,
            "epochs": fit.epoch,
            "train_seconds": seconds,
            "stopped_early": fit.stop_reason,
            "compute": compute_metrics(est, seconds, fit.epoch),
        }
        for split in ("test", "val", "train"):
            matrix = metrics[split].pop("confusion_matrix", None)
            if split == "test" and matrix is not None:
                metrics["confusion_matrix"] = {"labels": pre.classes, "matrix": matrix}
    if wants_baselines(cfg, data):  # tables: classical models; text: TF-IDF; series: naive forecasts
        with stages.time("baselines"):  # the wait for them, when they were fitted beside the network
            predictions = baselines.result() if baselines is not None else baseline_predictions(data)
            metrics["baselines"] = score_baselines(data, predictions)
    metrics["compute"]["stages"] = dict(stages.seconds)
    metrics["compute"]["started_at"] = stages.started_at
    run_dir.save_weights(module)
    run_dir.write_text(run_dir.predictions, test_predictions(test_outputs, data).to_csv(index=False))
    run_dir.write_json(run_dir.metrics, metrics)
    if isinstance(data, ImageData):  # the misclassified test images, and training images before and after augmentation
        run_dir.write_bytes(
            run_dir.misclassified, misclassified_png(data.x_test, data.y_test, test_outputs, data.task, pre.classes)[0]
        )
        run_dir.write_bytes(run_dir.examples, examples_png(data.x_train, data.y_train, pre.classes, data.train_transform))
    print_metrics(console, metrics)
    console.print(compute_summary(metrics["compute"], fit.epoch), highlight=False, soft_wrap=True)

    # Optionally calibrate the probabilities (fitted on validation, judged on test).
    if cfg.calibrate is not None:
        result, png = calibrate_outputs(cfg.calibrate.method, data.task, (val_outputs, data.y_val), (test_outputs, data.y_test))
        run_dir.write_json(run_dir.path / "calibration.json", result)
        run_dir.write_bytes(run_dir.path / "reliability.png", png)
        print_calibration(console, result)

    finish(run_dir, console)
    return Run(run_dir.path, cfg, metrics, fit.history)


def outputs_for(module: nn.Module, x: torch.Tensor, device: torch.device, cfg: Config) -> torch.Tensor:
    return (
        predict_outputs(module, x, cfg.evaluate.batch_size, device).float().cpu()
    )  # batch by batch: x may not fit on the device


def test_predictions(outputs: torch.Tensor, data: Prepared) -> pd.DataFrame:
    """The test rows' true values, predictions and class probabilities (original units and labels),
    so the report draws ROC curves or residuals from the run directory alone."""
    pre = data.preprocessor
    frame = pd.DataFrame({"actual": pre.decode_target(data.y_test.numpy())})
    if data.task == "regression":
        frame["predicted"] = pre.decode_target(outputs.numpy())
    else:
        probs = probabilities(outputs, data.task).numpy()  # (N, C)
        frame["predicted"] = pre.decode_target(probs.argmax(1))
        for i in range(probs.shape[1]):
            frame[f"p{i}"] = probs[:, i]  # column i is class pre.classes[i] (labels may be any text)
    return frame


def print_metrics(console: Console, metrics: dict) -> None:
    where = "test split" if metrics["held_out"] else "training rows (the set was too small to hold any out)"
    table = Table(title=f"metrics on the {where}", title_justify="left")
    table.add_column("metric")
    for split in ("test", "val", "train"):
        table.add_column(split, justify="right")
    for key, value in metrics["test"].items():
        table.add_row(key, _fmt(value), _fmt(metrics["val"].get(key)), _fmt(metrics.get("train", {}).get(key)))
    console.print(table)
    console.print(
        f"best epoch {metrics['best_epoch']} of {metrics['epochs']}, {metrics['train_seconds']:.2f} s training", highlight=False
    )
    baselines = metrics.get("baselines")
    if baselines:
        table = Table(title="the network beside classical baselines, same split (test)", title_justify="left")
        table.add_column("metric")
        for name in ("network", *baselines):
            table.add_column(name, justify="right")
        for key, value in metrics["test"].items():
            table.add_row(key, _fmt(value), *(_fmt(scores.get(key)) for scores in baselines.values()))
        console.print(table)
        console.print(verdict(metrics), highlight=False, soft_wrap=True)


def print_calibration(console: Console, result: dict) -> None:
    title = (
        f"calibration ({result['method']}"
        + (f", T = {result['temperature']:.3f}" if "temperature" in result else "")
        + "), test split"
    )
    table = Table(title=title, title_justify="left")
    for column in ("metric", "before", "after"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for key in result["before"]:
        table.add_row(key, _fmt(result["before"][key]), _fmt(result["after"][key]))
    console.print(table)


def _fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"
