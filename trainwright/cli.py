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
import sys
import threading
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trainwright.errors import TrainwrightError
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
    """Turn bad input into one line on stderr and exit code 2; an interrupt into a resume hint."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = lambda message, *rest: errors.print(f"warning: {message}")
            try:
                return command(*args, **kwargs)
            except TrainwrightError as error:
                errors.print(f"error: {error}", soft_wrap=True, markup=False)
                raise typer.Exit(2) from None
            except KeyboardInterrupt:
                errors.print(
                    "interrupted; the last finished epoch is checkpointed: continue with `trainwright train --resume RUN_DIR`"
                )
                raise typer.Exit(130) from None

    return wrapper


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
) -> None:
    """Train a model; the last line printed is the run directory."""
    import trainwright as tw

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
    if resume is not None and config is not None:
        raise TrainwrightError("--resume continues a run with its own config; pass either a config or --resume, not both")
    if config is None and data is None and resume is None:
        raise TrainwrightError(
            "nothing to train: pass a config file (trainwright train examples/digits.yaml) or --data NAME_OR_PATH"
        )
    source = config if config is not None else ({} if resume is None else None)
    run = tw.train(source, overrides=overrides, runs_dir=runs_dir, name=name, resume=resume, console=console)
    print(run.dir, flush=True)


@app.command()
@user_errors
def estimate(
    config: Annotated[Path, typer.Argument(help="YAML config (see examples/)")],
    device: Annotated[
        str | None, typer.Option("--device", help="cpu, cuda, mps (measured here) or a GPU name: H100, A100, L4, ...")
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="epochs to estimate (default: train.epochs)")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="override a config key: section.key=value (repeatable)")] = [],  # noqa: B006
) -> None:
    """Estimate training time and memory before training: FLOPs per step, device peak, the arithmetic."""
    import trainwright as tw
    from trainwright.compute.memory import human_bytes

    overrides = [*set_, *([f"train.epochs={epochs}"] if epochs is not None else [])]
    est = tw.estimate(config, overrides=overrides, device=device, console=console)
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
def predict(
    run_dir: Annotated[Path, typer.Argument(help="a run directory written by train")],
    data: Annotated[
        Path, typer.Argument(help="new rows: a table (CSV, Parquet, JSONL); for an image model also a folder of images")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="where to write the rows with predictions")] = Path(
        "predictions.csv"
    ),
) -> None:
    """Predict new rows or images: writes them with a prediction (and class probability) column."""
    import trainwright as tw

    model = tw.load(run_dir)
    result = model.predict(data)
    write_table(result, output)
    console.print(f"wrote {len(result)} predictions to {output}")


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
) -> None:
    """Distill a trained teacher into a smaller student; compares it with the student trained from scratch."""
    from trainwright.recipes.distill import distill as run_distill

    run = run_distill(teacher, student, overrides=list(set_), runs_dir=runs_dir, name=name, seeds=seeds, console=console)
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
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # what a normal exit runs first (multiprocessing, tempfile, logging clean-up)
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)  # SystemExit("message"), as Python reports it
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    sys.exit(main())
