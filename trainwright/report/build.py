"""The run report: one self-contained HTML file built from the run directory alone.

``write_report(run_dir)`` reads what ``train`` wrote (config, data summary, model table,
history, gradient statistics, metrics with baselines, test predictions, diagnosis) and writes
``report.html`` beside them. Every section works with what is there: a run that failed or
was interrupted still gets a report of what happened. Text from the user's data (column
names, class labels, paths) goes through Jinja2's autoescaping; figures are PNG data URIs.

Example:
    >>> write_report("runs/digits-mlp-20260101-120000")
    PosixPath('runs/digits-mlp-20260101-120000/report.html')
"""

from __future__ import annotations

import base64
import csv
import json
import statistics
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import torch

from trainwright.background import Background, Worker, cores
from trainwright.errors import TrainwrightError
from trainwright.evaluate.baselines import verdict
from trainwright.evaluate.calibration import N_BINS, expected_calibration_error
from trainwright.evaluate.diagnose import read_history
from trainwright.evaluate.figures import load_matplotlib
from trainwright.report import plots
from trainwright.report.cv import write_cv_report
from trainwright.report.rl import render_rl_report
from trainwright.rundir import RunDir
from trainwright.runs import KEY_METRIC, diagnose_run, recipe_of

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("trainwright.report", "templates"),
    autoescape=True,  # every {{ value }} is HTML-escaped: column names and labels are user text
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _number(value: Any, digits: int = 4) -> str:
    """Report numbers: ints with separators, floats to ``digits`` decimals, missing or NaN as a dash."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}"


def _si(value: float | None, unit: str = "") -> str:
    """1234567 -> '1.23 M' (FLOPs, rows per second)."""
    if value is None:
        return "-"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".strip()


_TEMPLATES.filters.update(number=_number, si=_si)


def write_report(run_dir: str | Path, worker: Worker | None = None) -> Path:
    """Write ``report.html`` into the run directory (atomically) and return its path (``worker``: a
    ``Worker`` that has loaded matplotlib already draws the figures)."""
    if (Path(run_dir) / "cv.json").is_file():  # a cross-validation directory has a report of its own kind
        return write_cv_report(run_dir)
    if (Path(run_dir) / "study.json").is_file():
        raise TrainwrightError(f"{run_dir} is a hyperparameter study; `trainwright tune` with its --name rewrites its report")
    run = RunDir.open(run_dir)
    with run.writing():  # a run another process is writing is neither read half-way nor written
        run.write_text(run.report, render_report(run, worker=worker))
    return run.report


def render_report(run: RunDir, parallel: bool = True, worker: Worker | None = None) -> str:
    if recipe_of(run) == "rl":  # no data set, no test split: a report of its own (report/rl.py)
        return render_rl_report(run, _TEMPLATES)
    return _TEMPLATES.get_template("report.html.j2").render(**report_context(run, parallel, worker))


def report_context(run: RunDir, parallel: bool = True, worker: Worker | None = None) -> dict[str, Any]:
    """Everything the template shows, read from the run directory. A file that does not match the
    run's manifest (truncated, changed) is named in a warning and in the report, and left out.

    ``parallel``: on a machine with a second core, the data, training and evaluation sections' figures are
    drawn in forked processes, or by ``worker`` (one process that has loaded matplotlib already) when it
    is alive; the same PNGs either way."""
    damaged = run.problems(*(p for p in run.path.iterdir() if p.is_file() and p not in (run.report, run.manifest)))
    for path, problem in damaged.items():
        warnings.warn(f"{path} {problem}; the report leaves it out", stacklevel=2)
    run = _Undamaged(run.path, set(damaged))
    data = _json(run, run.data)
    data = data if isinstance(data, dict) else {}
    metrics = _json(run, run.metrics)
    model = _json(run, run.model_info)
    environment = _json(run, run.environment) or {}
    gradients = _json(run, run.gradients)
    history = read_history(run.history)
    diagnosis = _json(run, run.diagnosis)
    findings = diagnosis["findings"] if diagnosis is not None else diagnose_run(run.path)
    task = data.get("task") or (metrics or {}).get("task", "")
    continual = _json(run, run.path / "continual.json")
    continual = continual if isinstance(continual, dict) and continual.get("matrix") else None
    gan = _gan_section(run, metrics, history) if (run.path / "gan.json").is_file() else None
    # The figures are drawn in forked processes, one per section, while this one reads the rest: children of the
    # run's worker (matplotlib loaded there already) or of this process; on one core, here. The same PNGs.
    fork = parallel and cores() > 1
    calls = [(_data_section, (run, data))]
    if gan is None:
        calls += [(_training_section, (history, gradients, metrics)), (_evaluation_section, (run, metrics, data))]
    if worker is not None and worker.alive and parallel:
        # The worker forks one child per section (the network has finished: the cores are free for them).
        drawn = worker.submit(drawn_apart, calls).result
    else:
        jobs = start_drawing(calls, fork)

        def drawn() -> list[Any]:
            return [job.result() for job in jobs]

    context = {
        "name": run.path.name,
        "data": data,
        "task": task,
        "metrics": metrics,
        "model": model,
        "environment": environment,
        "status": _gan_status(metrics, history) if gan is not None else _status(metrics, history, continual),
        "key_metric": KEY_METRIC.get(task, "accuracy"),
        "gan": gan,
        "compute": _compute_section(run, metrics, model, data, history, environment),
        "continual": _continual_section(continual),
        "findings": findings,
        "diagnosis_note": (diagnosis or {}).get("note"),
        "config_text": run.config.read_text(encoding="utf-8") if run.config.is_file() else "",
        "damaged": {path.name: problem for path, problem in damaged.items()},
    }
    data_section, training, evaluation = (*drawn(), {}, {})[:3]
    return context | {"data_section": data_section, "training": training, "evaluation": evaluation}


def start_drawing(calls: list[tuple[Callable[..., Any], tuple]], fork: bool = True) -> list[Background]:
    """Each ``fn(*args)`` of ``calls`` started in a forked child of this process, all at once (``fork=False``, or
    where processes do not fork: here, when its result is asked for). The children start with matplotlib loaded
    here, once (~0.4 s of CPU), not once in each."""
    if fork:
        load_matplotlib()
    return [Background(fn, *args, fork=fork) for fn, args in calls]


def drawn_apart(calls: list[tuple[Callable[..., Any], tuple]]) -> list[Any]:
    """``start_drawing``'s results, in order (the worker's job: one child of its own per section)."""
    return [job.result() for job in start_drawing(calls)]


class _Undamaged(RunDir):
    """The run as the report reads it: its damaged files as if they were not there."""

    def __init__(self, path: Path, damaged: set[Path]):
        super().__init__(path)
        for name, value in vars(self).copy().items():
            if isinstance(value, Path) and value in damaged:
                setattr(self, name, self.path / ".damaged" / value.name)  # a path that is never a file


def _json(run: RunDir, path: Path) -> Any:
    return run.read_json(path) if path.is_file() else None


def _status(metrics: dict | None, history: list[dict], continual: dict | None = None) -> str:
    if continual is not None and continual.get("command") == "continual":
        return f"finished: {len(continual['matrix'])} tasks in sequence, {metrics['epochs'] if metrics else '-'} epochs in all"
    if metrics is not None:
        return f"finished: {metrics['epochs']} epochs, best at epoch {metrics['best_epoch']}"
    done = f"after {len(history)} finished epoch{'s' if len(history) != 1 else ''}" if history else "before any epoch finished"
    return f"did not finish: training failed or was interrupted {done} (see the diagnosis)"


def _modality(data: dict) -> str:
    """Which data section the report draws: tables' data.json has columns and no ``modality`` key;
    images say so; anything else (a modality this version does not know) gets a generic view."""
    modality = data.get("modality")
    if modality is None and isinstance(data.get("columns"), dict) and isinstance(data.get("rows"), dict):
        return "table"
    return "images" if modality == "images" else "generic"


def _data_section(run: RunDir, data: dict) -> dict:
    if not data:
        return {}
    kind = _modality(data)
    out: dict[str, Any] = {"kind": kind, "split": _split(data.get("split"))}
    balance = data.get("class_balance") or {}
    if isinstance(balance, dict) and isinstance(balance.get("all"), dict) and balance["all"]:
        labels = list(balance["all"])
        parts = {
            part: [balance[part].get(label, 0) for label in labels]
            for part in ("train", "val", "test")
            if isinstance(balance.get(part), dict)
        }
        out["balance"] = {"labels": labels, "parts": {"all": [balance["all"][label] for label in labels], **parts}}
        out["balance_plot"] = plots.class_balance(labels, parts)
    if kind == "table":
        out["columns"] = data.get("columns", {})
        out["cleaning"] = [a for a in data.get("cleaning", []) if a.get("count")]
    elif kind == "images":
        out["images"] = _images(run, data)
    else:
        shown = {"split", "class_balance", "notes"}
        out["facts"] = {str(key): _fact(value) for key, value in data.items() if key not in shown}
    return out


def _split(split: Any) -> dict | None:
    """The split table's cells, or None when data.json has no split of the usual shape."""
    if not isinstance(split, dict) or not all(part in split for part in ("train", "val", "test")):
        return None
    how = ("stratified" if split.get("stratified") else "shuffled") + (f", seed {split['seed']}" if "seed" in split else "")
    if split.get("held_out") is False:
        how += "; too few rows: all rows train, validation and test are the training rows"
    return {
        "fractions": split.get("fractions", ""),
        "how": how,
        "train": split["train"],
        "val": split["val"],
        "test": split["test"],
    }


