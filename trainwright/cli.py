"""The ``trainwright`` command: parses arguments, calls the Python API, prints results.

No logic of its own. Problems a user can fix (TrainwrightError) print one line and exit 2.
Each command imports what it uses when it runs: torch and the scientific stack take a second or
two to import, which ``trainwright --help`` and ``trainwright runs`` need not wait for.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trainwright import background
from trainwright.errors import Interrupted, TrainwrightError
from trainwright.files import atomic_path, atomic_write

app = typer.Typer(
    help="Train, evaluate and use deep learning models on PyTorch, every stage done properly.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def user_errors(command):
    """Turn bad input into one line on stderr and exit code 2; an interrupt (SIGINT, SIGTERM) into
    one line with the command that continues the run, and exit code 128 + the signal (130, 143)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = lambda message, *rest: errors.print(f"warning: {message}")
            try:
                return command(*args, **kwargs)
            except TrainwrightError as error:
                report_error(str(error))
                raise typer.Exit(2) from None
            except Interrupted as stop:
                report_error(stop.message())
                raise typer.Exit(stop.exit_code) from None
            except KeyboardInterrupt:
                errors.print("error: interrupted")
                raise typer.Exit(130) from None

    return wrapper


# Set by `train --nproc-per-node` for the processes it starts: it says their errors in one line itself.
LAUNCHED_BY_TRAINWRIGHT = "TRAINWRIGHT_LAUNCHER"
# The commands that train on data in several processes (torchrun, --nproc-per-node): `train` (supervised and gan
# recipes; rl refuses in the API) and `distill`. `estimate --nproc-per-node N` only estimates them; the rest run in one.
DATA_PARALLEL = ("train", "distill")


@app.callback()
def one_process(ctx: typer.Context) -> None:
    """Refuse, in one line, a command that runs in one process when torchrun started it in several (WORLD_SIZE > 1)
    or it was given --nproc-per-node, instead of running it N times over one run directory."""
    command = ctx.invoked_subcommand
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    asked = any(arg.split("=")[0] == "--nproc-per-node" for arg in sys.argv[1:])
    if command in DATA_PARALLEL or (command == "estimate" and size == 1):
        return
    if size > 1 or asked:
        how = f"under torchrun (WORLD_SIZE={size})" if size > 1 else "with --nproc-per-node"
        report_error(f"`trainwright {command}` runs in one process and cannot be started {how}; data-parallel training is "
                     "`train` (supervised and gan recipes) and `distill`: run this command without it")
        raise typer.Exit(2)


def report_error(text: str) -> None:
    """One ``error:`` line on stderr; in a process torchrun started, also in the error file its agent reads
    (the launcher of ``train --nproc-per-node`` then prints it instead, once: with which process failed, or,
    when a signal interrupted the run, as its first process said it)."""
    if "TORCHELASTIC_ERROR_FILE" in os.environ:
        from trainwright.training.launch import record_failure

        record_failure(text)
    launched = "RANK" in os.environ and os.environ.get(LAUNCHED_BY_TRAINWRIGHT) == "1"
    if not launched:
        rank = os.environ.get("RANK", "0")
        errors.print(f"error: {text}" if rank == "0" else f"error (rank {rank}): {text}", soft_wrap=True, markup=False)


