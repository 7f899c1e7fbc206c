"""The cross-validation report: ``report.html`` in the cv directory, from ``cv.json`` and each fold's
``history.csv`` alone: the verdict, means with their intervals, the per-fold table, a strip plot of
the held-out scores (the network and each baseline, a line joining one fold's scores) and every
fold's learning curves on one figure.

Example:
    >>> write_cv_report("runs/diabetes-mlp-cv-20260101-120000")
    PosixPath('runs/diabetes-mlp-cv-20260101-120000/report.html')
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import jinja2

from trainwright.evaluate.diagnose import read_history
from trainwright.evaluate.figures import new_figure, plain, png_bytes
from trainwright.rundir import RunDir

TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("trainwright.report", "templates"), autoescape=True,
                               undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def number(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_cv_report(cv_dir: str | Path) -> Path:
    run = RunDir(cv_dir)
    result = json.loads((run.path / "cv.json").read_text(encoding="utf-8"))
    folds, task = result["per_fold"], result["task"]
    key = "mse" if task == "regression" else "accuracy"
    shown = ("mse", "mae", "r2") if task == "regression" else ("accuracy", "f1", "auroc")
    models = ["network", *folds[0]["baselines"]]
    summary = {
        "title": "mean over folds (± standard deviation) [95% interval]", "note": result["interval"],
        "columns": ["model", *shown],
        "rows": [[model, *(f"{number(s['mean'])} ± {number(s['std'])} [{number(s['low'])}, {number(s['high'])}]"
                           for s in (result["summary"][model][metric] for metric in shown))] for model in models],
    }
    per_fold = {
        "title": "held-out fold scores", "note": result["inner_validation"],
        "columns": ["fold", "rows (train/val/test)", "best epoch", *(f"{m} {metric}" for m in models for metric in shown)],
        "rows": [[f"{f['repeat']}.{f['fold']}" if result["repeats"] > 1 else str(f["fold"]),
                  f"{f['rows']['train']}/{f['rows']['val']}/{f['rows']['test']}", str(f["best_epoch"]),
                  *(number((f["network"] if m == "network" else f["baselines"].get(m, {})).get(metric))
                    for m in models for metric in shown)] for f in folds],
    }
    figures = [{"title": f"held-out {key} per fold (a line joins one fold's scores)", "uri": uri(strip_png(folds, models, key))}]
    histories = [read_history(Path(f["run"]) / "history.csv") for f in folds]
    if any(histories):
        figures.append({"title": "every fold's validation loss (solid) and training loss (faint) per epoch",
                        "uri": uri(curves_png(histories))})
    html = TEMPLATES.get_template("selection.html.j2").render(
        title=f"cross-validation: {result['folds']} folds" + (f" x {result['repeats']}" if result["repeats"] > 1 else ""),
        lines=[result["folding"], f"{'batched' if result['batched'] else 'sequential'} fits: {result['train_seconds']:.1f} s"],
        verdict=result.get("verdict"), tables=[summary, per_fold], figures=figures,
        config=run.config.read_text(encoding="utf-8") if run.config.is_file() else "",
    )
    run.write_text(run.report, html)
    return run.report


def strip_png(folds: list[dict], models: list[str], key: str) -> bytes:
    figure = new_figure(6.4, 3.6, layout="constrained")
    ax = figure.add_subplot()
    scores = [[(f["network"] if m == "network" else f["baselines"].get(m, {})).get(key, math.nan) for m in models] for f in folds]
    for row in scores:
        ax.plot(range(len(models)), row, color="0.8", linewidth=0.8, zorder=1)
    for i, model in enumerate(models):
        ax.scatter([i] * len(scores), [row[i] for row in scores], s=18, zorder=2, label=plain(model))
    ax.set_xticks(range(len(models)), [plain(m, 28) for m in models])
    ax.set_ylabel(key)
    return png_bytes(figure)


def curves_png(histories: list[list[dict]]) -> bytes:
    figure = new_figure(6.4, 3.6, layout="constrained")
    ax = figure.add_subplot()
    for i, history in enumerate(histories):
        epochs = [row["epoch"] for row in history]
        color = f"C{i % 10}"
        ax.plot(epochs, [row["val_loss"] for row in history], color=color, linewidth=1.2)
        ax.plot(epochs, [row["train_loss"] for row in history], color=color, linewidth=0.8, alpha=0.35)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    return png_bytes(figure)