def _images(run: RunDir, data: dict) -> dict:
    """An image run's facts (source, decoding, normalization, skipped files, augmentation) and its grids."""
    found = data.get("images") or {}
    image = data.get("image") or {}
    skipped = found.get("skipped") or {}
    channels = ["gray"] if image.get("mode") == "grayscale" else ["red", "green", "blue"]
    mean, std = image.get("mean") or [], image.get("std") or []
    where = {"folder": "a folder with one sub-folder per class", "table": "a table of image paths", "builtin": "a built-in set"}
    return {
        "where": where.get(data.get("kind"), data.get("kind") or "-"),
        "found": found.get("found"),
        "usable": found.get("usable"),
        "duplicates": found.get("duplicates_dropped") or 0,
        "files": "images" if data.get("kind") == "builtin" else "files",  # a built-in set has no files
        "formats": (found.get("formats") or {}) if data.get("kind") != "builtin" else {},
        "skipped": {
            "count": skipped.get("count") or 0,
            "by_reason": skipped.get("by_reason") or {},
            "first": skipped.get("first") or [],
        },
        "mode": image.get("mode"),
        "size": "x".join(map(str, image.get("size") or [])),
        "resize": image.get("resize"),
        "normalization": [(channels[i] if i < len(channels) else str(i), m, s) for i, (m, s) in enumerate(zip(mean, std))],
        "augment": data.get("augment") or [],
        "examples": _png(run.examples),
    }