@app.command()
@user_errors
def train(
    config: Annotated[Path | None, typer.Argument(help="YAML config (see examples/)")] = None,
    data: Annotated[str | None, typer.Option("--data", help="quick mode: a built-in data set or a table path")] = None,
    target: Annotated[str | None, typer.Option("--target", help="the column to predict")] = None,
    model: Annotated[str | None, typer.Option("--model", help="model type, e.g. mlp, lstm, transformer")] = None,
    text_column: Annotated[str | None, typer.Option("--text-column", help="text: the column of raw text to classify")] = None,
    time_column: Annotated[
        str | None, typer.Option("--time-column", help="series: the time column; --target is the column to forecast")
    ] = None,
    set_: Annotated[list[str], typer.Option("--set", help="override a config key: section.key=value (repeatable)")] = [],  # noqa: B006
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="where run directories go")] = Path("runs"),
    name: Annotated[str | None, typer.Option("--name", help="run directory name (default: data-model-timestamp)")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="continue an interrupted run from its last checkpoint")] = None,
    seeds: Annotated[int, typer.Option("--seeds", help="RL: train this many seeds, one run directory each, and their IQM")] = 1,
    nproc_per_node: Annotated[int | None, typer.Option(
        "--nproc-per-node", min=1, help="data-parallel: train in N processes on this machine through torchrun")] = None,
    nnodes: Annotated[int, typer.Option("--nnodes", min=1, help="with --nproc-per-node: machines taking part")] = 1,
    rdzv_endpoint: Annotated[str | None, typer.Option(
        "--rdzv-endpoint", help="with --nnodes: HOST:PORT of the first machine, where the processes meet")] = None,
) -> None:
    """Train a model; the last line printed is the run directory."""
    if (nproc_per_node is not None or nnodes > 1) and "RANK" not in os.environ:
        if nnodes > 1 and rdzv_endpoint is None:
            raise TrainwrightError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT, the first machine's address (on every machine)")
        raise typer.Exit(launch_workers(nproc_per_node or 1, nnodes, rdzv_endpoint))

    overrides = quick_overrides(set_, data, target, model, text_column, time_column)
    start_beside_worker(config, resume, overrides, seeds)

    import trainwright as tw

    signal.signal(signal.SIGTERM, _terminate)  # like Ctrl-C; while training, the loop defers both to a batch boundary

    if resume is not None and config is not None:
        raise TrainwrightError("--resume continues a run with its own config; pass either a config or --resume, not both")
    if config is None and data is None and resume is None:
        raise TrainwrightError(
            "nothing to train: pass a config file (trainwright train examples/digits.yaml) or --data NAME_OR_PATH"
        )
    source = config if config is not None else ({} if resume is None else None)
    try:
        run = tw.train(source, overrides=overrides, runs_dir=runs_dir, name=name, resume=resume, console=console, seeds=seeds)
    finally:  # a SIGTERM now (torchrun stopping the other processes of a failed run) ends the process quietly
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if os.environ.get("RANK", "0") == "0":  # data-parallel (torchrun): rank 0 says where the run is
        for each in run if isinstance(run, list) else [run]:  # --seeds: one run directory per seed
            print(each.dir, flush=True)


@app.command()
@user_errors
def play(
    run_dir: Annotated[Path, typer.Argument(help="an RL run directory written by train")],
    episodes: Annotated[int, typer.Option("--episodes", help="episodes to play")] = 10,
    gif: Annotated[Path | None, typer.Option("--gif", help="also write an episode as an animated GIF here")] = None,
    stochastic: Annotated[bool, typer.Option("--stochastic", help="sample actions instead of taking the most likely")] = False,
    seed: Annotated[int, typer.Option("--seed", help="the environments are reset with seed, seed + 1, ...")] = 0,
) -> None:
    """Run a trained RL policy (its kept weights) and report the returns: mean, std and interquartile mean."""
    import trainwright as tw

    result = tw.play(run_dir, episodes, gif=gif, deterministic=not stochastic, seed=seed)
    s = result.summary()
    how = "stochastic" if stochastic else "deterministic"
    console.print(
        f"{result.config.env.id}, {episodes} episodes ({how} policy, seeds {seed}+): "
        f"return mean {s['mean']:.2f} +- {s['std']:.2f}, IQM {s['iqm']:.2f}, min {s['min']:.1f}, max {s['max']:.1f}; "
        f"mean length {result.lengths.mean():.1f} steps",
        soft_wrap=True,
    )
    if result.gif is not None:
        console.print(
            f"wrote {result.gif['path']}: one episode, return {result.gif['return']:.1f} in {result.gif['length']} steps "
            f"({result.gif['frames']} frames)",
            soft_wrap=True,
        )


