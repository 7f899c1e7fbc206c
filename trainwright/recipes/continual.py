"""Measure continual learning: one network learns a sequence of tasks with one strategy; the accuracy
matrix, its measures and the same network trained on everything at once (the upper bound) beside.

The recipe reads top to bottom: ① the tasks: ``data.source`` cut by classes (``continual.split``;
the preprocessing fitted once on every task's training rows, as split MNIST is normalized with
the whole training set's constants: the data set is at hand, and a per-column scale fitted on two
digits would blow up pixels those digits never light), or one task per source (``data.source``,
then ``continual.then``: the later ones through the first one's preprocessing, as ``trainwright
continue`` reads new data); each task's rows split as ``data.split`` says; ② the model, built for
the first task's classes; ③ the run directory; ④ per task: the head widens for its classes, the
supervised loop trains it with the strategy's step (a fresh optimizer, the ``train:`` section's
budget, early stopping on that task's own validation rows), then the model is scored on every test
split so far (a row of the accuracy matrix); then the joint upper bound, a fresh network trained
once on every task's rows; ⑤ ``continual.json``, the final model (a classifier of every class, the
task not given) with its metrics on every test row, and the report.

Example:
    >>> run = run_continual(load_config("examples/continual-digits.yaml", overrides=["continual.strategy=naive"]))
    >>> result = json.loads((run.dir / "continual.json").read_text())
    >>> result["average_accuracy"], result["joint"]["average_accuracy"]
    (0.197, 0.983)
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.nn import functional as F

from trainwright.config import Config
from trainwright.continual.loop import strategy_step
from trainwright.continual.measures import summary
from trainwright.continual.scenarios import Scenario, Task, class_lists, extend_classes, joint_task, restrict
from trainwright.continual.strategies import Joint, Replay, Strategy, build_strategy, narrow_to_binary, widen_head
from trainwright.continual.task_data import TaskData
from trainwright.data.new_rows import read_new_rows
from trainwright.data.prepare import load_data, prepare_data, with_input_stage
from trainwright.data.split import Split, split_rows
from trainwright.data.target import encode_labels
from trainwright.errors import TrainwrightError
from trainwright.evaluate.metrics import predict_outputs
from trainwright.models.registry import build_model
from trainwright.predict import score
from trainwright.recipes.finish import Run, test_predictions
from trainwright.recipes.setup import build_fit, model_facts, resolve_device, start_run
from trainwright.rundir import RunDir, default_run_name, unique_name
from trainwright.training.callbacks import CallbackList, EarlyStopping, ProgressBar
from trainwright.training.loop import fit as run_fit
from trainwright.training.precision import check_precision

CONTINUAL = "continual.json"


def run_continual(cfg: Config, *, runs_dir: str | Path = "runs", name: str | None = None, console: Console | None = None) -> Run:
    """Train ``cfg``'s task sequence with ``cfg.continual.strategy`` and the joint upper bound; the run's
    ``continual.json`` holds the matrix and the measures, its ``metrics.json`` the final model's scores."""
    console = console or Console()
    settings = cfg.continual
    if settings is None:
        raise TrainwrightError("the config has no continual: section; add one (see examples/continual-digits.yaml)")
    if settings.strategy == "joint":
        raise TrainwrightError("continual.strategy: joint is the upper bound every continual run trains beside its strategy; "
                               "choose naive, replay, ewc or lwf")
    started = time.perf_counter()
    # ① The tasks.
    scenario, data, names = build_tasks(cfg, console)
    device = resolve_device(cfg.train.device)
    check_precision(device, cfg.train.precision)
    pre = copy.copy(data.preprocessor)
    pre.classes, pre.task = list(scenario.class_names), "multiclass"  # class index i is class_names[i] from here on
    shape, vocab = tuple(data.input_shape), getattr(pre, "vocab_size", None)

    # ② The model, for the first task's classes; seeded, so the strategy and joint start from the same weights.
    def new_model(classes: int) -> nn.Module:
        torch.manual_seed(cfg.train.seed)
        return with_input_stage(pre, build_model(cfg.model, shape, classes, vocab)).to(device)

    module = new_model(scenario.head_size(0))
    learner = build_strategy(settings, seed=cfg.train.seed)
    on_device = Scenario([Task(t.index, *(getattr(t, k).to(device) for k in TENSORS), classes=t.classes) for t in scenario.tasks],
                         scenario.kind, scenario.class_names)
    final_pre = copy.copy(pre)
    final_pre.task = "binary" if scenario.num_classes == 2 else "multiclass"
    everything = joint_task(scenario)
    final = TaskData(*(getattr(everything, k) for k in TENSORS), final_pre, final_pre.task, data.name, True,
                     sequence_summary(data.summary, scenario, names, cfg), shape=shape, train_transform=data.train_transform)

    # ③ The run directory, once the tasks and the model are known to be good.
    run_dir = start_run(cfg, final, module, device, runs_dir=runs_dir,
                        name=name or unique_name(runs_dir, default_run_name(f"{data.name}-{settings.strategy}", cfg.model.type)))
    console.print(f"strategy {settings.strategy}, {scenario.kind.replace('_', '-')}: {len(scenario.tasks)} tasks; "
                  f"then joint (the upper bound) on every task's rows at once", highlight=False, soft_wrap=True)

    # ④ The loop over tasks, then the joint upper bound.
    rows, trained = [], []
    generator = torch.Generator(device=device).manual_seed(cfg.train.seed + 1)  # batch order is the fit's; this one replays
    for i, task in enumerate(on_device.tasks):
        module = widen_head(module, on_device.head_size(i))
        learner.begin_task(module, task, on_device)
        trained.append(train_one(cfg, module, learner, on_device, [i], task, data, shape, generator, run_dir, console, names[i]))
        if isinstance(learner, Replay):  # the buffer this task replayed, of the old training rows there were
            trained[-1]["replayed"] = {"rows": len(learner.buffer), "old_rows": sum(len(t.y_train) for t in scenario.tasks[:i])}
        learner.end_task(module, task, on_device)
        rows.append(task_row(module, on_device, i, cfg.evaluate.batch_size))
        seen = " ".join(f"{a:.3f}" for a in rows[-1][: i + 1])
        best = f" (best {trained[-1]['best_epoch']})" if cfg.train.early_stopping.enabled else ""
        console.print(f"task {i + 1}/{len(scenario.tasks)} ({names[i]}): {trained[-1]['epochs']} epochs{best}; accuracy on "
                      f"tasks 1-{i + 1}: {seen}", highlight=False, soft_wrap=True)
    joint = new_model(scenario.num_classes)
    joint_fit = train_one(cfg, joint, Joint(), on_device, list(range(len(scenario.tasks))), joint_task(on_device), data, shape,
                          generator, run_dir, console, "joint")
    joint_row = task_row(joint, on_device, len(scenario.tasks) - 1, cfg.evaluate.batch_size)

    # ⑤ continual.json, the final model with its metrics on every test row, the report.
    matrix = torch.stack(rows)
    result = {
        "command": "continual",
        "strategy": settings.strategy,
        "scenario": scenario.kind,
        "data": cfg.data.source,
        "tasks": [{"name": names[i], "classes": [scenario.class_names[c] for c in t.classes.tolist()],
                   **{part: len(getattr(t, f"y_{part}")) for part in ("train", "val", "test")}, **trained[i]}
                  for i, t in enumerate(scenario.tasks)],
        **summary(matrix),
        "joint": {"accuracies": joint_row.tolist(), "average_accuracy": float(joint_row.mean()), **joint_fit},
        **({"replay": {"share": settings.replay.share, "size": settings.replay.size, **trained[-1]["replayed"]}}
           if isinstance(learner, Replay) else {}),
        "seconds": time.perf_counter() - started,
    }
    run_dir.write_json(run_dir.path / CONTINUAL, result)
    print_matrix(console, result)
    if final_pre.task == "binary":  # a binary run's head is one logit (what predict reads); the same probabilities
        module = narrow_to_binary(module)
    metrics = write_final_model(run_dir, cfg, final, module, device, result, console)
    return Run(run_dir.path, cfg, metrics, [])


