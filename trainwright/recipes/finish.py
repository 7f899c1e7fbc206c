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

from trainwright.background import Background, Job, Later, Worker
from trainwright.compute import Estimate, compute_metrics, compute_summary
from trainwright.compute.stages import Stages
from trainwright.config import Config
from trainwright.data.images import ImageData
from trainwright.data.prepare import Prepared
from trainwright.evaluate.baselines import comparable, judge, verdict
from trainwright.evaluate.calibration import calibrate_outputs
from trainwright.evaluate.diagnose import print_findings
from trainwright.evaluate.image_grids import examples_png, misclassified_png
from trainwright.evaluate.intervals import CONFIDENCE, metric_intervals
from trainwright.evaluate.metrics import choose_threshold, predict_outputs, predicted_classes
from trainwright.predict import TrainedModel, load
from trainwright.recipes.setup import ForkedBaselines, score_splits, scored_baselines, wants_baselines
from trainwright.report import write_report
from trainwright.rundir import RunDir
from trainwright.runs import diagnose_run
from trainwright.tracking.callback import Tracker, trackers_in
from trainwright.training.callbacks import EarlyStopping
from trainwright.training.distributed import Replicas
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


def finish(run_dir: RunDir, console: Console, diverged: dict | None = None, trackers: list[Tracker] | tuple = (),
           worker: Worker | None = None) -> None:
    """Diagnose the run and write its report, both from the run directory alone (``diverged``:
    ``{"epoch", "loss", "lr"}`` for a run whose loss became NaN; ``worker``: the run's ``Worker``, which draws
    the report's figures); then the tracking callbacks (``track``) log the final metrics and the run's files,
    and close."""
    run_dir.settle()  # the files training handed to the writer thread are on disk before they are read
    findings = diagnose_run(run_dir.path, diverged=diverged)
    run_dir.write_json(run_dir.diagnosis, {"findings": findings})
    print_findings(console, findings)
    console.print(f"report: {write_report(run_dir.path, worker)}", highlight=False, soft_wrap=True)
    metrics = run_dir.read_json(run_dir.metrics) if trackers and run_dir.metrics.is_file() else {}
    for tracker in trackers:
        tracker.finish(run_dir.path, metrics)
        tracker.close()
        if line := tracker.summary():
            console.print(line, highlight=False, soft_wrap=True)
    run_dir.unlock()  # the run is whole: another process may open it now, though this one (a notebook's) lives on