def start_beside_worker(config: Path | None, resume: Path | None, overrides: list[str], seeds: int) -> None:
    """For a supervised run, start the worker that does its work beside the network (the baselines, the
    preprocessor's files, the scoring, the report's figures: ``recipes/setup.Beside``) now, before this
    process loads torch, so it loads what that work needs on a core this start-up leaves idle. Only when
    a core is idle (``background.idle_core``); not in a data-parallel process (torchrun) or for RL seeds."""
    if seeds != 1 or "RANK" in os.environ or not background.idle_core():
        return
    recipe = next((item.split("=", 1)[1].strip() for item in reversed(overrides)
                   if item.split("=", 1)[0].strip() == "recipe" and "=" in item), None)
    path = resume / "config.yaml" if resume is not None else config
    if recipe is None and path is not None:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return  # the API says what is wrong with it
        recipe = raw.get("recipe") if isinstance(raw, dict) else None
    if (recipe or "supervised") == "supervised":
        background.start_worker("trainwright.recipes.setup:preload")


LAUNCH_OPTIONS = ("--nproc-per-node", "--nnodes", "--rdzv-endpoint")


def launch_workers(nproc_per_node: int, nnodes: int = 1, rdzv_endpoint: str | None = None) -> int:
    """This command again in ``nproc_per_node`` processes through torchrun (``training/distributed.launch``),
    without the launcher's own options; its exit code."""
    # torch's C++ logs each failed connection attempt with a stack trace: quiet in this process (read when torch
    # loads), as it was for the processes it starts.
    level = os.environ.get("TORCH_CPP_LOG_LEVEL")
    os.environ["TORCH_CPP_LOG_LEVEL"] = "FATAL"
    from trainwright.training.launch import launch

    if level is None:
        os.environ.pop("TORCH_CPP_LOG_LEVEL")
    else:
        os.environ["TORCH_CPP_LOG_LEVEL"] = level
    os.environ[LAUNCHED_BY_TRAINWRIGHT] = "1"  # inherited by the processes torchrun starts
    return launch(worker_arguments(sys.argv[1:]), nproc_per_node, nnodes, rdzv_endpoint)


def worker_arguments(argv: list[str]) -> list[str]:
    """The command line each process runs: this one without the launcher's own options."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in LAUNCH_OPTIONS:
            skip = True
        elif not arg.startswith(tuple(f"{option}=" for option in LAUNCH_OPTIONS)):
            kept.append(arg)
    return kept


def quick_overrides(set_: list[str], data: str | None, target: str | None, model: str | None, text_column: str | None,
                    time_column: str | None) -> list[str]:
    """Quick mode's options (--data, --target, --model, --text-column, --time-column) as ``--set`` overrides,
    before the user's own."""
    overrides = list(set_)
    if data is not None:
        overrides.insert(0, f"data.source={json.dumps(data)}")
    if target is not None:
        overrides.insert(1 if data else 0, f"data.target={json.dumps(target)}")
    for key, value in (("text_column", text_column), ("time_column", time_column)):
        if value is not None:
            overrides.insert(0, f"data.{key}={json.dumps(value)}")
    if model is not None:
        overrides.append(f"model.type={model}")
    return overrides


