"""Hyperparameter search: Optuna's TPE sampler over the config's ``tune.space``, judged on validation data.

The recipe reads top to bottom: ① the config, its space checked against the schema, and the data
prepared once (the split is the configured one: trials are judged on the validation rows, the test
rows stay untouched); ② the study opened or resumed in its storage (``recipes/study.py``); ③ the
loop: trials until the study holds ``--trials`` finished ones, each a normal run directory under
``trials/`` whose per-epoch validation metric goes to the pruner (``callbacks.Pruning``) and whose
value is its best epoch's metric, not its last; with ``--workers N`` the loop runs in N processes
on the same study; ④ finish: ``study.json``, ``best.yaml`` (the best trial's resolved config),
``report.html`` (Optuna's optimization history, parameter importances and parallel coordinates).

With ``tune.cv_folds: k`` a trial is a k-fold cross-validation of the training and validation rows
(the folds batched as in ``cv``) and its value the held-out folds' mean; such trials are not pruned.

Example:
    >>> result = tune(load_config("examples/digits.yaml"), trials=30)
    >>> result["best"]["value"], result["best"]["config"]
"""

from __future__ import annotations

import json
import math
import multiprocessing
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import optuna
from rich.console import Console
from rich.table import Table

from trainwright.config import Config
from trainwright.configure import load_config
from trainwright.data.prepare import Prepared, load_data
from trainwright.errors import TrainingDiverged, TrainwrightError
from trainwright.recipes.cv import cross_validate
from trainwright.recipes.setup import build_module
from trainwright.recipes.study import (
    ExcessTrial,
    check_space,
    claim,
    config_params,
    counts,
    fail_dead_trials,
    open_study,
    suggest,
    wait_for_others,
    with_value,
    without_tune,
)
from trainwright.recipes.supervised import train_prepared
from trainwright.report.study import write_study_report
from trainwright.rundir import RunDir
from trainwright.training.callbacks import Pruning

LOWER_IS_BETTER = ("val_loss",)


def tune(cfg: Config, *, trials: int, storage: str | None = None, workers: int = 1, timeout: float | None = None,
         runs_dir: str | Path = "runs", name: str | None = None, console: Console | None = None, worker: int = 0) -> dict:
    """Run (or join, or resume) the study for ``cfg``'s ``tune`` section until it holds ``trials`` finished trials."""
    console = console or Console()
    # ① The config, its space, the data.
    if cfg.tune is None:
        raise TrainwrightError("the config has no tune section; add tune: {space: {train.optimizer.lr: {log_uniform: "
                               "[1.0e-4, 1.0e-1]}}} (see the README's Hyperparameter search)")
    if trials < 1 or workers < 1:
        raise TrainwrightError("--trials and --workers must be at least 1")
    check_space(cfg)
    rows = load_data(cfg.data)
    split = rows.split()
    data = rows.prepare(split)
    metric = resolve_metric(cfg, data.task)
    if worker == 0:
        for line in data.report_lines():
            console.print(line, highlight=False, soft_wrap=True)
    study_dir = Path(runs_dir) / (name or f"{data.name}-{cfg.model.type}-tune")
    study_dir.mkdir(parents=True, exist_ok=True)
    with (shared := RunDir(study_dir)).writing(wait=SHARED_WAIT):  # workers share the study's directory
        shared.write_text(study_dir / "config.yaml", cfg.to_yaml())

    # ② The study, new or resumed (a new one starts with the config's own values when they lie in the space).
    direction = "minimize" if metric in LOWER_IS_BETTER else "maximize"
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trainwright prints one line per trial itself
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    study, where = open_study(cfg, study_dir, storage=storage, workers=workers, direction=direction, metric=metric,
                              seed=cfg.tune.seed + worker)
    state = counts(study)
    if worker == 0:
        verb = "resuming" if state["finished"] or state["running"] else "new"
        console.print(f"study {study_dir.name} ({verb}, in {where}): {state['finished']} of {trials} trials finished; "
                      f"{metric} ({direction}) at each trial's best epoch, TPE seed {cfg.tune.seed}, pruner "
                      f"{cfg.tune.pruner}" + (f", {cfg.tune.cv_folds}-fold cv per trial" if cfg.tune.cv_folds else ""),
                      highlight=False, soft_wrap=True)
    if not study.trials and cfg.tune.start_from_config and (params := config_params(cfg)) is not None:
        study.enqueue_trial(params, user_attrs={"from_config": True}, skip_if_exists=True)  # workers may start at once

    # ③ The loop, in this process or in N.
    if workers > 1:
        run_workers(cfg, trials, where if storage is None else storage, workers, timeout, runs_dir, study_dir.name)
    else:
        objective = partial(run_trial, cfg=cfg, rows=rows, split=split, data=data, metric=metric, study_dir=study_dir,
                            total=trials, console=console)
        work(study, objective, trials, timeout, cfg.tune)
    if worker:
        return {}

    # ④ Finish: the best trial, its config, the report.
    return finish_study(study, cfg, study_dir, metric, direction, where, trials, console)