TENSORS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


# ── ① the tasks ─────────────────────────────────────────────────────────────────────────
def build_tasks(cfg: Config, console: Console) -> tuple[Scenario, TaskData, list[str]]:
    """The scenario (tensors on the CPU, class indices in order of first appearance), the prepared data
    (its preprocessor, input shape and summary) and a name per task."""
    settings = cfg.continual
    if settings.then is None:
        return tasks_by_classes(cfg, console)
    first = prepare_data(cfg.data)
    if first.task == "regression":
        raise TrainwrightError(f"{cfg.data.source} is a regression target; continual learning here is over classes")
    for line in first.report_lines():
        console.print(line, highlight=False, soft_wrap=True)
    pre = first.preprocessor
    classes = list(pre.classes)
    parts = [[(first.x_train, first.y_train), (first.x_val, first.y_val), (first.x_test, first.y_test)]]
    columns = list(first.summary.get("columns") or {}) or None
    for source in settings.then:
        rows = read_new_rows(pre, source, cfg.data, old_columns=columns)
        classes = extend_classes(classes, rows.labels)
        y = torch.from_numpy(encode_labels(rows.labels, classes, pre.target))
        split = checked_split(len(y), rows.labels, cfg, source)
        console.print(f"{rows.line()}; split: train {len(split.train)}, val {len(split.val)}, test {len(split.test)}",
                      highlight=False, soft_wrap=True)
        parts.append([(rows.x[s], y[s]) for s in (split.train, split.val, split.test)])
    tasks = [Task(i, *(t for part in p for t in part)) for i, p in enumerate(parts)]
    names = [str(cfg.data.source), *map(str, settings.then)]
    return Scenario(tasks, settings.scenario, class_names=classes), data_of(first, first.x_train), names