@app.command()
@user_errors
def estimate(
    config: Annotated[Path | None, typer.Argument(help="YAML config (see examples/)")] = None,
    data: Annotated[str | None, typer.Option("--data", help="quick mode: a built-in data set or a table path")] = None,
    target: Annotated[str | None, typer.Option("--target", help="the column to predict")] = None,
    model: Annotated[str | None, typer.Option("--model", help="model type, e.g. mlp, lstm, transformer")] = None,
    text_column: Annotated[str | None, typer.Option("--text-column", help="text: the column of raw text to classify")] = None,
    time_column: Annotated[
        str | None, typer.Option("--time-column", help="series: the time column; --target is the column to forecast")
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="cpu, cuda, mps (measured here) or a GPU name: H100, A100, L4, ...")
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="epochs to estimate (default: train.epochs)")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="override a config key: section.key=value (repeatable)")] = [],  # noqa: B006
    nproc_per_node: Annotated[int, typer.Option(
        "--nproc-per-node", min=1, help="data-parallel: processes per machine (adds the gradients' all-reduce)")] = 1,
    nnodes: Annotated[int, typer.Option("--nnodes", min=1, help="data-parallel: machines")] = 1,
) -> None:
    """Estimate training time and memory before training: FLOPs per step, device peak, the arithmetic."""
    import trainwright as tw
    from trainwright.compute.gan_estimate import GANEstimate
    from trainwright.compute.memory import human_bytes

    if config is None and data is None:
        raise TrainwrightError(
            "nothing to estimate: pass a config file (trainwright estimate examples/digits.yaml) or --data NAME_OR_PATH"
        )
    overrides = quick_overrides([*set_, *([f"train.epochs={epochs}"] if epochs is not None else [])], data, target, model,
                                text_column, time_column)
    est = tw.estimate(config if config is not None else {}, overrides=overrides, device=device, console=console,
                      processes=nproc_per_node, machines=nnodes)
    if isinstance(est, GANEstimate):  # recipe: gan; the recipe printed both networks' FLOPs and the timed steps
        return
    if not hasattr(est, "step"):  # an RL run's estimate (recipe: rl): its arithmetic, line by line
        for line in est.lines():
            console.print(line, soft_wrap=True)
        return
    table = Table(title=f"FLOPs per step (batch {est.step.batch_size}, forward + backward)", title_justify="left")
    for column in ("layer", "kind", "forward", "backward", "total", "share"):
        table.add_column(column, justify="left" if column in ("layer", "kind") else "right")
    for layer in est.step.layers:
        table.add_row(
            layer.name,
            layer.kind,
            f"{layer.forward:,}",
            f"{layer.backward:,}",
            f"{layer.total:,}",
            f"{layer.total / max(est.step.total, 1):.1%}",
        )
    table.add_row("total", "", f"{est.step.forward:,}", f"{est.step.backward:,}", f"{est.step.total:,}", "100%", style="bold")
    console.print(table)
    memory = Table(title="peak memory", title_justify="left")
    memory.add_column("item")
    memory.add_column("bytes", justify="right")
    for name, size in est.memory.items():
        memory.add_row(name, human_bytes(size))
    memory.add_row("total", human_bytes(est.memory.total), style="bold")
    console.print(memory)
    for line in est.lines():
        console.print(line, soft_wrap=True)


@app.command()
@user_errors
def cv(
    config: Annotated[Path, typer.Argument(help="YAML config (see examples/)")],
    folds: Annotated[int, typer.Option("--folds", min=2, help="k: train on k-1 parts, score the k-th, k times")] = 10,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="repeat the k folds with fresh shuffles")] = 1,
    refit: Annotated[bool, typer.Option("--refit", help="then train on all rows for predict")] = False,
    sequential: Annotated[bool, typer.Option("--sequential", help="fit folds one by one, not batched")] = False,
    set_: Annotated[list[str], typer.Option("--set", help="override a config key: section.key=value (repeatable)")] = [],  # noqa: B006
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="where run directories go")] = Path("runs"),
    name: Annotated[str | None, typer.Option("--name", help="the cv directory's name (default: data-model-cv-timestamp)")] = None,
) -> None:
    """k-fold cross-validation: per-fold scores of the network and the baselines, means with intervals, a verdict."""
    from trainwright.configure import load_config
    from trainwright.recipes.cv import cross_validate

    result = cross_validate(load_config(config, list(set_)), folds=folds, repeats=repeats, refit=refit, sequential=sequential,
                            runs_dir=runs_dir, name=name, console=console)
    print(result["dir"], flush=True)