def _png(path: Path) -> str | None:
    """A PNG the run wrote, as a data URI (None when it is not there)."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii") if path.is_file() else None


def _fact(value: Any, limit: int = 400) -> str:
    """One value of an unknown data.json, as short text."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _training_section(history: list[dict], gradients: dict | None, metrics: dict | None) -> dict:
    if not history:
        return {}
    best = metrics["best_epoch"] if metrics else None
    stopped = history[-1]["epoch"] if metrics and metrics.get("stopped_early") else None
    metric_key = next((key for key in ("val_accuracy", "val_r2") if key in history[0]), None)
    keys = history[0].keys()  # each plot is drawn only when the run recorded what it shows
    out: dict[str, Any] = {
        "loss": plots.loss_curves(history, best, stopped) if keys & {"train_loss", "val_loss"} else None,
        "metric": plots.metric_curve(history, metric_key, best, stopped) if metric_key else None,
        "lr": plots.learning_rate(history) if "lr" in keys else None,
        "seconds": plots.epoch_seconds(history) if "seconds" in keys else None,
        "best_epoch": best,
        "stopped_early": (metrics or {}).get("stopped_early"),
        "epochs": history[-1]["epoch"],
    }
    records = [e for e in (gradients or {}).get("epochs", []) if e.get("norm_mean")]
    if records:
        names = [layer["name"] + f" ({layer['type']} {'x'.join(map(str, layer['shape']))})" for layer in gradients["layers"]]
        out["gradients"] = plots.gradient_norms(
            [e["epoch"] for e in records], names, [e["norm_mean"] for e in records], [e["norm_max"] for e in records]
        )
        out["gradient_every"] = gradients.get("every", 1)
        out["partial_epoch"] = next((e["epoch"] for e in records if e.get("partial")), None)
    dead = [e for e in (gradients or {}).get("epochs", []) if e.get("dead_share")]
    if dead:
        names = [f"{a['name']} ({a['type']})" for a in gradients["activations"]]
        out["dead"] = plots.dead_units([e["epoch"] for e in dead], names, [e["dead_share"] for e in dead])
    return out


