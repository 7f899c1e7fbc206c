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
from trainwright.compute.gan_estimate import GANEstimate
from trainwright.config import Config
from trainwright.config.rl import rl_config
from trainwright.configure import load_config, read_raw, validate_config, validate_gan_config
from trainwright.errors import TrainwrightError
from trainwright.recipes import estimate as estimate_recipe
from trainwright.recipes import gan, supervised
from trainwright.recipes.finish import Run
from trainwright.rundir import RunDir
from trainwright.training.distributed import world_size


def train(
    config: str | Path | dict | Config | None = None,
    *,
    model: nn.Module | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    runs_dir: str | Path = "runs",
    name: str | None = None,
    resume: str | Path | None = None,
    console: Console | None = None,
    seeds: int = 1,
) -> Run | list[Run]:
    """Train a model as ``config`` says and write a run directory; returns a ``Run``.

    Example:
        >>> run = train({"data": {"source": "iris"}}, overrides=["train.epochs=20"])
        >>> run.metrics["test"]["accuracy"]
        >>> train("examples/rl/cartpole_ppo.yaml").metrics["test"]["mean_return"]   # recipe: rl
    ``model=`` trains your own ``nn.Module``. ``resume=`` continues an interrupted run from its last
    checkpoint (``overrides`` may extend ``train.epochs``, or ``algo.steps`` for RL). ``seeds=N`` (RL)
    trains N seeds, each its own run directory, and returns their ``Run``s.
    """
    run_dir = RunDir.open(resume) if resume is not None else None
    if run_dir is None and config is None:
        raise TrainwrightError("no config: pass a YAML file, a dict or a Config (or --data for quick mode)")
    raw = read_raw(run_dir.config if run_dir is not None else config, overrides)
    recipe = raw.get("recipe", "supervised")
    if seeds < 1 or (seeds > 1 and (recipe != "rl" or run_dir is not None)):
        raise TrainwrightError(f"--seeds {seeds}: several seeds are for a new RL run (recipe: rl); give a positive number")
    if recipe == "supervised":
        cfg = validate_config({key: value for key, value in raw.items() if key != "recipe"})
        if cfg.continual is not None:  # the supervised recipe would ignore the section: say which command reads it
            raise TrainwrightError(
                f"{run_dir.path} was made by `trainwright continue` or `trainwright continual`, which cannot be resumed; "
                "run that command again" if run_dir is not None else
                "the config has a continual: section: run it with `trainwright continual CONFIG` (train ignores it), or remove it"
            )
        return supervised.train(cfg, model=model, runs_dir=runs_dir, name=name, resume=run_dir, console=console)
    if recipe == "rl":
        if world_size() > 1:  # its data are the environments it steps, not rows a process could take a share of
            raise TrainwrightError(
                f"recipe: rl trains in one process and cannot run on {world_size()} processes (torchrun, --nproc-per-node); "
                "start it without them (--seeds N trains several seeds)"
            )
        rl = rl_recipe()
        cfg = rl_config(raw)
        if model is not None:
            raise TrainwrightError("model= is for supervised runs; an RL policy is described by the config's model section")
        if seeds > 1:
            return rl.train_seeds(cfg, seeds, runs_dir=runs_dir, name=name, console=console)
        return rl.train(cfg, runs_dir=runs_dir, name=name, resume=run_dir, console=console)
    if recipe == "gan":
        if model is not None:
            raise TrainwrightError(
                "model= trains your own network in a supervised run; a GAN's networks are set in its gan: section"
            )
        return gan.train_gan(validate_gan_config(raw), runs_dir=runs_dir, name=name, resume=run_dir, console=console)
    raise TrainwrightError(f"recipe = {recipe!r}: unknown way of training; use supervised (the default), gan or rl")


def play(run: str | Path, episodes: int = 10, *, gif: str | Path | None = None, deterministic: bool = True, seed: int = 0):
    """Play a trained RL run's kept policy for ``episodes`` episodes (``gif``: write one as an animated GIF).

    Example:
        >>> result = play("runs/<run>", episodes=10, gif="episode.gif")
        >>> result.summary()["mean"]
    """
    try:  # gymnasium is the optional rl extra: imported when a policy is played
        from trainwright.recipes.play import play as play_policy
    except ModuleNotFoundError as error:
        raise TrainwrightError(f"play needs {error.name}, which is not installed: pip install 'trainwright[rl]'") from None
    return play_policy(run, episodes, gif=gif, deterministic=deterministic, seed=seed)


def rl_recipe():
    """The RL recipe module; gymnasium (the optional rl extra) is imported only for an RL run."""
    try:
        from trainwright.recipes import rl
    except ModuleNotFoundError as error:
        raise TrainwrightError(f"recipe: rl needs {error.name}, which is not installed: pip install 'trainwright[rl]'") from None
    return rl


def estimate(
    config: str | Path | dict | Config,
    *,
    model: nn.Module | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    device: str | None = None,
    console: Console | None = None,
    processes: int = 1,
    machines: int = 1,
) -> Estimate | GANEstimate:
    """How long ``config`` will train and how much memory it needs, without training it or writing anything
    (a GAN config, ``recipe: gan``: how long, from both networks' FLOPs and a few timed steps).

    Example:
        >>> est = estimate("examples/digits.yaml", device="H100")
        >>> est.total_seconds, est.flops_per_step, est.memory.total
        >>> estimate("examples/rl/cartpole_ppo.yaml").lines()   # recipe: rl: env steps/s and policy FLOPs per update
    """
    raw = read_raw(config, overrides)
    if raw.get("recipe") == "rl":
        if device not in (None, "cpu") or model is not None:
            raise TrainwrightError("an RL estimate runs on the CPU for the policy its config describes; drop --device and model=")
        return rl_recipe().estimate(rl_config(raw))
    if raw.get("recipe") == "gan":
        return gan.estimate_gan_run(validate_gan_config(raw), device=device, console=console)
    return estimate_recipe.estimate(load_config(config, overrides), model=model, device=device, console=console,
                                    processes=processes, machines=machines)
