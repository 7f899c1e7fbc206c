"""``train``: config -> data -> model -> fit -> evaluate -> run directory.

Each stage reads what the previous one produced and writes its own files into the run
directory, so a run can be resumed, inspected and predicted from later.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from trainwright.config import Config, load_config
from trainwright.data.batches import TensorBatches
from trainwright.data.prepare import Prepared, prepare_data, with_input_stage
from trainwright.errors import TrainwrightError
from trainwright.evaluate.metrics import predict_outputs
from trainwright.files import atomic_write
from trainwright.models.custom import CustomConfig
from trainwright.models.registry import build_model
from trainwright.runs import RunDir, TrainedModel, default_run_name, environment, load, save_weights, score, unique_name
from trainwright.training.callbacks import Checkpoint, EarlyStopping, HistoryCSV, ProgressBar
from trainwright.training.checkpoint import load_state
from trainwright.training.loop import Fit, fit
from trainwright.training.losses import build_loss, resolve_loss
from trainwright.training.optim import Schedule, build_optimizer


@dataclass
class Run:
    """The result of ``train``: where it was written and what it measured."""

    dir: Path
    config: Config
    metrics: dict
    history: list[dict]

    def load(self, model: nn.Module | None = None) -> TrainedModel:
        return load(self.dir, model=model)


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
    ``model=`` trains your own ``nn.Module`` (inputs (B, features) -> outputs (B, classes or 1); for
    images, normalized float (B, C, H, W): the run puts its normalizing input stage in front).
    ``resume=`` continues an interrupted run from its last checkpoint (``overrides`` may extend
    ``train.epochs``).
    """
    console = console or Console()
    run_dir = RunDir.open(resume) if resume is not None else None
    if run_dir is not None:
        cfg = load_config(run_dir.config, overrides)
    elif config is None:
        raise TrainwrightError("no config: pass a YAML file, a dict or a Config (or --data for quick mode)")
    else:
        cfg = load_config(config, overrides)
    if model is not None:
        cfg = cfg.model_copy(update={"model": CustomConfig(class_name=type(model).__qualname__)})

    # ① Data: load, clean, split, fit preprocessing on the training split.
    data = prepare_data(cfg.data)
    for line in data.report_lines():
        console.print(line, highlight=False, soft_wrap=True)
    device = resolve_device(cfg.train.device)

    # ② Model: seeded, so the same config gives the same initial weights.
    torch.manual_seed(cfg.train.seed)
    pre = data.preprocessor
    module = model if model is not None else build_model(cfg.model, data.input_shape, pre.n_outputs)
    module = with_input_stage(pre, module)  # images: uint8 pixels are normalized inside the model
    check_output_shape(module, data.input_shape, pre.n_outputs)
    check_train_settings(cfg, module, data.task)
    module = module.to(device)
    n_params = sum(p.numel() for p in module.parameters())
    console.print(f"model: {cfg.model.type}, {n_params:,} parameters, input {shape_text(data.input_shape)} -> {pre.n_outputs} outputs, device {device}", highlight=False)

    # The run directory is created only once the data and model are known to be good.
    if run_dir is None:
        name = name or unique_name(runs_dir, default_run_name(data.name, cfg.model.type))
        run_dir = RunDir.create(runs_dir, name)
        atomic_write(run_dir.config, cfg.to_yaml())
        run_dir.write_json(run_dir.environment, environment(device, cfg.train.seed))
        run_dir.write_json(run_dir.data, data.summary)
        pre.save(run_dir.path)
    else:
        check_same_data(run_dir, data)

    # ③ Fit.
    run = build_fit(cfg, module, data, device, run_dir, console)
    previous_seconds = 0.0
    if resume is not None:
        run.load_state_dict(load_state(run_dir.checkpoint))
        previous_seconds = sum(row["seconds"] for row in run.history)
        if run.epoch >= cfg.train.epochs:
            raise TrainwrightError(f"{run_dir.path} already trained {run.epoch} epochs; to train longer pass --set train.epochs=N with N > {run.epoch}")
        console.print(f"resuming {run_dir.path} after epoch {run.epoch}", highlight=False)
    started = time.perf_counter()
    fit(run)
    seconds = previous_seconds + time.perf_counter() - started
    if run.stop_reason:
        console.print(run.stop_reason, highlight=False)

    # ④ Evaluate the restored best weights on the untouched test split.
    stopper = next(cb for cb in run.callbacks if isinstance(cb, EarlyStopping))
    test_outputs = outputs_for(module, data.x_test, device, cfg)
    metrics = {
        "task": data.task,
        "test": score(test_outputs, data.y_test, pre),
        "val": score(outputs_for(module, data.x_val, device, cfg), data.y_val, pre),
        "held_out": data.held_out,
        "best_epoch": stopper.best_epoch,
        "epochs": run.epoch,
        "train_seconds": seconds,
        "stopped_early": run.stop_reason,
    }
    for split in ("test", "val"):
        matrix = metrics[split].pop("confusion_matrix", None)
        if split == "test" and matrix is not None:
            metrics["confusion_matrix"] = {"labels": pre.classes, "matrix": matrix}
    save_weights(run_dir.weights, module)
    run_dir.write_json(run_dir.model_info, {"type": cfg.model.type, "input_shape": list(data.input_shape), "out_features": pre.n_outputs, "parameters": n_params})
    run_dir.write_json(run_dir.metrics, metrics)
    data.save_evaluation(run_dir.path, test_outputs)  # images: misclassified.png
    print_metrics(console, metrics)
    return Run(run_dir.path, cfg, metrics, run.history)