def _evaluation_section(run: RunDir, metrics: dict | None, data: dict) -> dict:
    if metrics is None:
        return {}
    intervals = metrics.get("intervals") or {}
    out: dict[str, Any] = {
        "splits": [s for s in ("test", "val", "train") if s in metrics],
        "baselines": metrics.get("baselines") or {},
        "intervals": intervals.get("test") or {},
        "baseline_intervals": intervals.get("baselines") or {},
        "comparison": metrics.get("comparison"),
    }
    out["verdict"] = verdict(metrics)
    out["metric_names"] = list(metrics["test"])
    out["misclassified"] = _png(run.misclassified)  # images only
    matrix = metrics.get("confusion_matrix")
    if matrix:
        out["confusion"] = plots.confusion(matrix["labels"], matrix["matrix"])
    predictions = _read_predictions(run.predictions)
    if predictions is None:
        return out
    if metrics["task"] == "regression":
        actual = np.asarray(predictions["actual"], dtype=float)
        predicted = np.asarray(predictions["predicted"], dtype=float)
        out["predicted_vs_actual"] = plots.predicted_vs_actual(actual, predicted, data.get("target", "target"))
        out["residuals"] = plots.residuals(actual, predicted, data.get("target", "target"))
    else:
        # The classes, in the order of the probability columns p0, p1, ...
        labels = [str(label) for label in data.get("classes") or (matrix or {}).get("labels") or []]
        index = {label: i for i, label in enumerate(labels)}
        if (
            not labels
            or any(f"p{i}" not in predictions for i in range(len(labels)))
            or not set(predictions["actual"]) <= set(index)
        ):
            return out  # predictions that do not match the classes: leave the curves out rather than guess
        probs = np.column_stack([np.asarray(predictions[f"p{i}"], dtype=float) for i in range(len(labels))])  # (N, C)
        y_true = np.array([index[label] for label in predictions["actual"]])
        if len(np.unique(y_true)) > 1:  # a curve needs two classes among the test rows (an update may test one)
            out["roc"] = plots.roc_curves(labels, y_true, probs)
        # One expected calibration error for the report and `calibrate`: the same function and bins.
        out["ece"] = expected_calibration_error(torch.from_numpy(probs).float(), torch.from_numpy(y_true))
        out["reliability"] = plots.reliability(probs.max(1), (probs.argmax(1) == y_true).astype(float), out["ece"], N_BINS)
    return out


def _read_predictions(path: Path) -> dict[str, list[str]] | None:
    """The test predictions as columns of strings (labels stay text; numbers are parsed by the caller)."""
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        rows = [row for row in csv.DictReader(handle) if None not in row and None not in row.values()]  # whole rows only
    if not rows:
        return None
    return {key: [row[key] for row in rows] for key in rows[0]}


def _compute_section(
    run: RunDir, metrics: dict | None, model: dict | None, data: dict, history: list[dict], environment: dict
) -> dict:
    out: dict[str, Any] = {"device": environment.get("device"), "device_name": environment.get("device_name")}
    if history and all("seconds" in row for row in history):
        out["median_epoch_seconds"] = statistics.median(row["seconds"] for row in history)
    split, counts = data.get("split"), data.get("rows")
    rows = (split.get("train") if isinstance(split, dict) else None) or (
        counts.get("after_cleaning") if isinstance(counts, dict) else None
    )
    rows = rows if isinstance(rows, int) else None
    if metrics and rows and metrics.get("train_seconds"):
        seconds, epochs = metrics["train_seconds"], metrics["epochs"]
        out["train_seconds"] = seconds
        out["rows_per_second"] = rows * epochs / seconds
        if model and model.get("flops_per_row"):
            # Training costs about 3x the forward pass: the backward pass is about twice the forward.
            out["achieved_flops"] = 3 * model["flops_per_row"] * rows * epochs / seconds
    compile_ = ((metrics or {}).get("compute") or {}).get("compile")  # train.compile, decided (compute/compiling.py)
    if isinstance(compile_, dict):
        out["compile"] = f"{compile_.get('mode')} ({compile_.get('decided_by')}): {compile_.get('reason')}"
    # A compute estimate (estimate vs actual, utilization) is shown as it was recorded, when the run has one.
    estimate = _json(run, run.path / "compute.json")
    if isinstance(estimate, dict):
        out["estimate"] = {str(k): v for k, v in estimate.items() if not isinstance(v, (dict, list))}
    return out


