"""k-fold cross-validation: how well does this configuration generalize, and does it beat the baselines?

The recipe reads top to bottom: ① data, loaded and cleaned once, and k folds of it (each a
``Split``: the held-out fold, an inner validation part carved from the rest for early stopping,
and the rows that train; every fold fits its preprocessing on its own training part); ② one model
per fold, seeded as a single run's; ③ the fits, all folds together as one batched model
(``training/batched.py``) when the configuration allows, else one after another; each fold is a
normal run directory under ``folds/``, scored once on its held-out fold, beside the classical
baselines fitted on the same fold (a paired comparison); ④ the summary: per-fold table, means
with 95% intervals, a verdict, ``cv.json`` and ``report.html``; ⑤ optionally ``--refit``: the
configuration trained on all rows for the folds' median best epoch, a run ``predict`` can use.

Example:
    >>> result = cross_validate(load_config("examples/diabetes.yaml"), folds=10)
    >>> result["summary"]["network"]["mse"]["mean"]
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from trainwright.compute import estimate_training
from trainwright.config import Config
from trainwright.data.folds import Fold, cv_folds, inner_share
from trainwright.data.prepare import Prepared, load_data
from trainwright.data.split import Split
from trainwright.errors import TrainingDiverged
from trainwright.evaluate.resampling import mean_interval, paired_comparison
from trainwright.recipes.finish import Run, finish_supervised
from trainwright.recipes.lr_find import with_found_lr
from trainwright.recipes.setup import build_module, resolve_device, start_run
from trainwright.recipes.supervised import train_prepared
from trainwright.report.cv import write_cv_report
from trainwright.rundir import RunDir, default_run_name, unique_name
from trainwright.training.batched import BatchedFit, batchable
from trainwright.training.batched_forward import StackedForward, vmap_problem
from trainwright.training.callbacks import EarlyStopping, HistoryCSV
from trainwright.training.losses import resolve_loss
from trainwright.training.precision import check_precision

# What the console shows per fold; cv.json keeps every metric.
SHOWN = {"regression": ("mse", "mae", "r2"), "classification": ("accuracy", "f1", "auroc")}
LOWER_IS_BETTER = ("mse", "rmse", "mae", "mape")


def cross_validate(cfg: Config, *, folds: int = 10, repeats: int = 1, refit: bool = False, sequential: bool = False,
                   runs_dir: str | Path = "runs", name: str | None = None, console: Console | None = None,
                   within: np.ndarray | None = None) -> dict:
    """Cross-validate ``cfg`` over ``folds`` x ``repeats`` folds; returns what ``cv.json`` holds.
    ``within``: fold only these row positions (``tune`` keeps the test rows out)."""
    console = console or Console()
    quiet = Console(quiet=True)

    # ① Data: loaded and cleaned once; each fold's preprocessing is fitted on its own training part.
    rows = load_data(cfg.data)
    fold_list = cv_folds(rows, cfg.data, folds, repeats, within)
    datas = [rows.prepare(fold.split) for fold in fold_list]
    for line in datas[0].report_lines():
        if not line.startswith(("split ", "fold ")) and line not in datas[0].summary.get("notes", []):
            console.print(line, highlight=False, soft_wrap=True)
    console.print(describe_folds(cfg, fold_list, datas[0]), highlight=False, soft_wrap=True)

    # ② Models: one per fold, seeded as a single run's (so every fold starts from the same weights).
    modules = [build_module(cfg, data) for data in datas]
    device = resolve_device(cfg.train.device)
    check_precision(device, cfg.train.precision)
    cv_dir = RunDir.create(runs_dir, name or unique_name(runs_dir, default_run_name(datas[0].name, f"{cfg.model.type}-cv")))
    cv_dir.write_text(cv_dir.config, cfg.to_yaml())

    # ③ The fits: every fold at once when the configuration can be batched, else one after another.
    reason = "--sequential" if sequential else batchable(
        cfg.train, modules[0], datas[0].train_transform, cfg.model.backbone is not None
    ) or vmap_problem(modules[0], datas[0].x_train[:2])
    if reason is None:
        console.print(f"training the {len(datas)} folds together as one batched model ({StackedForward(modules[0]).how})",
                      highlight=False)
        runs, seconds = fit_batched(cfg, fold_list, datas, modules, device, cv_dir, quiet)
    else:
        console.print(f"training the {len(datas)} folds one after another ({reason})", highlight=False, soft_wrap=True)
        runs, seconds = fit_one_by_one(cfg, fold_list, datas, modules, cv_dir, quiet)

    # ④ The summary: per fold, means with intervals, the verdict; cv.json and the report page.
    result = summarize(cfg, fold_list, datas, runs, batched=reason is None, seconds=seconds)
    result["dir"] = str(cv_dir.path)
    cv_dir.write_json(cv_dir.path / "cv.json", result)
    print_cv(console, result)
    console.print(f"report: {write_cv_report(cv_dir.path)}", highlight=False, soft_wrap=True)

    # ⑤ Optionally the configuration trained on all rows, for predict.
    if refit:
        run = refit_all(cfg, rows, result, cv_dir, quiet)
        result["refit"] = {"dir": str(run.dir), "epochs": run.metrics["epochs"]}
        cv_dir.write_json(cv_dir.path / "cv.json", result)
        console.print(f"refit on all {len(rows)} rows for {run.metrics['epochs']} epochs (the folds' median best epoch): "
                      f"{run.dir}", highlight=False, soft_wrap=True)
    cv_dir.unlock()  # written: another process may open it
    return result


def describe_folds(cfg: Config, folds: list[Fold], first: Prepared) -> str:
    """One line: how the folds were made and what early stopping watches."""
    k = max(f.number for f in folds)
    repeats = max(f.repeat for f in folds)
    how = folds[0].split.notes[0].split(", ", 1)[-1].split(":")[0]  # "stratified", "grouped by x, shuffled", "forward-chaining"
    share = inner_share(cfg.data)
    inner = (f"early stopping watches an inner validation part ({share:.0%} of each fold's training rows, "
             f"{len(first.x_val)} rows in fold 1)" if share else "early stopping watches each fold's training rows")
    return (f"cv: {k} folds{f' x {repeats} repeats' if repeats > 1 else ''} ({how}, seed {cfg.data.split.seed}); {inner}; "
            "each held-out fold is scored once, at the end, beside the baselines fitted on the same fold")


def fit_batched(cfg: Config, folds: list[Fold], datas: list[Prepared], modules: list, device: torch.device,
                cv_dir: RunDir, console: Console) -> tuple[list[Run], float]:
    """Every fold's run directory, one batched fit of all folds, then each fold's finish stage."""
    cfgs = [with_found_lr(cfg, data, module, device, console)[0] for data, module in zip(datas, modules)]
    eager = cfgs[0].model_copy(update={"train": cfgs[0].train.model_copy(update={"compile": False})})  # batched: never compiled
    est = estimate_training(eager, datas[0], modules[0].to(device), device)
    run_dirs = [start_run(c, data, module, device, runs_dir=cv_dir.path / "folds", name=fold.name)
                for c, fold, data, module in zip(cfgs, folds, datas, modules)]
    batched = BatchedFit.build(
        [c.train for c in cfgs], modules, [(d.x_train, d.y_train, d.x_val, d.y_val) for d in datas],
        task=datas[0].task, loss=resolve_loss(datas[0].task, cfg.train.loss), device=device,
        callbacks=lambda k: [EarlyStopping(cfgs[k].train.early_stopping), HistoryCSV(run_dirs[k])],
    ).fit()
    runs = []
    for fold, c, data, member, run_dir in zip(folds, cfgs, datas, batched.members, run_dirs):
        if member.diverged:
            raise TrainingDiverged(f"{fold.name}: {member.stop_reason}; lower train.optimizer.lr or set train.clip_grad_norm",
                                   epoch=member.diverged["epoch"], loss=member.diverged["loss"])
        runs.append(finish_supervised(run_dir, c, data, member.model, device, member, est, batched.seconds, console))
    return runs, batched.seconds


def fit_one_by_one(cfg: Config, folds: list[Fold], datas: list[Prepared], modules: list, cv_dir: RunDir,
                   console: Console) -> tuple[list[Run], float]:
    """The supervised recipe's stages ③-⑤ for each fold in turn."""
    runs = [train_prepared(cfg, data, module, runs_dir=cv_dir.path / "folds", name=fold.name, console=console)
            for fold, data, module in zip(folds, datas, modules)]
    return runs, sum(run.metrics["train_seconds"] for run in runs)