def tasks_by_classes(cfg: Config, console: Console) -> tuple[Scenario, TaskData, list[str]]:
    """``data.source`` cut into tasks by classes; each task split as data.split says; one preprocessing for all."""
    rows = load_data(cfg.data)
    labels = rows.strata
    if getattr(rows, "task", "multiclass") == "regression" or labels is None:
        raise TrainwrightError(f"{cfg.data.source} has no classes to cut into tasks (a regression target or a series)")
    split_cfg = cfg.continual.split
    lists = class_lists(labels, split_cfg.classes_per_task, split_cfg.tasks)
    if len(lists) < 2:
        raise TrainwrightError(f"{cfg.data.source} makes {len(lists)} task of classes {lists}; a sequence needs two or more: "
                               "lower continual.split.classes_per_task or list continual.split.tasks")
    positions = []  # per task, (train, val, test) positions in the loaded rows
    for classes in lists:
        where = np.flatnonzero(np.isin(labels, classes))
        split = checked_split(len(where), labels[where], cfg, f"the task of classes {', '.join(map(str, classes))}")
        positions.append([where[s] for s in (split.train, split.val, split.test)])
    union = Split(*(np.sort(np.concatenate([p[k] for p in positions])) for k in range(3)), held_out=True, stratified=True)
    data = rows.prepare(union)  # fitted on every task's training rows; x_train row k is position union.train[k]
    for line in data.report_lines():
        console.print(line, highlight=False, soft_wrap=True)
    order = [c for classes in lists for c in classes]  # class index in the scenario: order of first appearance
    remap = torch.tensor([order.index(c) for c in data.preprocessor.classes])
    tensors = [(data.x_train, data.y_train), (data.x_val, data.y_val), (data.x_test, data.y_test)]
    tasks = []
    for i, (classes, parts) in enumerate(zip(lists, positions, strict=True)):
        cut = []
        for (x, y), where, every in zip(tensors, parts, (union.train, union.val, union.test), strict=True):
            index = torch.from_numpy(np.searchsorted(every, where))
            cut += [x[index], remap[y[index].long()]]
        tasks.append(Task(i, *cut, classes=torch.tensor(sorted(order.index(c) for c in classes))))
    names = [f"classes {', '.join(map(str, classes))}" for classes in lists]
    return Scenario(tasks, cfg.continual.scenario, class_names=order), data_of(data, data.x_train), names


def checked_split(n: int, labels: np.ndarray, cfg: Config, what: str) -> Split:
    split = split_rows(n, labels, cfg.data.split)
    if not split.held_out:
        raise TrainwrightError(f"{what} has {n} rows, too few to hold validation and test rows out; add rows, or put fewer "
                               "tasks in the sequence")
    return split