def build_fit(cfg: Config, module: nn.Module, data: Prepared, device: torch.device, run_dir: RunDir, console: Console) -> Fit:
    """Everything the loop needs: batches on the device, loss, optimizer, schedule, callbacks."""
    tc = cfg.train
    loss_fn = build_loss(resolve_loss(data.task, tc.loss))
    batches = TensorBatches(data.x_train.to(device), data.y_train.to(device), tc.batch_size, drop_singleton=has_batch_norm(module),
                            transform=data.train_transform)  # image augmentation, training batches only
    optimizer = build_optimizer(tc.optimizer, module.parameters())
    schedule = Schedule(tc.schedule, optimizer, tc.epochs, len(batches))
    callbacks = [
        EarlyStopping(tc.early_stopping),
        HistoryCSV(run_dir.history),
        Checkpoint(run_dir.checkpoint),
        ProgressBar(console, tc.epochs, len(batches), tc.early_stopping.monitor),
    ]
    generator = torch.Generator(device=device).manual_seed(tc.seed)
    validate = make_validate(loss_fn, data.x_val.to(device), data.y_val.to(device), data.task, cfg.evaluate.batch_size)
    return Fit(module, optimizer, schedule, loss_fn, batches, validate, tc, generator, callbacks)


def check_train_settings(cfg: Config, module: nn.Module, task: str) -> None:
    """Settings that depend on the task or the model, checked before anything is written."""
    tc = cfg.train
    resolve_loss(task, tc.loss)
    if has_batch_norm(module) and tc.batch_size == 1:
        raise TrainwrightError("batch norm needs at least 2 samples per batch; set train.batch_size >= 2 or model.batch_norm: false")
    monitors = {"train_loss", "val_loss", "val_r2" if task == "regression" else "val_accuracy"}
    if tc.early_stopping.monitor not in monitors:
        raise TrainwrightError(f"train.early_stopping.monitor = {tc.early_stopping.monitor!r} is not logged; use one of: {', '.join(sorted(monitors))}")


def has_batch_norm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def make_validate(loss_fn, x_val: torch.Tensor, y_val: torch.Tensor, task: str, batch_size: int):
    """Per-epoch validation: the loss plus one cheap metric (accuracy, or R² for regression)."""

    def validate(model: nn.Module) -> dict[str, float]:
        out = predict_outputs(model, x_val, batch_size)
        logs = {"val_loss": loss_fn(out, y_val)}
        if task == "regression":
            residual = (out - y_val).pow(2).sum()
            logs["val_r2"] = 1 - residual / (y_val - y_val.mean()).pow(2).sum().clamp_min(1e-12)
        elif task == "binary":
            logs["val_accuracy"] = ((out.squeeze(1) > 0).long() == y_val).float().mean()
        else:
            logs["val_accuracy"] = (out.argmax(1) == y_val).float().mean()
        return {k: float(v) for k, v in logs.items()}

    return validate


def outputs_for(module: nn.Module, x: torch.Tensor, device: torch.device, cfg: Config) -> torch.Tensor:
    return predict_outputs(module, x.to(device), cfg.evaluate.batch_size).float().cpu()


def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an unavailable device is a clear error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainwrightError(f"train.device = {name!r} but no CUDA device is available here; use auto or cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise TrainwrightError("train.device = 'mps' but MPS is not available here; use auto or cpu")
    return torch.device(name)


def check_output_shape(module: nn.Module, input_shape: tuple[int, ...], n_outputs: int) -> None:
    """A user's module must map (B, *input_shape) to (B, outputs); say so before training starts."""
    batch = (2, *input_shape)
    module.eval()
    try:
        with torch.no_grad():
            out = module(torch.zeros(batch))
    except Exception as error:  # noqa: BLE001 - the user's own code: report it in one line
        raise TrainwrightError(f"the model fails on a batch of shape {batch}: {type(error).__name__}: {error}") from None
    if tuple(out.shape) != (2, n_outputs):
        raise TrainwrightError(f"the model maps a batch {batch} to {tuple(out.shape)}; this task needs (2, {n_outputs})")


def shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) if len(shape) > 1 else f"{shape[0]} features"


def check_same_data(run_dir: RunDir, data: Prepared) -> None:
    if run_dir.read_json(run_dir.data) != json.loads(json.dumps(data.summary)):
        raise TrainwrightError(f"the data differ from when {run_dir.path} started (see its data.json); resume needs the same data")


def print_metrics(console: Console, metrics: dict) -> None:
    where = "test split" if metrics["held_out"] else "training rows (the set was too small to hold any out)"
    table = Table(title=f"metrics on the {where}", title_justify="left")
    table.add_column("metric")
    table.add_column("test", justify="right")
    table.add_column("val", justify="right")
    for key, value in metrics["test"].items():
        val = metrics["val"].get(key)
        table.add_row(key, _fmt(value), _fmt(val))
    console.print(table)
    console.print(f"best epoch {metrics['best_epoch']} of {metrics['epochs']}, {metrics['train_seconds']:.2f} s training", highlight=False)


def _fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"