@app.command()
@user_errors
def tune(
    config: Annotated[Path, typer.Argument(help="YAML config with a tune: section (see examples/digits.yaml)")],
    trials: Annotated[int, typer.Option("--trials", min=1, help="the study's total of finished trials (all workers)")] = 30,
    storage: Annotated[
        str | None, typer.Option("--storage", help="a database URL (postgresql://...) that workers on many machines share")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="worker processes on this machine")] = 1,
    timeout: Annotated[float | None, typer.Option("--timeout", min=1, help="start no trial after this many seconds")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="override a config key: section.key=value (repeatable)")] = [],  # noqa: B006
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="where the study's directory goes")] = Path("runs"),
    name: Annotated[str | None, typer.Option("--name", help="the study (and its directory); an existing one resumes")] = None,
) -> None:
    """Hyperparameter search with Optuna (TPE, pruning) over the config's tune.space; writes best.yaml and a report."""
    from trainwright.configure import load_config
    from trainwright.recipes.tune import tune as run_tune

    result = run_tune(load_config(config, list(set_)), trials=trials, storage=storage, workers=workers, timeout=timeout,
                      runs_dir=runs_dir, name=name, console=console)
    print(result["dir"], flush=True)


@app.command("lr-find")
@user_errors
def lr_find(
    config: Annotated[Path, typer.Argument(help="YAML config (see examples/)")],
    steps: Annotated[int, typer.Option("--steps", min=30, help="optimizer steps of the sweep")] = 100,
    min_lr: Annotated[float, typer.Option("--min-lr", help="the sweep's first learning rate")] = 1e-7,
    max_lr: Annotated[float, typer.Option("--max-lr", help="the sweep's last learning rate")] = 10.0,
    set_: Annotated[list[str], typer.Option("--set", help="override a config key: section.key=value (repeatable)")] = [],  # noqa: B006
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="where run directories go")] = Path("runs"),
    name: Annotated[str | None, typer.Option("--name", help="the run directory's name")] = None,
) -> None:
    """Sweep the learning rate exponentially and suggest one (or say why not); the model is left untouched."""
    from trainwright.configure import load_config
    from trainwright.recipes.lr_find import lr_find as run_lr_find

    result = run_lr_find(load_config(config, list(set_)), runs_dir=runs_dir, name=name, steps=steps, min_lr=min_lr,
                         max_lr=max_lr, console=console)
    print(result["dir"], flush=True)


@app.command()
@user_errors
def predict(
    run_dir: Annotated[Path, typer.Argument(help="a run directory written by train, or a model exported from one (export)")],
    data: Annotated[
        Path, typer.Argument(help="new rows: a table (CSV, Parquet, JSONL); for an image model also a folder of images")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="where to write the rows with predictions")] = Path(
        "predictions.csv"
    ),
) -> None:
    """Predict new rows or images: writes them with a prediction (and class probability) column."""
    from trainwright.export.manifest import is_exported
    from trainwright.export.predictor import load_predictor, require_torch

    if is_exported(run_dir):  # onnxruntime (or the .pt2 program): no torch needed for an ONNX export
        result = load_predictor(run_dir).predict(data)
    else:
        require_torch(run_dir, "a run directory")
        import trainwright as tw

        result = tw.load(run_dir).predict(data)
    write_table(result, output)
    console.print(f"wrote {len(result)} prediction{'' if len(result) == 1 else 's'} to {output}")


@app.command()
@user_errors
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="a run directory written by train")],
    data: Annotated[
        Path, typer.Argument(help="a labelled table holding the target column; for an image model also a folder of class folders")
    ],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="also write the metrics as JSON here")] = None,
) -> None:
    """Score a trained model on labelled rows or images."""
    import trainwright as tw

    metrics = tw.load(run_dir).evaluate(data)
    matrix = metrics.pop("confusion_matrix", None)
    table = Table(title=f"metrics on {data}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.4f}")
    console.print(table)
    if output is not None:
        atomic_write(output, json.dumps({**metrics, "confusion_matrix": matrix}, indent=2) + "\n")