def data_of(prepared, x_train: torch.Tensor) -> TaskData:
    """The prepared data's facts (preprocessor, shape, summary, augmentation) for the stages that read them."""
    return TaskData(x_train, prepared.y_train, prepared.x_val, prepared.y_val, prepared.x_test, prepared.y_test,
                    prepared.preprocessor, prepared.task, prepared.name, True, prepared.summary,
                    shape=tuple(prepared.input_shape), train_transform=prepared.train_transform)


def sequence_summary(summary: dict, scenario: Scenario, names: list[str], cfg: Config) -> dict:
    """data.json: the data's own summary with the classes, balance and split sizes of every task together."""
    labels = [str(c) for c in scenario.class_names]
    everything = joint_task(scenario)
    counts = {part: torch.bincount(getattr(everything, f"y_{part}"), minlength=len(labels)).tolist()
              for part in ("train", "val", "test")}
    balance = {part: dict(zip(labels, counts[part], strict=True)) for part in counts}
    return {
        **summary,
        "task": "multiclass" if scenario.num_classes > 2 else "binary",
        "classes": list(scenario.class_names),
        "class_balance": {"all": {k: sum(balance[p][k] for p in balance) for k in labels}, **balance},
        "split": {**(summary.get("split") or {}), "held_out": True,
                  **{part: len(getattr(everything, f"y_{part}")) for part in ("train", "val", "test")}},
        "tasks": [{"name": name, "classes": [scenario.class_names[c] for c in t.classes.tolist()]}
                  for name, t in zip(names, scenario.tasks, strict=True)],
    }


# ── ④ one task's fit ───────────────────────────────────────────────────────────────────
def train_one(cfg: Config, module: nn.Module, learner: Strategy, scenario: Scenario, validate_on: list[int], task: Task,
              data: TaskData, shape: tuple[int, ...], generator: torch.Generator, run_dir: RunDir, console: Console,
              name: str) -> dict:
    """The supervised loop on one task's training rows with the strategy's step; returns its epochs and seconds.

    A fresh optimizer per task, the ``train:`` section's budget, early stopping on the validation
    rows of ``validate_on`` (the task's own; joint: every task's); progress shown, nothing resumable.
    """
    rows = TaskData(task.x_train.cpu(), task.y_train.cpu(), task.x_val.cpu(), task.y_val.cpu(), task.x_test.cpu(),
                    task.y_test.cpu(), data.preprocessor, "multiclass", name, True, {}, shape=shape,
                    train_transform=data.train_transform)
    device = next(module.parameters()).device
    fit = build_fit(cfg, module, rows, device, run_dir, console)
    stopper = EarlyStopping(cfg.train.early_stopping)
    fit.callbacks = CallbackList([stopper, ProgressBar(console, cfg.train.epochs, len(fit.batches),
                                                       cfg.train.early_stopping.monitor)])
    fit.step_loss = strategy_step(module, learner, scenario, generator)
    fit.validate = task_validate(scenario, validate_on, cfg.evaluate.batch_size)
    started = time.perf_counter()
    run_fit(fit)
    return {"epochs": fit.epoch, "best_epoch": stopper.best_epoch, "seconds": time.perf_counter() - started}


def task_validate(scenario: Scenario, tasks: list[int], batch_size: int):
    """Per-epoch validation on the validation rows of ``tasks``, each task weighted equally.

    The loss and accuracy are the means over the tasks of each task's own cross-entropy and
    accuracy (task-IL: the logits masked to the task's classes), as average accuracy weighs them:
    pooled rows would let the largest split decide, and an update that early-stops on them would
    stop before a small new class is learned.

    Example:
        >>> validate = task_validate(scenario, [0, 1], 4096)
        >>> validate(model)
        {'val_loss': 0.41, 'val_accuracy': 0.93}
    """

    def validate(model: nn.Module) -> dict[str, float]:
        losses, hits = [], []
        for j in tasks:
            task = scenario.tasks[j]
            out = predict_outputs(model, task.x_val, batch_size)  # (N, classes of the head)
            out = restrict(out, scenario.test_mask(j, out.shape[1]))
            losses.append(F.cross_entropy(out, task.y_val))
            hits.append((out.argmax(1) == task.y_val).float().mean())
        return {"val_loss": float(torch.stack(losses).mean()), "val_accuracy": float(torch.stack(hits).mean())}

    return validate