def _continual_section(result: dict | None) -> dict:
    """continual.json as the report shows it: the measures, the accuracy matrix as a heat map (joint's row
    beside when the run trained it) and each task's accuracy as training goes on; {} for other runs."""
    if result is None:
        return {}
    names = [str(task.get("name", f"task {j + 1}")) for j, task in enumerate(result.get("tasks", []))]
    matrix = result["matrix"]
    if len(names) != len(matrix[0]):
        names = [f"task {j + 1}" for j in range(len(matrix[0]))]
    update = result.get("command") == "continue"
    if update:  # two rows: the old run's model, the updated one
        stages, columns = ["old run", f"after {result.get('strategy', 'update')}"], ["old data", "new data"]
    else:
        stages, columns = [f"after task {i + 1}" for i in range(len(matrix))], [f"task {j + 1}" for j in range(len(matrix[0]))]
    joint = result.get("joint") or {}
    curve = result.get("average_accuracy_curve")
    return {
        "result": result,
        "is_update": update,
        "names": list(zip(columns, names, strict=True)),
        "heatmap": plots.accuracy_matrix(matrix, stages, columns, joint.get("accuracies")),
        "curves": plots.task_curves(matrix, columns, curve if curve and all(v is not None for v in curve) else None,
                                    joint.get("average_accuracy"), stages),
    }


# ── GAN runs ─────────────────────────────────────────────────────────────────────────────
def _gan_status(metrics: dict | None, history: list[dict]) -> str:
    if metrics is not None:
        return (f"finished: {metrics['steps']:,} generator steps, the generator kept at step {metrics['best_step']:,} "
                f"({'best quality' if metrics.get('kept') == 'quality' else 'the last'})")
    done = f"after generator step {int(history[-1]['step']):,}" if history else "before the first evaluation"
    return f"did not finish: training failed or was interrupted {done} (see the diagnosis)"


# What each kind of data's quality measures are called in the plots.
GAN_MEASURES = {
    "points": [("modes", "modes covered"), ("high_quality", "share of high-quality samples")],
    "images": [("asked_rate", "classified as the class asked for"), ("coverage", "coverage"), ("precision", "precision"),
               ("recall", "recall"), ("min_class_share", "smallest class share")],
    "table": [("column_distance", "mean per-column distance"), ("correlation_gap", "correlation gap")],
}


def _gan_section(run: RunDir, metrics: dict | None, history: list[dict]) -> dict:
    """A GAN run's samples (kept generator, then along training), losses, D's scores and quality over steps."""
    facts = _json(run, run.path / "gan.json") or {}
    kind = facts.get("kind", "")
    best = (metrics or {}).get("best_step")
    snapshots = sorted((run.path / "samples").glob("step_*.png")) if (run.path / "samples").is_dir() else []
    out: dict[str, Any] = {
        "kind": kind, "facts": facts, "samples": _png(run.path / "samples.png"),
        "snapshots": [(int(path.stem.removeprefix("step_")), _png(path)) for path in snapshots],
        "quality": (metrics or {}).get("quality") or {}, "reference": (metrics or {}).get("reference") or {},
        "plots": [],
    }
    if not history:
        return out
    plots_ = [
        plots.gan_curves(history, [("d_loss", "discriminator"), ("g_loss", "generator")], "Losses", "loss", best),
        plots.gan_curves(history, [("d_real", "on real samples"), ("d_fake", "on generated samples")],
                         "The discriminator's mean logit", "logit", best),
        plots.gan_curves(history, [("g_grad_norm", "generator")], "The generator's gradient norm", "norm", best, log=True),
        plots.gan_curves(history, [("quality", "quality (the generator is kept by it)")], "Quality measure", "quality", best),
    ]
    for key, label in GAN_MEASURES.get(kind, []):
        if key in history[0]:
            plots_.append(plots.gan_curves(history, [(key, label)], label[0].upper() + label[1:], label, best))
    if "fid" in history[0]:
        plots_.append(plots.gan_curves(history, [("fid", "generated vs real training images")],
                                       "Fréchet distance in the classifier's features", "FID", best, log=True))
    out["plots"] = plots_
    return out
