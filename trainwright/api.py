"""The Python API: load the config, call the recipe. No logic of its own.

Example:
    >>> import trainwright as tw
    >>> run = tw.train("examples/digits.yaml")
    >>> run.metrics["test"]["accuracy"]
    >>> tw.load(run.dir).predict(frame)
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from torch import nn

from trainwright.compute import Estimate
from trainwright.config import Config
from trainwright.configure import load_config, read_raw, validate_config
from trainwright.errors import TrainwrightError
from trainwright.recipes import estimate as estimate_recipe
from trainwright.recipes import supervised
from trainwright.recipes.finish import Run
from trainwright.rundir import RunDir


def train(
    config: str | Path | dict | Config | None = None,
    *,
    model: nn.Module | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    runs_dir: str | Path = "runs",
    name: str | None = None,
    resume: str | Path | None = None,
    console: Console | None = None,
) -> Run:
    """Train a model as ``config`` says and write a run directory; returns a ``Run``.

    Example:
        >>> run = train({"data": {"source": "iris"}}, overrides=["train.epochs=20"])
        >>> run.metrics["test"]["accuracy"]
    ``model=`` trains your own ``nn.Module``. ``resume=`` continues an interrupted run from its last
    checkpoint (``overrides`` may extend ``train.epochs``).
    """
    run_dir = RunDir.open(resume) if resume is not None else None
    if run_dir is None and config is None:
        raise TrainwrightError("no config: pass a YAML file, a dict or a Config (or --data for quick mode)")
    raw = read_raw(run_dir.config if run_dir is not None else config, overrides)
    recipe = raw.get("recipe", "supervised")
    if recipe == "supervised":
        cfg = validate_config({key: value for key, value in raw.items() if key != "recipe"})
        if cfg.continual is not None:  # the supervised recipe would ignore the section: say which command reads it
            raise TrainwrightError(
                f"{run_dir.path} was made by `trainwright continue` or `trainwright continual`, which cannot be resumed; "
                "run that command again" if run_dir is not None else
                "the config has a continual: section: run it with `trainwright continual CONFIG` (train ignores it), or remove it"
            )
        return supervised.train(cfg, model=model, runs_dir=runs_dir, name=name, resume=run_dir, console=console)
    raise TrainwrightError(f"recipe = {recipe!r}: unknown way of training; use supervised (the default)")


def estimate(
    config: str | Path | dict | Config,
    *,
    model: nn.Module | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    device: str | None = None,
    console: Console | None = None,
    processes: int = 1,
    machines: int = 1,
) -> Estimate:
    """How long ``config`` will train and how much memory it needs, without training it or writing anything.

    Example:
        >>> est = estimate("examples/digits.yaml", device="H100")
        >>> est.total_seconds, est.flops_per_step, est.memory.total
    """
    return estimate_recipe.estimate(load_config(config, overrides), model=model, device=device, console=console,
                                    processes=processes, machines=machines)
