"""Reading finished runs: a line per run (``trainwright runs``), their differences (``compare``),
and their diagnosis, each from the run directories alone.

Example:
    >>> [r["name"] for r in list_runs("runs")]
    ['digits-mlp-20260101-120000']
    >>> diagnose_run("runs/digits-mlp-20260101-120000")
    []
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainwright.configure import load_config, read_raw, validate_gan_config
from trainwright.errors import TrainwrightError
from trainwright.evaluate.diagnose import diagnose, no_skill_loss, read_history
from trainwright.evaluate.gan_diagnose import diagnose_gan
from trainwright.rundir import RunDir
from trainwright.training.losses import resolve_loss

KEY_METRIC = {"regression": "r2", "binary": "accuracy", "multiclass": "accuracy"}


def summarize_run(run: RunDir) -> dict:
    """One line's worth of facts about a run, for ``trainwright runs``: data, model, key test metric, epochs, time."""
    def optional(path: Path) -> dict:
        try:
            return run.read_json(path) if path.is_file() else {}
        except TrainwrightError:
            return {}

    data, model, metrics, env = optional(run.data), optional(run.model_info), optional(run.metrics), optional(run.environment)
    task = data.get("task") or metrics.get("task")
    key = KEY_METRIC.get(task or "", "accuracy")
    if metrics.get("recipe") == "gan":  # a GAN has no test metric: its quality measure (higher is better)
        key, metrics = "quality", {**metrics, "test": {"quality": metrics["quality"].get("quality")}}
    return {
        "name": run.path.name,
        "path": run.path,
        "data": data.get("name") or data.get("source"),
        "model": model.get("type"),
        "parameters": model.get("parameters"),
        "task": task,
        "metric": key,
        "value": (metrics.get("test") or {}).get(key),
        "epochs": metrics.get("epochs"),
        "seconds": metrics.get("train_seconds"),
        "started": env.get("started"),
        "finished": bool(metrics),
    }


def list_runs(runs_dir: str | Path) -> list[dict]:
    """Every run directory directly under ``runs_dir``, oldest first.

    Example:
        >>> [r["name"] for r in list_runs("runs")]
        ['digits-mlp-20260101-120000', 'iris-mlp-20260101-121500']
    """
    root = Path(runs_dir)
    if not root.is_dir():
        raise TrainwrightError(
            f"{root} is not a directory; `trainwright runs DIR` lists the runs that `train --runs-dir DIR` wrote"
        )
    runs = [summarize_run(RunDir(path)) for path in root.iterdir() if (path / "config.yaml").is_file()]
    return sorted(runs, key=lambda r: (r["started"] or "", r["name"]))


def compare_runs(run_dirs: list[str | Path]) -> tuple[list[str], dict[str, list], dict[str, list]]:
    """Names, the config keys whose values differ (``{dotted.key: [value per run]}``) and the
    test metrics side by side (``{metric: [value per run]}``, with epochs and training time).

    Example:
        >>> names, differ, metrics = compare_runs(["runs/a", "runs/b"])
        >>> differ
        {'train.optimizer.lr': [0.001, 0.01]}
    """
    if len(run_dirs) < 2:
        raise TrainwrightError("compare needs at least two run directories, e.g. trainwright compare runs/a runs/b")
    runs = [RunDir.open(path) for path in run_dirs]
    configs = [_flatten(_resolved(run).to_dict()) for run in runs]
    keys = list(dict.fromkeys(key for config in configs for key in config))
    missing = object()
    differ = {
        key: [config.get(key) for config in configs]
        for key in keys
        if len({repr(config.get(key, missing)) for config in configs}) > 1
    }
    summaries = [summarize_run(run) for run in runs]
    tests = [(run.read_json(run.metrics).get("test") or {}) if run.metrics.is_file() else {} for run in runs]
    metric_names = list(dict.fromkeys(name for test in tests for name in test))
    metrics: dict[str, list] = {name: [test.get(name) for test in tests] for name in metric_names}
    metrics["epochs"] = [s["epochs"] for s in summaries]
    metrics["train_seconds"] = [s["seconds"] for s in summaries]
    return [run.path.name for run in runs], differ, metrics


def _resolved(run: RunDir):
    """A run's config with every default filled in, by the schema of its recipe."""
    raw = read_raw(run.config)
    return validate_gan_config(raw) if raw.get("recipe") == "gan" else load_config(raw)


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"optimizer": {"lr": 0.1}}}`` -> ``{"train.optimizer.lr": 0.1}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def diagnose_run(run_dir: str | Path, diverged: dict | None = None) -> list[dict]:
    """Diagnose a run from its directory alone (``diverged`` for a run whose loss became NaN)."""
    run = RunDir.open(run_dir)
    raw = read_raw(run.config)
    metrics = run.read_json(run.metrics) if run.metrics.is_file() else None
    if raw.get("recipe") == "gan":
        return diagnose_gan(read_history(run.history), metrics, loss=validate_gan_config(raw).gan.loss, diverged=diverged)
    cfg = load_config(raw)
    gradients = run.read_json(run.gradients) if run.gradients.is_file() else None
    data = run.read_json(run.data) if run.data.is_file() else {}
    task = data.get("task") or (metrics or {}).get("task", "multiclass")
    counts = [c for c in ((data.get("class_balance") or {}).get("train") or {}).values() if c > 0]
    shares = [c / sum(counts) for c in counts]
    stopping = cfg.train.early_stopping
    return diagnose(
        read_history(run.history),
        gradients,
        task=task,
        metrics=metrics,
        diverged=diverged,
        restored_best=stopping.enabled and stopping.restore_best,
        majority_share=max(shares) if shares else None,
        no_skill_loss=no_skill_loss(task, resolve_loss(task, cfg.train.loss), shares, cfg.data.preprocess.scale_target),
        rows=data.get("split") or {},
    )