@app.command()
@user_errors
def distill(
    teacher: Annotated[Path, typer.Argument(help="the teacher's run directory (a classifier)")],
    student: Annotated[
        Path, typer.Option("--student", help="the student's YAML config (model and train; the data is the teacher's)")
    ],
    set_: Annotated[list[str], typer.Option("--set", help="override a student config key: section.key=value")] = [],  # noqa: B006
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="repeat distilled vs scratch over this many seeds")] = 1,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="where run directories go")] = Path("runs"),
    name: Annotated[str | None, typer.Option("--name", help="the student's run directory name")] = None,
    nproc_per_node: Annotated[int | None, typer.Option(
        "--nproc-per-node", min=1, help="data-parallel: train in N processes on this machine through torchrun")] = None,
) -> None:
    """Distill a trained teacher into a smaller student; compares it with the student trained from scratch."""
    if nproc_per_node is not None and "RANK" not in os.environ:
        raise typer.Exit(launch_workers(nproc_per_node))
    from trainwright.recipes.distill import distill as run_distill

    try:
        run = run_distill(teacher, student, overrides=list(set_), runs_dir=runs_dir, name=name, seeds=seeds, console=console)
    except Interrupted as stop:  # its student is trained with the teacher: `train --resume` would train it without
        raise Interrupted(stop.signum, "a distillation is not resumed; run the command again") from None
    if os.environ.get("RANK", "0") == "0":  # data-parallel (torchrun): rank 0 says where the run is
        print(run.dir, flush=True)


@app.command()
@user_errors
def continual(
    config: Annotated[Path, typer.Argument(help="YAML config with a continual: section (see examples/continual-digits.yaml)")],
    strategy: Annotated[str | None, typer.Option("--strategy", help="naive | replay | ewc | lwf (default: the config's)")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="override a config key: section.key=value (repeatable)")] = [],  # noqa: B006
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="where run directories go")] = Path("runs"),
    name: Annotated[str | None, typer.Option("--name", help="run directory name (default: data-strategy-model-time)")] = None,
) -> None:
    """Measure continual learning: a task sequence, one strategy, the accuracy matrix beside the joint upper bound."""
    from trainwright.configure import load_config
    from trainwright.recipes.continual import run_continual

    overrides = [*set_, *([f"continual.strategy={strategy}"] if strategy is not None else [])]
    run = run_continual(load_config(config, overrides), runs_dir=runs_dir, name=name, console=console)
    print(run.dir, flush=True)


@app.command("continue")
@user_errors
def continue_(
    run_dir: Annotated[Path, typer.Argument(help="the trained run to continue from (it is only read)")],
    data: Annotated[str, typer.Option("--data", help="the new labelled data: a table with the old columns (or a folder, "
                                                     "for an image run)")],
    strategy: Annotated[
        str | None, typer.Option("--strategy", help="naive | replay | ewc | lwf | joint (default: replay of 10% of the old rows)")
    ] = None,
    set_: Annotated[list[str], typer.Option("--set", help="train.*, continual.*, evaluate.* (repeatable)")] = [],  # noqa: B006
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="where run directories go")] = Path("runs"),
    name: Annotated[str | None, typer.Option("--name", help="the new run's directory name (default: old name-strategy)")] = None,
) -> None:
    """Update a trained classifier on new data (new classes or new rows) without forgetting the old: a new run."""
    from trainwright.recipes.continue_run import continue_run

    run = continue_run(run_dir, data, strategy=strategy, overrides=list(set_), runs_dir=runs_dir, name=name, console=console)
    print(run.dir, flush=True)


@app.command()
@user_errors
def sample(
    run_dir: Annotated[Path, typer.Argument(help="a GAN run directory (trained with recipe: gan)")],
    n: Annotated[int, typer.Option("-n", min=1, help="samples to draw (conditional, no --class: n // classes of each)")] = 64,
    class_: Annotated[
        str | None, typer.Option("--class", help="a conditional run: the class to draw (default: every class)")
    ] = None,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="samples.png (a picture) or samples.csv (tables, points)")
    ] = Path("samples.png"),
    seed: Annotated[int | None, typer.Option("--seed", help="seed of the noise (default: the run's gan.sample.seed)")] = None,
) -> None:
    """Draw samples from a trained GAN: a grid of images, points over the real ones, or rows in original units."""
    from trainwright.recipes.gan import sample_run

    written = sample_run(run_dir, n, output, label=class_, seed=seed)
    console.print(f"wrote {written}", highlight=False)