def resolve_metric(cfg: Config, task: str) -> str:
    metric = cfg.tune.metric
    if metric == "auto":
        metric = "val_r2" if task == "regression" else "val_accuracy"
    if (metric == "val_r2") != (task == "regression") and metric != "val_loss":
        raise TrainwrightError(f"tune.metric {metric} does not fit a {task} task; use "
                               f"{'val_r2' if task == 'regression' else 'val_accuracy'} or val_loss")
    if cfg.tune.cv_folds and metric == "val_loss":
        raise TrainwrightError("with tune.cv_folds a trial is scored on its held-out folds by accuracy or R²; set "
                               "tune.metric to val_accuracy (val_r2 for regression) or auto")
    return metric


# Workers share a study's directory: a write waits this long for another worker's (a report takes seconds).
SHARED_WAIT = 120.0


def work(study: optuna.Study, objective, trials: int, timeout: float | None, tune) -> None:
    """Run trials until the study holds ``trials`` finished ones (waiting for other workers' running trials)."""
    deadline = time.monotonic() + timeout if timeout else math.inf
    while time.monotonic() < deadline:
        fail_dead_trials(study, tune.max_retry)
        state = counts(study)
        if state["finished"] >= trials:
            return
        if state["finished"] + state["running"] >= trials and not state["waiting"]:
            wait_for_others(min(1.0, tune.heartbeat_seconds))  # another worker holds the last trials; they may die
            continue
        try:
            study.optimize(objective, n_trials=1, catch=(TrainingDiverged, ExcessTrial))
        except ValueError as error:
            # Another worker failed this trial as stale (its heartbeat lagged past grace_seconds on a busy machine)
            # while it ran; the failed trial's retry runs its parameters again, so this worker goes on.
            if "Cannot tell a FAIL trial" not in str(error):
                raise


def run_trial(trial: optuna.Trial, *, cfg: Config, rows, split, data: Prepared, metric: str, study_dir: Path, total: int,
              console: Console) -> float:
    """One trial: the config with the trial's values, trained (or cross-validated) into ``trials/trial-NNNN``."""
    claim(trial.study, trial, total)
    values = suggest(trial, cfg.tune.space)
    raw = without_tune(cfg.to_dict())
    for key, value in values.items():
        raw = with_value(raw, key, value)
    raw["evaluate"]["baseline"] = False  # the same split for every trial: baselines would repeat themselves
    trial_cfg = load_config(raw)
    name = f"trial-{trial.number:04d}"
    trial.set_user_attr("run", str(study_dir / "trials" / name))
    quiet = Console(quiet=True)
    started = time.perf_counter()
    try:
        value = train_trial(trial, trial_cfg, cfg, split, data, metric, study_dir, name, quiet)
    except TrainingDiverged as error:
        console.print(f"trial {trial.number}: failed: {error}", highlight=False, soft_wrap=True)
        raise
    trial.set_user_attr("seconds", time.perf_counter() - started)
    shown = ", ".join(f"{key.rsplit('.', 1)[-1]}={format_value(v)}" for key, v in values.items())
    epochs = trial.user_attrs["epochs"]
    if trial.user_attrs.get("pruned_at") is not None:
        console.print(f"trial {trial.number}: pruned at epoch {trial.user_attrs['pruned_at']} ({metric} best {value:.4f}); "
                      f"{shown}", highlight=False, soft_wrap=True)
        raise optuna.TrialPruned(f"pruned at epoch {trial.user_attrs['pruned_at']}")
    console.print(f"trial {trial.number}: {metric} {value:.4f} ({epochs} epochs); {shown}", highlight=False, soft_wrap=True)
    return value


def train_trial(trial: optuna.Trial, trial_cfg: Config, cfg: Config, split, data: Prepared, metric: str, study_dir: Path,
                name: str, quiet: Console) -> float:
    """Train the trial's run (or cross-validate it); record its epochs; return its value."""
    if cfg.tune.cv_folds:
        pool = np.sort(np.concatenate([split.train, split.val]))  # the test rows stay out of the search
        result = cross_validate(trial_cfg, folds=cfg.tune.cv_folds, runs_dir=study_dir / "trials", name=name, console=quiet,
                                within=pool)
        key = "r2" if data.task == "regression" else "accuracy"
        trial.set_user_attr("epochs", sum(f["epochs"] for f in result["per_fold"]))
        return result["summary"]["network"][key]["mean"]
    pruning = Pruning(metric, partial(report, trial))
    run = train_prepared(trial_cfg, data, build_module(trial_cfg, data), runs_dir=study_dir / "trials", name=name,
                         console=quiet, callbacks=[pruning])
    scores = [row[metric] for row in run.history]
    best = (min if trial.study.direction == optuna.study.StudyDirection.MINIMIZE else max)(scores)
    trial.set_user_attr("epochs", len(run.history))
    trial.set_user_attr("best_epoch", 1 + scores.index(best))
    trial.set_user_attr("test", run.metrics["test"])
    trial.set_user_attr("pruned_at", pruning.pruned_at)
    return best