def task_row(module: nn.Module, scenario: Scenario, upto: int, batch_size: int) -> torch.Tensor:
    """(T,) test accuracy on each task j <= ``upto`` (task-IL: masked to task j's classes); NaN after ``upto``."""
    row = torch.full((len(scenario.tasks),), math.nan)
    for j, task in enumerate(scenario.tasks[: upto + 1]):
        if len(task.y_test):
            out = predict_outputs(module, task.x_test, batch_size)
            row[j] = (restrict(out, scenario.test_mask(j, out.shape[1])).argmax(1) == task.y_test).float().mean().cpu()
    return row


# ── ⑤ finish ───────────────────────────────────────────────────────────────────────────
def write_final_model(run_dir: RunDir, cfg: Config, final: TaskData, module: nn.Module, device: torch.device, result: dict,
                      console: Console) -> dict:
    """The final model (every class, the task not given) with its metrics on every task's rows, then the report.

    The supervised diagnosis reads one fit's curves; a sequence has one per task, and what went wrong
    in it (forgetting) is in continual.json, so the diagnosis says that instead.
    """
    from trainwright.report import write_report

    pre = final.preprocessor
    outputs = {part: predict_outputs(module, getattr(final, f"x_{part}"), cfg.evaluate.batch_size, device).float().cpu()
               for part in ("test", "val", "train")}
    metrics = {"task": final.task, **{part: score(outputs[part], getattr(final, f"y_{part}"), pre) for part in outputs},
               "held_out": True, "best_epoch": None, "epochs": sum(t["epochs"] for t in result["tasks"]),
               "train_seconds": sum(t["seconds"] for t in result["tasks"]), "stopped_early": None}
    for part in ("test", "val", "train"):
        matrix = metrics[part].pop("confusion_matrix", None)
        if part == "test" and matrix is not None:
            metrics["confusion_matrix"] = {"labels": pre.classes, "matrix": matrix}
    run_dir.save_weights(module)
    run_dir.write_json(run_dir.model_info, model_facts(cfg, final, module))
    run_dir.write_text(run_dir.predictions, test_predictions(outputs["test"], final).to_csv(index=False))
    run_dir.write_json(run_dir.metrics, metrics)
    run_dir.write_json(run_dir.diagnosis, {"findings": [], "note": "a continual run trains one fit per task; what it lost "
                                           "along the way is the forgetting in continual.json"})
    console.print(f"final model on every test row, the task not given: accuracy {metrics['test']['accuracy']:.4f}",
                  highlight=False)
    console.print(f"report: {write_report(run_dir.path)}", highlight=False, soft_wrap=True)
    return metrics


def print_matrix(console: Console, result: dict) -> None:
    """The accuracy matrix, its measures, and joint's row beside."""
    tasks = result["tasks"]
    table = Table(title=f"accuracy on task j (columns) after task i (rows): {result['strategy']}, "
                        f"{result['scenario'].replace('_', '-')}", title_justify="left")
    table.add_column("")
    for j in range(len(tasks)):
        table.add_column(f"task {j + 1}", justify="right")
    table.add_column("average", justify="right")
    for i, (row, curve) in enumerate(zip(result["matrix"], result["average_accuracy_curve"], strict=True)):
        table.add_row(f"after {i + 1}", *("" if v is None else f"{v:.3f}" for v in row), f"{curve:.3f}")
    joint = result["joint"]
    table.add_row("joint (all at once)", *(f"{v:.3f}" for v in joint["accuracies"]), f"{joint['average_accuracy']:.3f}",
                  style="italic")
    console.print(table)

    def number(value: float | None, sign: bool = False) -> str:
        return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:{'+' if sign else ''}.3f}"

    console.print(f"{result['strategy']}: average accuracy {number(result['average_accuracy'])}, forgetting "
                  f"{number(result['forgetting'])}, backward transfer {number(result['backward_transfer'], True)}; "
                  f"joint (the upper bound) {number(joint['average_accuracy'])}", highlight=False, soft_wrap=True)
