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

from trainwright.config.base import flat
from trainwright.config.rl import rl_config
from trainwright.configure import load_config, read_raw, validate_gan_config
from trainwright.errors import TrainwrightError
from trainwright.evaluate.diagnose import diagnose, no_skill_loss, read_history
from trainwright.evaluate.diagnose_rl import diagnose_rl, read_rl_history
from trainwright.evaluate.gan_diagnose import diagnose_gan
from trainwright.rundir import RunDir
from trainwright.training.losses import resolve_loss

KEY_METRIC = {"regression": "r2", "binary": "accuracy", "multiclass": "accuracy", "rl": "mean_return"}


def recipe_of(run: RunDir) -> str:
    """The way a run was trained: its config's ``recipe`` key (``supervised`` when absent)."""
    return read_raw(run.config).get("recipe", "supervised")


def summarize_run(run: RunDir) -> dict:
    """One line's worth of facts about a run, for ``trainwright runs``: data, model, key test metric, epochs, time."""
    def optional(path: Path) -> dict:
        try:
            return run.read_json(path) if path.is_file() else {}
        except TrainwrightError:
            return {}

    data, model, metrics, env = optional(run.data), optional(run.model_info), optional(run.metrics), optional(run.environment)
    if run.env_info.is_file():  # an RL run: its environment stands where a data set would
        data = {"name": optional(run.env_info).get("id"), "task": "rl"}
        model = {**model, "type": model.get("algo")}
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
    # A run writes config.yaml and environment.json as it starts; cv, tune and lr-find directories hold no environment.
    runs = [summarize_run(RunDir(path)) for path in root.iterdir()
            if (path / "config.yaml").is_file() and (path / "environment.json").is_file()]
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
    configs = [flat(_config_dict(run)) for run in runs]
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


def _config_dict(run: RunDir) -> dict:
    """The run's resolved config as plain data, validated by its recipe's schema."""
    recipe = recipe_of(run)
    if recipe == "rl":
        return rl_config(read_raw(run.config)).model_dump(mode="json")
    if recipe == "gan":
        return validate_gan_config(read_raw(run.config)).to_dict()
    return load_config(run.config).to_dict()


def diagnose_run(run_dir: str | Path, diverged: dict | None = None) -> list[dict]:
    """Diagnose a run from its directory alone (``diverged`` for a run whose loss became NaN)."""
    run = RunDir.open(run_dir)
    metrics = run.read_json(run.metrics) if run.metrics.is_file() else None
    if recipe_of(run) == "rl":
        env = run.read_json(run.env_info) if run.env_info.is_file() else {}
        algo = rl_config(read_raw(run.config)).algo.name
        return diagnose_rl(read_rl_history(run.history), metrics, env=env, algo=algo)
    if recipe_of(run) == "gan":
        raw = read_raw(run.config)
        return diagnose_gan(read_history(run.history), metrics, loss=validate_gan_config(raw).gan.loss, diverged=diverged)
    cfg = load_config(run.config)
    gradients = run.read_json(run.gradients) if run.gradients.is_file() else None
    data = run.read_json(run.data) if run.data.is_file() else {}
    task = data.get("task") or (metrics or {}).get("task", "multiclass")
    counts = [c for c in ((data.get("class_balance") or {}).get("train") or {}).values() if c > 0]
    shares = [c / sum(counts) for c in counts]
    stopping = cfg.train.early_stopping
    # Balanced class weights make every class count the same in the loss: no skill is then log(classes).
    loss_shares = [1 / len(shares)] * len(shares) if cfg.train.class_weight == "balanced" else shares
    return diagnose(
        read_history(run.history),
        gradients,
        task=task,
        metrics=metrics,
        diverged=diverged,
        restored_best=stopping.enabled and stopping.restore_best,
        majority_share=max(shares) if shares else None,
        no_skill_loss=no_skill_loss(task, resolve_loss(task, cfg.train.loss), loss_shares, cfg.data.preprocess.scale_target),
        rows=data.get("split") or {},
        model_type=cfg.model.type,
    )