def finish_supervised(run_dir: RunDir, cfg: Config, data: Prepared, module: nn.Module, device: torch.device, fit: Fit,
                      est: Estimate, seconds: float, console: Console, *, stages: Stages | None = None,
                      baselines: ForkedBaselines | Background | Job | None = None, scores: Later | None = None,
                      worker: Worker | None = None) -> Run:
    """Evaluate the kept weights on the untouched test split, write every result, then ``finish``.

    ``baselines``, ``scores``: the baselines (predictions and metrics) being computed beside the run, and the
    process that scores the network's outputs (``setup.Beside``); without them, that is done here. ``worker``:
    the process doing them, when the command line started one; it draws the report's figures too.
    ``stages``: where the run's wall time goes (``metrics.json`` compute.stages)."""
    pre = data.preprocessor
    stages = stages or Stages()
    stopper = next(cb for cb in fit.callbacks if isinstance(cb, EarlyStopping))
    with stages.time("evaluation"):
        # Data-parallel: each process predicts its share of each split, rank 0 scores and writes them all.
        replicas = getattr(fit, "replicas", None)  # a member of a batched fit (cv, tune) trains in one process
        val_outputs, test_outputs, train_outputs = (outputs_for(module, x, device, cfg, replicas)
                                                    for x in (data.x_val, data.x_test, data.x_train))
        weights = replicas.full_weights(module) if replicas is not None else module.state_dict()  # FSDP: rank 0 gathers
    if not run_dir.writes:
        return Run(run_dir.path, cfg, {}, fit.history)
    with stages.time("evaluation"):
        threshold = decision_threshold(cfg, data, val_outputs, run_dir, console)
        if scores is not None:
            scores.send(*(outputs.cpu().numpy() for outputs in (val_outputs, test_outputs, train_outputs)), threshold)
            val_scores, test_scores, train_scores = scores.result()
        else:
            val_scores, test_scores, train_scores = score_splits(data, val_outputs, test_outputs, train_outputs, threshold)
        metrics = {
            "task": data.task,
            "test": test_scores,
            "val": val_scores,
            "train": train_scores,
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
        # How sure: 95% intervals of the headline test metrics, and the network against the best baseline on the same rows.
        ours, truth = comparable_test(test_outputs, data, threshold)
        n_classes, scale = len(pre.classes), getattr(pre, "mase_scale", None)
        metrics["intervals"] = {"test": metric_intervals(ours, truth, data.task, n_classes, scale)}
        if threshold is not None:
            metrics["threshold"] = threshold
    if wants_baselines(cfg, data):  # tables: classical models; text: TF-IDF; series: naive forecasts, ridge AR
        with stages.time("baselines"):  # the wait for them, when they were fitted beside the network
            predictions, metrics["baselines"] = baselines.result() if baselines is not None else scored_baselines(data)
        comparable_predictions = {name: comparable(p, data.task) for name, p in predictions.items()}
        metrics["intervals"]["baselines"], metrics["comparison"] = judge(
            ours, comparable_predictions, metrics["baselines"], truth, data.task, n_classes, scale
        )
    metrics["compute"]["stages"] = dict(stages.seconds)
    metrics["compute"]["started_at"] = stages.started_at
    run_dir.save_weights(weights)  # plain full weights
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

    finish(run_dir, console, trackers=trackers_in(fit.callbacks), worker=worker)
    return Run(run_dir.path, cfg, metrics, fit.history)


def decision_threshold(cfg: Config, data: Prepared, val_outputs: torch.Tensor, run_dir: RunDir, console: Console) -> float | None:
    """``evaluate.threshold``: a binary decision threshold, fixed or chosen on the validation split (written to
    threshold.json, which predict reads); None: the likelier class."""
    setting = cfg.evaluate.threshold
    if setting == "none" or data.task != "binary":
        return None
    if setting == "auto":
        threshold = choose_threshold(probabilities(val_outputs, data.task), data.y_val)
        how = "chosen on the validation split for the best balanced accuracy"
    else:
        threshold, how = float(setting), "evaluate.threshold"
    run_dir.write_json(run_dir.path / "threshold.json", {"threshold": threshold, "how": how})
    console.print(f"decision threshold: predict {data.preprocessor.classes[1]!r} from probability {threshold:.3g} ({how})",
                  highlight=False, soft_wrap=True)
    return threshold


def comparable_test(outputs: torch.Tensor, data: Prepared, threshold: float | None):
    """The network's test predictions and the truth, as intervals and comparisons read them: class indices,
    values (N,) or forecasts (N, horizon), in original units."""
    pre = data.preprocessor
    if data.task != "regression":
        return predicted_classes(probabilities(outputs, data.task), threshold).numpy(), data.y_test.numpy()
    shape = tuple(data.y_test.shape) if getattr(pre, "modality", "") == "series" else (-1,)  # forecasts (N, horizon)
    return pre.decode_target(outputs.numpy()).reshape(shape), pre.decode_target(data.y_test.numpy()).reshape(shape)


def outputs_for(module: nn.Module, x: torch.Tensor, device: torch.device, cfg: Config,
                replicas: Replicas | None = None) -> torch.Tensor:
    """The model's outputs on ``x``, batch by batch (x may not fit on the device); ``replicas``: each process
    predicts its contiguous share of the rows and every process gets them all, in order, each once."""
    replicas = replicas or Replicas()
    with replicas.whole(module):  # FSDP: the weights gathered once, not per batch
        mine = predict_outputs(module, x[replicas.shard_rows(len(x))], cfg.evaluate.batch_size, device).float()
    return replicas.gather_rows(mine, len(x)).cpu()


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
    intervals = (metrics.get("intervals") or {}).get("test") or {}
    table = Table(title=f"metrics on the {where}", title_justify="left")
    table.add_column("metric")
    for split in ("test", "val", "train"):
        table.add_column(split, justify="right")
    if intervals:
        table.add_column(f"test {CONFIDENCE:.0%} interval", justify="right")
    for key, value in metrics["test"].items():
        cells = [_fmt(value), _fmt(metrics["val"].get(key)), _fmt(metrics.get("train", {}).get(key))]
        table.add_row(key, *cells, *([_span(intervals.get(key))] if intervals else []))
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
        comparison = metrics.get("comparison")
        if comparison:
            key, spans = comparison["metric"], (metrics.get("intervals") or {}).get("baselines") or {}
            table.add_row(f"{key} {CONFIDENCE:.0%}", _span(intervals.get(key)),
                          *(_span((spans.get(name) or {}).get(key)) for name in baselines))
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


def _span(interval: list[float] | None) -> str:
    return "-" if not interval or any(math.isnan(v) for v in interval) else f"{interval[0]:.3f}..{interval[1]:.3f}"


def _fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"