def summarize(cfg: Config, folds: list[Fold], datas: list[Prepared], runs: list[Run], *, batched: bool, seconds: float) -> dict:
    """Per fold: the network's and the baselines' test metrics; per model and metric: mean, std, 95% interval;
    the network against the best baseline on the key metric, paired over the folds."""
    task = datas[0].task
    per_fold = []
    for fold, data, run in zip(folds, datas, runs):
        per_fold.append({
            "fold": fold.number, "repeat": fold.repeat, "run": str(run.dir),
            "rows": {"train": len(data.x_train), "val": len(data.x_val), "test": len(data.x_test)},
            "best_epoch": run.metrics["best_epoch"], "epochs": run.metrics["epochs"],
            "network": run.metrics["test"], "baselines": run.metrics.get("baselines", {}),
        })
    ratio = statistics.fmean(f["rows"]["test"] / (f["rows"]["train"] + f["rows"]["val"]) for f in per_fold)
    models = ["network", *per_fold[0]["baselines"]]
    scores = {model: {metric: [fold_scores(f, model).get(metric, math.nan) for f in per_fold]
                      for metric in per_fold[0]["network"]} for model in models}
    summary = {model: {metric: mean_interval(values, ratio) for metric, values in by_metric.items()}
               for model, by_metric in scores.items()}
    key = "mse" if task == "regression" else "accuracy"
    comparison = None
    if len(models) > 1:
        higher = key not in LOWER_IS_BETTER
        best = (max if higher else min)(models[1:], key=lambda m: summary[m][key]["mean"])
        comparison = {"metric": key, "baseline": best,
                      **paired_comparison(scores["network"][key], scores[best][key], ratio, higher_is_better=higher)}
    return {
        "task": task, "folds": max(f.number for f in folds), "repeats": max(f.repeat for f in folds),
        "folding": folds[0].split.notes[0],
        "inner_validation": ("early stopping watched an inner validation part carved from each fold's training part; "
                             "the held-out fold was scored once, at the end"),
        "interval": "95%, Student's t with Nadeau & Bengio's correction for folds that share training rows",
        "test_train_ratio": ratio, "batched": batched, "train_seconds": seconds,
        "per_fold": per_fold, "summary": summary, "comparison": comparison,
        "verdict": verdict(comparison, summary) if comparison else None,
    }