def report(trial: optuna.Trial, epoch: int, value: float) -> bool:
    """The pruning callback's link to Optuna: report the epoch's value, answer whether to stop."""
    trial.report(value, epoch)
    return trial.should_prune()


def format_value(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else json.dumps(value)


# ── workers ───────────────────────────────────────────────────────────────────────────────
def run_workers(cfg: Config, trials: int, storage: str, workers: int, timeout: float | None, runs_dir, name: str) -> None:
    """N processes on the same study (a journal file or a database); a worker that dies leaves its trial to the others."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=worker_main, args=(cfg.to_dict(), trials, storage, timeout, str(runs_dir), name, i + 1))
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()


def worker_main(raw: dict, trials: int, storage: str, timeout: float | None, runs_dir: str, name: str, index: int) -> None:
    """One worker process: the same study, its own TPE seed (``tune.seed`` + its index)."""
    console = Console(highlight=False)
    try:
        tune(load_config(raw), trials=trials, storage=storage, workers=1, timeout=timeout, runs_dir=runs_dir, name=name,
             console=console, worker=index)
    except TrainwrightError as error:  # one line, as the command itself would print it
        Console(stderr=True).print(f"error (worker {index}): {error}", highlight=False, soft_wrap=True, markup=False)
        raise SystemExit(2) from None


# ── finish ────────────────────────────────────────────────────────────────────────────────
def finish_study(study: optuna.Study, cfg: Config, study_dir: Path, metric: str, direction: str, where: str, trials: int,
                 console: Console) -> dict:
    state = counts(study)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise TrainwrightError(f"no trial of the study {study_dir.name} completed ({state['failed']} failed); "
                               "see the trial runs in " + str(study_dir / "trials"))
    run_dir = RunDir(study_dir)
    with run_dir.writing(wait=SHARED_WAIT):  # every worker ends here: one writes the study's files at a time
        best = study.best_trial
        best_run = Path(best.user_attrs.get("run", ""))
        raw = without_tune(cfg.to_dict())  # the config as written (its evaluate settings too), with the best trial's values
        for key, value in best.params.items():
            raw = with_value(raw, key, decode(value))
        run_dir.write_text(study_dir / "best.yaml", load_config(raw).to_yaml())
        total_epochs = sum(t.user_attrs.get("epochs", 0) for t in study.trials if t.state in (
            optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))
        result = {
            "study": study_dir.name, "storage": where, "metric": metric, "direction": direction, "trials": trials,
            "counts": state, "epochs": total_epochs, "pruner": cfg.tune.pruner,
            "best": {"number": best.number, "value": best.value, "params": {k: decode(v) for k, v in best.params.items()},
                     "run": str(best_run), "config": str(study_dir / "best.yaml"), "test": best.user_attrs.get("test")},
            "from_config": next(({"number": t.number, "value": t.value} for t in complete if t.user_attrs.get("from_config")),
                                None),
            "all": [{"number": t.number, "state": t.state.name.lower(), "value": t.value,
                     "params": {k: decode(v) for k, v in t.params.items()}, "epochs": t.user_attrs.get("epochs"),
                     "run": t.user_attrs.get("run"), "excess": bool(t.user_attrs.get("excess")),
                     "retry_of": t.system_attrs.get("failed_trial")} for t in study.trials],
        }
        run_dir.write_json(study_dir / "study.json", result)
        print_study(console, result)
        console.print(f"report: {write_study_report(study_dir, study, result)}", highlight=False, soft_wrap=True)
    return {**result, "dir": str(study_dir)}


def decode(value):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def print_study(console: Console, result: dict) -> None:
    done = [t for t in result["all"] if t["state"] == "complete"]
    reverse = result["direction"] == "maximize"
    table = Table(title=f"best trials by {result['metric']} (of {len(done)} complete)", title_justify="left")
    for column in ("trial", result["metric"], "epochs", "params"):
        table.add_column(column, justify="left" if column == "params" else "right")
    for t in sorted(done, key=lambda t: t["value"], reverse=reverse)[:5]:
        params = ", ".join(f"{k.rsplit('.', 1)[-1]}={format_value(v)}" for k, v in t["params"].items())
        table.add_row(str(t["number"]), f"{t['value']:.4f}", str(t["epochs"]), params)
    console.print(table)
    c = result["counts"]
    console.print(f"{c['finished']} trials finished ({sum(t['state'] == 'pruned' for t in result['all'])} pruned), "
                  f"{c['failed']} failed; {result['epochs']} epochs trained in all", highlight=False)
    origin = result["from_config"]
    if origin is not None:
        console.print(f"the config as written (trial {origin['number']}): {result['metric']} {origin['value']:.4f}",
                      highlight=False)
    best = result["best"]
    console.print(f"best: trial {best['number']}, {result['metric']} {best['value']:.4f}; run {best['run']}; config "
                  f"{best['config']}", highlight=False, soft_wrap=True)