@app.command()
@user_errors
def calibrate(
    run_dir: Annotated[Path, typer.Argument(help="a run directory of a classifier")],
    method: Annotated[str, typer.Option("--method", help="temperature | vector | isotonic")] = "temperature",
) -> None:
    """Calibrate a classifier's probabilities on its validation split; predict uses them from then on."""
    from trainwright.recipes.calibrate import calibrate_run
    from trainwright.recipes.finish import print_calibration

    if method not in ("temperature", "vector", "isotonic"):
        raise TrainwrightError(f"--method {method!r} is not one of: temperature, vector, isotonic")
    print_calibration(console, calibrate_run(run_dir, method))
    console.print(f"wrote {Path(run_dir) / 'calibration.json'} and {Path(run_dir) / 'reliability.png'}")


@app.command()
@user_errors
def export(
    run_dir: Annotated[Path, typer.Argument(help="a run directory written by train")],
    format: Annotated[str, typer.Option("--format", help="onnx | torch-export")] = "onnx",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="the directory to write (default: RUN/export-FORMAT; must not exist)")
    ] = None,
    rows: Annotated[
        Path | None, typer.Option("--rows", help="a table of rows to check the export on (default: the run's test split)")
    ] = None,
) -> None:
    """Export a run's model (ONNX or torch.export) and check it computes what the run computes; the last line is the directory."""
    from trainwright.export import export_run

    result = export_run(run_dir, format, output, rows=rows, echo=lambda line: console.print(line, soft_wrap=True, markup=False))
    print(result["path"], flush=True)