def fold_scores(fold: dict, model: str) -> dict:
    return fold["network"] if model == "network" else fold["baselines"].get(model, {})


def verdict(comparison: dict, summary: dict) -> str:
    """One line: which is better on the key metric, and whether the gap exceeds the fold-to-fold noise."""
    key, base = comparison["metric"], comparison["baseline"]
    ours, theirs = summary["network"][key]["mean"], summary[base][key]["mean"]
    gap = (f"{key} {ours:.4g} vs {theirs:.4g}, difference {comparison['mean']:+.4g} (95% interval {comparison['low']:+.4g} "
           f"to {comparison['high']:+.4g}; the network is better on {comparison['folds_won']} of {comparison['folds']} folds)")
    if comparison["winner"] == "ours":
        return f"the network beats the best baseline, {base}: {gap}, larger than the fold-to-fold noise"
    if comparison["winner"] == "theirs":
        return f"the best baseline, {base}, beats the network: {gap}, larger than the fold-to-fold noise"
    return f"no clear winner between the network and the best baseline, {base}: {gap} is within the fold-to-fold noise"


def refit_all(cfg: Config, rows, result: dict, cv_dir: RunDir, console: Console) -> Run:
    """The configuration trained on every row for the folds' median best epoch (no rows left to stop on)."""
    epochs = max(1, round(statistics.median(f["best_epoch"] for f in result["per_fold"])))
    train = cfg.train.model_copy(update={
        "epochs": epochs, "early_stopping": cfg.train.early_stopping.model_copy(update={"enabled": False}),
    })
    refit_cfg = cfg.model_copy(update={"train": train})
    everything = np.arange(len(rows))
    note = f"refit after cross-validation: trained on all {len(rows)} rows for {epochs} epochs; its metrics are training metrics"
    data = rows.prepare(Split(everything, everything, everything, held_out=False, stratified=False, notes=(note,)))
    return train_prepared(refit_cfg, data, build_module(refit_cfg, data), runs_dir=cv_dir.path, name="refit", console=console)


def print_cv(console: Console, result: dict) -> None:
    """Per-fold table, then the means with their intervals, then the verdict."""
    task = "regression" if result["task"] == "regression" else "classification"
    shown = SHOWN[task]
    first = result["per_fold"][0]
    models = ["network", *first["baselines"]]
    short = {"network": "net", "logistic_regression": "logreg", "ridge": "ridge", "hist_gradient_boosting": "hgb",
             "naive_last_value": "naive", "seasonal_naive": "seasonal", "tfidf_logistic_regression": "tfidf",
             "bag_of_words_logistic_regression": "bow"}
    table = Table(title="held-out fold scores (each model fitted on the same fold's training rows)", title_justify="left")
    table.add_column("fold")
    for model in models:
        for metric in shown:
            table.add_column(f"{short.get(model, model)} {metric}", justify="right")
    for fold in result["per_fold"]:
        label = str(fold["fold"]) if result["repeats"] == 1 else f"{fold['repeat']}.{fold['fold']}"
        table.add_row(label, *(_fmt(fold_scores(fold, m).get(metric)) for m in models for metric in shown))
    console.print(table)
    table = Table(title=f"mean over {len(result['per_fold'])} folds [{result['interval']}]", title_justify="left")
    table.add_column("model")
    for metric in shown:
        table.add_column(metric, justify="right")
    for model in models:
        cells = [f"{_short(s['mean'])} ± {_short(s['std'])} [{_short(s['low'])}, {_short(s['high'])}]"
                 for s in (result["summary"][model][metric] for metric in shown)]
        table.add_row(model, *cells)
    console.print(table)
    console.print("(mean ± standard deviation over folds [95% interval])", highlight=False)
    console.print(result["inner_validation"], highlight=False, soft_wrap=True)
    if result["verdict"]:
        console.print(result["verdict"], highlight=False, soft_wrap=True)
    how = "as one batched model" if result["batched"] else "one after another"
    console.print(f"trained {len(result['per_fold'])} folds {how} in {result['train_seconds']:.1f} s", highlight=False)


def _short(value: float) -> str:
    """3104, 45.50, 0.472: enough digits to compare, no exponents."""
    if not math.isfinite(value):
        return "-"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def _fmt(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"

