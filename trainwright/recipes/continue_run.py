"""Continue a trained run on new data: a new run that starts from the old run's weights and
preprocessing, learns the new rows with a continual-learning strategy, and measures what it kept.

The recipe reads top to bottom: ① the old run and its data (its splits made again from its config,
checked against its data.json), the new rows through the old preprocessing, split as the old run
split its data; ② the model: the old weights, the strategy primed on the old task (the replay
buffer, EWC's Fisher information, LwF's copy of the old model) and only then the output layer
widened for the new classes; ③ the estimate and the run directory; ④ the supervised loop with the
strategy's step, validated (early stopping) on the old and on the new validation rows, each task
weighted equally, the same rule for every strategy: the updated model answers for every class (a new
split of one new class alone would only reward forgetting; pooled rows would let the larger old split
stop training before the new class is learned); ⑤ accuracy on the old and the new test split before
and after -> ``continual.json``, then the usual finish on the old and new splits together. The old
run directory is only read.

Without the old data (moved, deleted, changed), ``naive`` and ``lwf`` still run (the old test split
cannot be scored then); ``replay`` and ``ewc`` use what an earlier ``continue`` saved in the old run
(``replay.safetensors``, ``ewc.safetensors``), or stop with an error that says so.

Example:
    >>> run = continue_run("runs/digits-0-8", "digits-9.csv", strategy="replay")
    >>> json.loads((run.dir / "continual.json").read_text())["old_test_accuracy"]
    {'before': 0.9835, 'after': 0.9794, 'change': -0.0041}
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from trainwright.cache import cache_dir
from trainwright.compute import estimate_training
from trainwright.config import Config
from trainwright.configure import load_config
from trainwright.continual.buffer import ReplayBuffer
from trainwright.continual.loop import strategy_step
from trainwright.continual.measures import summary
from trainwright.continual.scenarios import Scenario, Task, extend_classes
from trainwright.continual.strategies import EWC, Replay, Strategy, build_strategy, narrow_to_binary, widen_head
from trainwright.continual.task_data import TaskData
from trainwright.data.new_rows import read_new_rows
from trainwright.data.prepare import load_preprocessor, prepare_data
from trainwright.data.split import Split, split_rows
from trainwright.data.target import encode_labels
from trainwright.errors import TrainwrightError
from trainwright.evaluate.metrics import predict_outputs
from trainwright.predict import load
from trainwright.recipes.continual import task_validate
from trainwright.recipes.finish import Run, finish_supervised
from trainwright.recipes.setup import build_fit, model_facts, resolve_device, start_run
from trainwright.recipes.supervised import fit_or_diagnose
from trainwright.rundir import RunDir, unique_name
from trainwright.training.precision import check_precision

CONTINUAL = "continual.json"
REPLAY = "replay.safetensors"  # the buffer a replay update leaves, for the next update without the old data
EWC_FILE = "ewc.safetensors"  # the summed Fisher information an EWC update leaves, likewise
# data.json keys that identify a run's own data (kept under "continued.base" once a run is continued).
FINGERPRINT = ("source", "target", "rows", "split", "class_balance")
Parts = list[tuple[torch.Tensor, torch.Tensor]]  # [(x, y) of train, val, test]


def continue_run(old_dir: str | Path, new_data: str | Path, *, strategy: str | None = None,
                 overrides: list[str] | tuple[str, ...] = (), runs_dir: str | Path = "runs", name: str | None = None,
                 console: Console | None = None) -> Run:
    """Update the run in ``old_dir`` on the labelled rows of ``new_data``; returns the new run."""
    console = console or Console()
    # ① The old run, its data, and the new rows through its preprocessing.
    old_run = RunDir.open(old_dir)
    if (old_run.path / CONTINUAL).is_file() and old_run.read_json(old_run.path / CONTINUAL).get("command") == "continual":
        raise TrainwrightError(f"{old_run.path} was made by `trainwright continual` to measure a task sequence; continue a run "
                               "made by `trainwright train` (or by an earlier `trainwright continue`)")
    cfg = update_config(load_config(old_run.config), strategy, overrides)
    pre = load_preprocessor(old_run.path)
    if pre.task == "regression":
        raise TrainwrightError(f"{old_run.path} does regression; continue updates classifiers (new classes, new rows of "
                               "old ones): train a new run on all the data")
    old_summary = old_run.read_json(old_run.data)
    new = read_new_rows(pre, str(new_data), cfg.data, old_columns=list(old_summary.get("columns") or []) or None)
    earlier = (old_summary.get("continued") or {}).get("sources", [])  # sources that earlier updates added
    old_parts, unavailable = old_splits(cfg, pre, old_summary, earlier)
    old = load(old_run.path, calibrated=False)  # the old weights, in the model the old config builds
    classes = extend_classes(old.classes, new.labels)
    y_new = torch.from_numpy(encode_labels(new.labels, classes, pre.target))
    split = split_rows(len(y_new), new.labels, cfg.data.split)
    new_parts = [(new.x[rows], y_new[rows]) for rows in (split.train, split.val, split.test)]
    added = classes[len(old.classes):]
    print_data(console, old_run, old.classes, old_parts, unavailable, new, added, split, cfg)
    if old_parts is None:
        old_parts = [(new.x[:0], y_new[:0])] * 3  # no rows: the old task is known by its classes only
    device = resolve_device(cfg.train.device)
    check_precision(device, cfg.train.precision)
    old_task = Task(0, *[t.to(device) for part in old_parts for t in part], classes=torch.arange(len(old.classes)))
    new_task = Task(1, *[t.to(device) for part in new_parts for t in part])
    scenario = Scenario([old_task, new_task], "class_incremental", class_names=classes)

    # ② The model: the old weights; the strategy keeps what it needs of the old task, then the head widens.
    learner = build_strategy(cfg.continual, seed=cfg.train.seed)
    module = old.module.to(device)
    binary = old.task == "binary"
    if binary:  # one logit z -> two logits [0, z]: the same probabilities, and a softmax head to widen
        module = widen_head(module, 2, from_binary=True)
    batch = cfg.evaluate.batch_size
    before = [accuracy(module, task.x_test, task.y_test, batch) for task in (old_task, new_task)]
    prime(learner, module, old_task, scenario, old_run, unavailable)
    torch.manual_seed(cfg.train.seed)  # the new head rows
    module = widen_head(module, len(classes))
    learner.begin_task(module, new_task, scenario)
    print_strategy(console, learner, old_parts, old_run, unavailable)

    # ③ The estimate and the run directory (nothing is written before the data and the strategy are known to be good).
    train_pre, final_pre = copy.copy(old.preprocessor), copy.copy(old.preprocessor)
    train_pre.classes = final_pre.classes = list(classes)
    train_pre.task = "multiclass"  # trained as softmax over every class, whatever the old run was
    final_pre.task = "binary" if binary and len(classes) == 2 else "multiclass"
    joint = learner.name == "joint"
    train_rows = [torch.cat([old_parts[0][i], new_parts[0][i]]) for i in (0, 1)] if joint else list(new_parts[0])
    shape = tuple(old_run.read_json(old_run.model_info)["input_shape"])
    together = [(torch.cat([o[0], n[0]]), torch.cat([o[1], n[1]])) for o, n in zip(old_parts, new_parts, strict=True)]
    # The rows the loop trains on; x_val (every validation row) feeds the estimate, the loop validates per task (④).
    train_data = TaskData(*train_rows, *together[1], *together[2], train_pre, "multiclass", new.source, split.held_out, {},
                          shape=shape)
    final_summary = updated_summary(old_run, old_summary, final_pre, together, new, split, added, earlier, unavailable)
    final_data = TaskData(*[t for part in together for t in part], final_pre, final_pre.task, old_summary.get("name", ""),
                          split.held_out or unavailable is None, final_summary, shape=shape)
    eager = cfg.model_copy(update={"train": cfg.train.model_copy(update={"compile": False})})  # its strategy steps: not compiled
    est = estimate_training(eager, train_data, module, device, peak_cache=cache_dir())
    console.print(est.summary(), highlight=False, soft_wrap=True)
    run_dir = start_run(cfg, final_data, module, device, runs_dir=runs_dir,
                        name=name or unique_name(runs_dir, f"{old_run.path.name}-{learner.name}"))

    # ④ The loop: the supervised loop with the strategy's step in place of the plain one, validated per task.
    fit = build_fit(cfg, module, train_data, device, run_dir, console)
    fit.step_loss = strategy_step(module, learner, scenario, torch.Generator(device=device).manual_seed(cfg.train.seed + 1))
    fit.validate = task_validate(scenario, [j for j, t in enumerate(scenario.tasks) if len(t.y_val)], batch)
    seconds = fit_or_diagnose(fit, run_dir, console)
    if fit.stop_reason:
        console.print(fit.stop_reason, highlight=False)
    learner.end_task(module, new_task, scenario)  # replay: the buffer takes its share of the new rows; EWC: their Fisher
    after = [accuracy(module, task.x_test, task.y_test, batch) for task in (old_task, new_task)]
    if final_pre.task == "binary":  # back to one logit: a binary run's head, exactly the same probabilities
        module = narrow_to_binary(module)
        run_dir.write_json(run_dir.model_info, model_facts(cfg, final_data, module))
    save_strategy_state(run_dir, learner, binary=final_pre.task == "binary")

    # ⑤ Old and new test accuracy before and after, then the usual finish on the old and new splits together.
    result = {
        "command": "continue",
        "strategy": learner.name,
        "scenario": "class_incremental",
        "old_run": str(old_run.path),
        "new_data": new.source,
        "old_data": "available" if unavailable is None else unavailable,
        "tasks": [task_facts(f"{cfg.data.source} (the old run's data)", old.classes, old_parts),
                  task_facts(new.source, [c for c in classes if c in set(new.labels.tolist())], new_parts)],
        "new_classes": added,
        **summary([before, after]),
        "old_test_accuracy": change(before[0], after[0]),
        "new_test_accuracy": change(before[1], after[1]),
        **strategy_facts(learner, len(old_parts[0][1])),
    }
    run_dir.write_json(run_dir.path / CONTINUAL, result)
    print_update(console, result)
    return finish_supervised(run_dir, cfg, final_data, module, device, fit, est, seconds, console)


def update_config(old: Config, strategy: str | None, overrides: list[str] | tuple[str, ...]) -> Config:
    """The old run's config with the update's settings: ``--strategy``, ``--set train.*``, ``continual.*``, ``evaluate.*``.

    The data and model sections stay the old run's (its preprocessing and weights); classical
    baselines are off (fitted on new rows alone they would say nothing); a backbone is not loaded
    again (the weights are the old run's).
    """
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key.split(".")[0] in ("data", "model"):
            raise TrainwrightError(f"--set {key}: continue keeps the old run's data and model settings (its preprocessing and "
                                   "weights); the new data come with --data, and a new model needs `trainwright train`")
    raw = old.to_dict()
    raw["model"] = {**raw["model"], "backbone": None}
    raw["train"] = {**raw["train"], "unfreeze_at_epoch": None, "loss": "auto"}  # softmax over the classes while updating
    raw["evaluate"] = {**raw["evaluate"], "baseline": False}
    raw["continual"] = {**(raw.get("continual") or {}), **({"strategy": strategy} if strategy is not None else {})}
    cfg = load_config(raw, overrides)
    if cfg.continual.scenario != "class_incremental":
        raise TrainwrightError("continue updates a model that predicts without being told the task: continual.scenario must be "
                               "class_incremental (task_incremental is for measuring, with `trainwright continual`)")
    if cfg.continual.then is not None or cfg.continual.split.tasks is not None:
        raise TrainwrightError("continual.then and continual.split make the tasks of `trainwright continual`; continue learns "
                               "the one data set of --data: remove them")
    return cfg


def old_splits(cfg: Config, pre, old_summary: dict, earlier: list[dict]) -> tuple[Parts | None, str | None]:
    """The old run's (x, y) of train, val and test, made again from its config; (None, why) when that cannot be done.

    The data must be the same as when the run was trained (its data.json says what they were); a
    run that was itself continued adds the rows of each earlier update, split as that update split them.
    """
    source = cfg.data.source
    try:
        data = prepare_data(cfg.data)
    except TrainwrightError as error:
        return None, f"its data {source} cannot be read ({error})"
    base = (old_summary.get("continued") or {}).get("base") or old_summary
    fingerprint = json.loads(json.dumps({key: data.summary.get(key) for key in FINGERPRINT}))
    if fingerprint != {key: base.get(key) for key in FINGERPRINT}:
        return None, f"its data {source} differ from when it was trained (see its data.json)"
    parts = [(data.x_train, data.y_train), (data.x_val, data.y_val), (data.x_test, data.y_test)]
    for record in earlier:
        try:
            rows = read_new_rows(pre, record["source"], cfg.data)
        except TrainwrightError as error:
            return None, f"the data of an earlier update, {record['source']}, cannot be read ({error})"
        y = torch.from_numpy(encode_labels(rows.labels, pre.classes, pre.target))
        split = split_rows(len(y), rows.labels, cfg.data.split)
        if [len(split.train), len(split.val), len(split.test)] != [record["train"], record["val"], record["test"]]:
            return None, f"the data of an earlier update, {record['source']}, differ from when it was learned"
        parts = [(torch.cat([x, rows.x[s]]), torch.cat([t, y[s]])) for (x, t), s in zip(parts, (split.train, split.val,
                                                                                               split.test), strict=True)]
    return parts, None


def prime(learner: Strategy, module: nn.Module, old_task: Task, scenario: Scenario, old_run: RunDir,
          unavailable: str | None) -> None:
    """Let the strategy keep what it needs of the old task, before the head widens (EWC's Fisher must not see new rows).

    With the old data: the strategy's own ``end_task`` on the old task. Without: replay and EWC read
    what an earlier update saved in the old run, or the update stops here, before anything is written.
    """
    if unavailable is None or learner.name in ("naive", "lwf"):
        learner.end_task(module, old_task, scenario)  # LwF copies the old model; naive keeps nothing
        if isinstance(learner, Replay):
            learner.buffer.to(old_task.x_train.device)
        return
    fix = f"put the data back (see {old_run.path}/data.json), or use --strategy lwf (it needs only the new data) or naive"
    if learner.name == "joint":
        raise TrainwrightError(f"joint trains on the old and new rows together, but {old_run.path} has no old rows here: "
                               f"{unavailable}; {fix}")
    saved = old_run.path / (REPLAY if learner.name == "replay" else EWC_FILE)
    if not saved.is_file():
        what = "old training rows to replay" if learner.name == "replay" else "the old data's statistics (its Fisher information)"
        raise TrainwrightError(f"{learner.name} needs {what}, and {old_run.path} has neither the old data ({unavailable}) "
                               f"nor a saved {saved.name}; {fix}")
    if isinstance(learner, Replay):
        buffer = ReplayBuffer.load(saved)
        buffer.size, buffer.share = learner.buffer.size, learner.buffer.share  # this update's settings from now on
        learner.buffer = buffer.to(old_task.x_train.device)
    elif isinstance(learner, EWC):
        learner.fisher = load_fisher(saved, module)
        learner.anchor = {name: p.detach().clone() for name, p in module.named_parameters() if name in learner.fisher}


def load_fisher(path: Path, module: nn.Module) -> dict[str, torch.Tensor]:
    """The summed Fisher information an EWC update saved; it must fit the model's parameters."""
    try:
        fisher = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise TrainwrightError(f"{path} is not readable ({error}); delete it and continue with the old data at hand") from None
    params = dict(module.named_parameters())
    if {k: tuple(v.shape) for k, v in fisher.items()} != {k: tuple(params[k].shape) for k in fisher if k in params}:
        raise TrainwrightError(f"{path} does not fit the model of its run; delete it and continue with the old data at hand")
    device = next(module.parameters()).device
    return {name: f.to(device) for name, f in fisher.items()}


def save_strategy_state(run_dir: RunDir, learner: Strategy, *, binary: bool) -> None:
    """What the next update needs when the old data are gone: the replay buffer, or EWC's summed Fisher."""
    if isinstance(learner, Replay) and len(learner.buffer):
        run_dir.write_tensors(REPLAY, *learner.buffer.state())
    elif isinstance(learner, EWC) and learner.fisher and not binary:  # a binary head goes back to one logit: no longer fits
        run_dir.write_tensors(EWC_FILE, {k: v.detach().cpu().contiguous() for k, v in learner.fisher.items()},
                              {"strength": str(learner.strength)})


def accuracy(module: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    """Share of rows whose largest logit is their class (over every class of the head); NaN for no rows."""
    if not len(y):
        return math.nan
    return float((predict_outputs(module, x, batch_size).argmax(1) == y).float().mean())


def change(before: float, after: float) -> dict:
    return {"before": before, "after": after, "change": after - before}


def task_facts(name: str, classes: list, parts: Parts) -> dict:
    return {"name": name, "classes": list(classes), **{part: len(p[1]) for part, p in zip(("train", "val", "test"), parts,
                                                                                             strict=True)}}


def strategy_facts(learner: Strategy, old_rows: int) -> dict:
    if isinstance(learner, Replay):
        return {"replay": {"rows": len(learner.buffer), "old_rows": old_rows, "file": REPLAY}}
    if isinstance(learner, EWC):
        return {"ewc": {"strength": learner.strength, "file": EWC_FILE}}
    return {}


def updated_summary(old_run: RunDir, old: dict, pre, together: Parts, new, split: Split, added: list, earlier: list[dict],
                    unavailable: str | None) -> dict:
    """data.json of the updated run: the old run's, with the classes, the balance and the split of old and new rows together."""
    labels = [str(c) for c in pre.classes]
    balance = {part: dict(zip(labels, torch.bincount(y, minlength=len(labels)).tolist(), strict=True))
               for part, (_, y) in zip(("train", "val", "test"), together, strict=True)}
    balance = {"all": {label: sum(balance[p][label] for p in balance) for label in labels}, **balance}
    record = {"source": new.source, "rows": len(new.labels), "train": len(split.train), "val": len(split.val),
              "test": len(split.test)}
    base = (old.get("continued") or {}).get("base") or {key: old.get(key) for key in FINGERPRINT}
    note = (f"continued from {old_run.path} with {len(new.labels)} rows of {new.source}"
            + (f" (new class{'es' if len(added) > 1 else ''}: {', '.join(map(str, added))})" if added else "")
            + ("" if unavailable is None else f"; the old run's data were not at hand ({unavailable}): the splits hold the new "
               "rows only"))
    return {
        **old,
        "task": pre.task,
        "classes": pre.classes,
        "class_balance": balance,
        "split": {**(old.get("split") or {}), "held_out": True,
                  **{part: len(y) for part, (_, y) in zip(("train", "val", "test"), together, strict=True)}},
        "notes": [*old.get("notes", []), note],
        "continued": {"from": str(old_run.path), "base": base, "sources": [*earlier, record]},
    }


# ── console ─────────────────────────────────────────────────────────────────────────────
def print_data(console: Console, old_run: RunDir, classes: list, old_parts: Parts | None, unavailable: str | None, new,
               added: list, split: Split, cfg: Config) -> None:
    shown = ", ".join(map(str, classes[:10])) + (", ..." if len(classes) > 10 else "")
    console.print(f"old run {old_run.path}: {len(classes)} classes ({shown})", highlight=False, soft_wrap=True)
    if old_parts is None:
        console.print(f"old data: not at hand, {unavailable}; the old test split cannot be scored", highlight=False,
                      soft_wrap=True)
    else:
        sizes = ", ".join(f"{part} {len(y)}" for part, (_, y) in zip(("train", "val", "test"), old_parts, strict=True))
        console.print(f"old data {cfg.data.source}: made again from the old run's config: {sizes} rows", highlight=False,
                      soft_wrap=True)
    console.print(new.line(), highlight=False, soft_wrap=True)
    what = (f"{len(added)} new class{'es' if len(added) > 1 else ''}: {', '.join(map(str, added[:10]))}" if added
            else "no new class")
    console.print(f"{what}; split of the new rows as the old run's ({'stratified' if split.stratified else 'shuffled'}, seed "
                  f"{cfg.data.split.seed}): train {len(split.train)}, val {len(split.val)}, test {len(split.test)}"
                  + ("" if split.held_out else " (too few to hold rows out: validation and test are the training rows)"),
                  highlight=False, soft_wrap=True)


def print_strategy(console: Console, learner: Strategy, old_parts: Parts, old_run: RunDir, unavailable: str | None) -> None:
    line = {"naive": "naive: plain fine-tuning on the new rows (the reference for forgetting)",
            "lwf": "lwf: the old model's outputs on the new rows as soft targets",
            "joint": "joint: old and new training rows together (the upper bound)"}.get(learner.name, "")
    if isinstance(learner, Replay):
        old_rows = len(old_parts[0][1])
        source = f"of the {old_rows} old training rows" if unavailable is None else f"saved in {old_run.path / REPLAY}"
        share = f" ({len(learner.buffer) / old_rows:.1%})" if unavailable is None and old_rows else ""
        line = f"replay: {len(learner.buffer)} buffered rows {source}{share}, class-balanced, beside every batch of new rows"
    elif isinstance(learner, EWC):
        source = "the old training rows" if unavailable is None else f"{old_run.path / EWC_FILE}"
        line = f"ewc: the old task's Fisher information from {source}, strength {learner.strength:g}"
    console.print(f"strategy {line}", highlight=False, soft_wrap=True)


def print_update(console: Console, result: dict) -> None:
    """The accuracy matrix of the update and what it changed on the old and the new test split."""
    table = Table(title="accuracy on each test split (columns) before and after the update (rows)", title_justify="left")
    table.add_column("")
    for task in result["tasks"]:
        table.add_column(f"{task['name']} ({task['test']} rows)", justify="right")
    for label, row in zip(("old run", f"after {result['strategy']}"), result["matrix"], strict=True):
        table.add_row(label, *("-" if v is None else f"{v:.4f}" for v in row))
    console.print(table)

    def points(entry: dict) -> str:
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in entry.values()):
            return "not scored (no rows)"
        return f"{entry['before']:.4f} -> {entry['after']:.4f} ({100 * entry['change']:+.1f} points)"

    console.print(f"old test accuracy {points(result['old_test_accuracy'])}; new test accuracy "
                  f"{points(result['new_test_accuracy'])}", highlight=False, soft_wrap=True)