@app.command()
@user_errors
def serve(
    path: Annotated[Path, typer.Argument(help="a run directory, or a model exported from one (export)")],
    host: Annotated[str, typer.Option("--host", help="the interface to listen on (0.0.0.0: every one)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="the TCP port")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="processes, each with the model loaded")] = 1,
) -> None:
    """Serve predictions over HTTP until Ctrl-C: POST /predict, GET /health, GET / (a form), GET /docs."""
    from trainwright.serve import serve as serve_model

    serve_model(path, host=host, port=port, workers=workers)


@app.command()
@user_errors
def datasets() -> None:
    """List the built-in data sets (shipped with scikit-learn or generated; nothing is downloaded)."""
    from trainwright.data.builtin import BUILTINS

    table = Table(title="built-in data sets", title_justify="left")
    for column in ("name", "task", "target", "description"):
        table.add_column(column)
    for item in BUILTINS.values():
        table.add_row(item.name, item.task, item.target, item.description)
    console.print(table)


@app.command("make-shapes")
@user_errors
def make_shapes(
    folder: Annotated[Path, typer.Argument(help="the folder to create (it must not exist yet)")],
    per_class: Annotated[int, typer.Option("--per-class", min=1, help="images of each class")] = 1000,
    size: Annotated[int, typer.Option("--size", min=8, max=512, help="side of the square images, in pixels")] = 32,
    classes: Annotated[
        str, typer.Option("--classes", help="comma-separated, from: circle, square, triangle, star, cross")
    ] = "circle,square,triangle",
    seed: Annotated[int, typer.Option("--seed", help="the same seed writes the same images")] = 0,
) -> None:
    """Write a generated image folder (one sub-folder per shape) to train on."""
    from trainwright.data.shapes import make_shapes as write_shapes

    names = [name.strip() for name in classes.split(",") if name.strip()]
    written = write_shapes(folder, per_class=per_class, size=size, classes=names, seed=seed, console=console)
    console.print(f"wrote {written} images ({len(names)} classes x {per_class}, {size}x{size} RGB PNG) to {folder}")
    print(folder, flush=True)


@app.command()
@user_errors
def report(run_dir: Annotated[Path, typer.Argument(help="a run directory written by train")]) -> None:
    """Write the run's HTML report (report.html in the run directory) and print its path."""
    from trainwright.report import write_report

    console.print(str(write_report(run_dir)), soft_wrap=True)


@app.command()
@user_errors
def runs(runs_dir: Annotated[Path, typer.Argument(help="the directory train wrote runs into")] = Path("runs")) -> None:
    """List the runs in a directory: data, model, key test metric, epochs, training time."""
    from trainwright.runs import list_runs

    found = list_runs(runs_dir)
    if not found:
        console.print(f"no runs in {runs_dir}")
        return
    table = Table(title=f"runs in {runs_dir}", title_justify="left")
    for column, justify in (
        ("run", "left"),
        ("data", "left"),
        ("model", "left"),
        ("test metric", "right"),
        ("epochs", "right"),
        ("time", "right"),
        ("started", "left"),
    ):
        table.add_column(column, justify=justify)
    for r in found:
        metric = f"{r['metric']} {r['value']:.4f}" if r["value"] is not None else ("-" if r["finished"] else "did not finish")
        seconds = f"{r['seconds']:.1f} s" if r["seconds"] is not None else "-"
        started = (r["started"] or "-")[:16].replace("T", " ")  # 2026-01-01T12:00:00+0000 -> 2026-01-01 12:00
        table.add_row(
            *(
                escape(str(cell))
                for cell in (r["name"], r["data"] or "-", r["model"] or "-", metric, r["epochs"] or "-", seconds, started)
            )
        )
    console.print(table)


@app.command()
@user_errors
def compare(run_dirs: Annotated[list[Path], typer.Argument(help="two or more run directories")]) -> None:
    """Show how the runs' configs differ and their test metrics side by side."""
    from trainwright.runs import compare_runs

    names, differ, metrics = compare_runs(run_dirs)
    if differ:
        table = Table(title="config keys that differ", title_justify="left")
        table.add_column("key")
        for name in names:
            table.add_column(escape(name))
        for key, values in differ.items():
            table.add_row(escape(key), *(escape(json.dumps(value)) for value in values))
        console.print(table)
    else:
        console.print("the configs are identical")
    table = Table(title="test metrics", title_justify="left")
    table.add_column("metric")
    for name in names:
        table.add_column(escape(name), justify="right")
    for key, values in metrics.items():
        table.add_row(key, *(_cell(value) for value in values))
    console.print(table)


def _terminate(signum: int, frame) -> None:
    raise Interrupted(signum)


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_table(frame, path: Path) -> None:
    """Write by suffix (.csv, .parquet, .jsonl), atomically."""
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        elif suffix in (".jsonl", ".ndjson"):
            frame.to_json(tmp, orient="records", lines=True)
        elif suffix in (".csv", ""):
            frame.to_csv(tmp, index=False)
        else:
            raise TrainwrightError(f"cannot write {path}: use a .csv, .parquet or .jsonl output file")


def main() -> None:
    try:
        app()
    except SystemExit as done:
        leave(done.code)
    leave(0)


def leave(code: int | str | None) -> None:
    """Exit now, without tearing the interpreter down.

    A command's work is written and flushed when it returns; a normal exit would then free, one by
    one, every object torch, scikit-learn and matplotlib loaded (1.4 s of CPU after ``train`` on our
    machine, longer than the digits MLP trains). Threads and exit handlers still run, as in a normal exit.
    """
    # What a normal exit runs first: the thread pools' shutdown (RunDir's writer thread finishes its writes and
    # stops), then every non-daemon thread joined; a joined pool thread would otherwise wait for work forever.
    threading._shutdown()
    atexit._run_exitfuncs()  # what a normal exit runs first (multiprocessing, tempfile, logging clean-up)
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)  # SystemExit("message"), as Python reports it
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    sys.exit(main())
