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

import pandas as pd
import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from trainwright import transfer
from trainwright.calibrate import calibrate_outputs
from trainwright.compute import Estimate, compute_metrics, compute_summary, estimate_training
from trainwright.compute.peak import NOMINAL, nominal_gpu
from trainwright.config import Config, load_config
from trainwright.data.batches import make_batches
from trainwright.data.prepare import Prepared, prepare_data, with_input_stage
from trainwright.errors import TrainingDiverged, TrainwrightError
from trainwright.evaluate.baselines import fit_baselines, verdict
from trainwright.evaluate.diagnose import diagnose_run, print_findings
from trainwright.evaluate.metrics import predict_outputs
from trainwright.files import atomic_write
from trainwright.models.custom import CustomConfig
from trainwright.models.registry import build_model
from trainwright.models.summary import layer_summary
from trainwright.report import write_report
from trainwright.runs import RunDir, TrainedModel, default_run_name, environment, load, save_weights, score, unique_name
from trainwright.training.callbacks import Checkpoint, EarlyStopping, GradientStats, HistoryCSV, ProgressBar
from trainwright.training.checkpoint import load_state
from trainwright.training.compiled import compile_forward
from trainwright.training.loop import Fit, fit
from trainwright.training.losses import LossFn, build_loss, probabilities, resolve_loss
from trainwright.training.optim import Schedule, build_optimizer
from trainwright.training.precision import check_precision, grad_scaler


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
    # ② Model: seeded, so the same config gives the same initial weights.
    module = build_module(cfg, data, model)
    return train_prepared(cfg, data, module, runs_dir=runs_dir, name=name, resume=run_dir, console=console)


def train_prepared(
    cfg: Config,
    data: Prepared,
    module: nn.Module,
    *,
    runs_dir: str | Path = "runs",
    name: str | None = None,
    resume: RunDir | None = None,
    console: Console | None = None,
    loss_fn: LossFn | None = None,
    train_targets: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
) -> Run:
    """Stages ③-⑤ on prepared data and a built model: fit, evaluate, diagnose, report.

    Other recipes reuse it with their own loss: distillation passes ``loss_fn`` and
    ``train_targets`` = (labels, teacher outputs), which travel through the same shuffled batches.
    """
    console = console or Console()
    run_dir = resume
    device = resolve_device(cfg.train.device)
    pre = data.preprocessor
    check_precision(device, cfg.train.precision)
    module = module.to(device)
    n_params = sum(p.numel() for p in module.parameters())
    console.print(f"model: {cfg.model.type}, {n_params:,} parameters, input {shape_text(data.input_shape, getattr(pre, 'modality', ''))} -> {pre.n_outputs} outputs, device {device}", highlight=False)
    backbone = transfer.describe(cfg.model.backbone, module) if cfg.model.backbone is not None else None
    if backbone is not None:
        console.print(transfer.summary_line(backbone, cfg.train), highlight=False, soft_wrap=True)
    # A few timed steps on a throwaway copy (the model and the RNG streams are left as they were).
    est = estimate_training(cfg, data, module, device)
    console.print(est.summary(), highlight=False, soft_wrap=True)

    # The run directory is created only once the data and model are known to be good.
    if run_dir is None:
        name = name or unique_name(runs_dir, default_run_name(data.name, cfg.model.type))
        run_dir = RunDir.create(runs_dir, name)
        atomic_write(run_dir.config, cfg.to_yaml())
        run_dir.write_json(run_dir.environment, environment(device, cfg.train.seed))
        run_dir.write_json(run_dir.data, data.summary)
        pre.save(run_dir.path)
        run_dir.write_json(run_dir.model_info, {
            "type": cfg.model.type, "input_shape": list(data.input_shape), "out_features": pre.n_outputs, "parameters": n_params,
            **layer_summary(module, data.input_shape), **({"backbone": backbone} if backbone is not None else {}),
        })
    else:
        check_same_data(run_dir, data)

    # ③ Fit.
    run = build_fit(cfg, module, data, device, run_dir, console, loss_fn, train_targets)
    if cfg.train.compile:
        compile_forward(module)  # in place: state_dict keys stay the same, so weights and checkpoints load without it
    previous_seconds = 0.0
    if resume is not None:
        run.load_state_dict(load_state(run_dir.checkpoint))
        previous_seconds = sum(row["seconds"] for row in run.history)
        if run.epoch >= cfg.train.epochs:
            raise TrainwrightError(f"{run_dir.path} already trained {run.epoch} epochs; to train longer pass --set train.epochs=N with N > {run.epoch}")
        console.print(f"resuming {run_dir.path} after epoch {run.epoch}", highlight=False)
    started = time.perf_counter()
    try:
        fit(run)
    except TrainingDiverged as error:
        # The run failed, but its history and gradient norms show why: diagnose and report it.
        finish_failed_run(run_dir, {"epoch": error.epoch, "loss": error.loss, "lr": run.optimizer.param_groups[0]["lr"]}, console)
        raise
    seconds = previous_seconds + time.perf_counter() - started
    if run.stop_reason:
        console.print(run.stop_reason, highlight=False)

    # ④ Evaluate the restored best weights on the untouched test split.
    stopper = next(cb for cb in run.callbacks if isinstance(cb, EarlyStopping))
    val_outputs, test_outputs = outputs_for(module, data.x_val, device, cfg), outputs_for(module, data.x_test, device, cfg)
    metrics = {
        "task": data.task,
        "test": score(test_outputs, data.y_test, pre),
        "val": score(val_outputs, data.y_val, pre),
        "train": score(outputs_for(module, data.x_train, device, cfg), data.y_train, pre),
        "held_out": data.held_out,
        "best_epoch": stopper.best_epoch,
        "epochs": run.epoch,
        "train_seconds": seconds,
        "stopped_early": run.stop_reason,
        "compute": compute_metrics(est, seconds, run.epoch),
    }
    for split in ("test", "val", "train"):
        matrix = metrics[split].pop("confusion_matrix", None)
        if split == "test" and matrix is not None:
            metrics["confusion_matrix"] = {"labels": pre.classes, "matrix": matrix}
    if cfg.evaluate.baseline and (hasattr(pre, "feature_columns") or getattr(pre, "modality", "") in ("text", "series")):
        metrics["baselines"] = fit_baselines(data)  # tables: classical models; text: TF-IDF; series: naive forecasts
    save_weights(run_dir.weights, module)
    write_test_predictions(run_dir, test_outputs, data)
    run_dir.write_json(run_dir.metrics, metrics)
    data.save_evaluation(run_dir.path, test_outputs)  # images: misclassified.png
    print_metrics(console, metrics)
    console.print(compute_summary(metrics["compute"], run.epoch), highlight=False, soft_wrap=True)

    # ⑤ Optionally calibrate the probabilities (fitted on validation, judged on test).
    if cfg.calibrate is not None:
        result = calibrate_outputs(run_dir.path, cfg.calibrate.method, data.task, (val_outputs, data.y_val), (test_outputs, data.y_test))
        print_calibration(console, result)

    # ⑥ Diagnose the training and write the report, both from the run directory alone.
    findings = diagnose_run(run_dir.path)
    run_dir.write_json(run_dir.diagnosis, {"findings": findings})
    print_findings(console, findings)
    console.print(f"report: {write_report(run_dir.path)}", highlight=False, soft_wrap=True)
    return Run(run_dir.path, cfg, metrics, run.history)


def finish_failed_run(run_dir: RunDir, diverged: dict, console: Console) -> None:
    """After a NaN loss: write and print the diagnosis, and the report of what did happen."""
    findings = diagnose_run(run_dir.path, diverged=diverged)
    run_dir.write_json(run_dir.diagnosis, {"findings": findings})
    print_findings(console, findings)
    console.print(f"report: {write_report(run_dir.path)}", highlight=False, soft_wrap=True)


def write_test_predictions(run_dir: RunDir, outputs: torch.Tensor, data: Prepared) -> None:
    """The test rows' true values, predictions and class probabilities (original units and labels),
    so the report draws ROC curves or residuals from the run directory alone."""
    pre = data.preprocessor
    frame = pd.DataFrame({"actual": pre.decode_target(data.y_test.numpy())})
    if data.task == "regression":
        frame["predicted"] = pre.decode_target(outputs.numpy())
    else:
        probs = probabilities(outputs, data.task).numpy()  # (N, C)
        frame["predicted"] = pre.decode_target(probs.argmax(1))
        for i in range(probs.shape[1]):
            frame[f"p{i}"] = probs[:, i]  # column i is class pre.classes[i] (labels may be any text)
    atomic_write(run_dir.predictions, frame.to_csv(index=False))



def estimate(
    config: str | Path | dict | Config,
    *,
    model: nn.Module | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    device: str | None = None,
    console: Console | None = None,
) -> Estimate:
    """How long ``config`` will train and how much memory it needs, without training it or writing anything.

    Example:
        >>> est = estimate("examples/digits.yaml", device="H100")
        >>> est.total_seconds, est.flops_per_step, est.memory.total
    ``device``: None (the config's ``train.device``), ``cpu``, ``cuda[:N]`` or ``mps`` (measured here), or a
    GPU name from the nominal table (``H100``, ``A100``, ``L4``, ...: its datasheet peak, efficiency assumed).
    """
    console = console or Console()
    cfg = load_config(config, overrides)
    if model is not None:
        cfg = cfg.model_copy(update={"model": CustomConfig(class_name=type(model).__qualname__)})
    target = resolve_target(device or cfg.train.device)
    data = prepare_data(cfg.data)
    for line in data.report_lines():
        console.print(line, highlight=False, soft_wrap=True)
    module = build_module(cfg, data, model)
    if isinstance(target, torch.device):
        check_precision(target, cfg.train.precision)
    return estimate_training(cfg, data, module, target)


def build_module(cfg: Config, data: Prepared, model: nn.Module | None = None) -> nn.Module:
    """The model for this data, seeded so the same config gives the same initial weights, and checked."""
    torch.manual_seed(cfg.train.seed)
    pre = data.preprocessor
    backbone = transfer.read_backbone(cfg.model.backbone) if cfg.model.backbone is not None else None
    if backbone is not None:
        transfer.check_inputs(backbone, data)
        transfer.use_backbone_normalization(backbone, data)  # before the input stage is built from them
    module = model if model is not None else build_model(cfg.model, data.input_shape, pre.n_outputs, getattr(pre, "vocab_size", None))
    module = with_input_stage(pre, module)  # images: uint8 pixels are normalized inside the model
    check_output_shape(module, data.input_shape, pre.n_outputs)
    check_train_settings(cfg, module, data.task)
    if backbone is not None:
        transfer.start_from_backbone(module, cfg.model.backbone, backbone)  # all but the new head; then freeze
    return module


def resolve_target(name: str):
    """A device here (``torch.device``) or a GPU from the nominal table, for ``estimate``."""
    if name in ("auto", "cpu", "mps") or name.startswith("cuda"):
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise TrainwrightError(f"device {name!r}: no CUDA device is available here; name a GPU for its datasheet peak "
                                   f"({', '.join(NOMINAL)}) or use cpu")
        return resolve_device(name)
    gpu = nominal_gpu(name)
    if gpu is None:
        raise TrainwrightError(f"unknown device {name!r}; use cpu, cuda, mps or a GPU name: {', '.join(NOMINAL)}")
    return gpu


def build_fit(
    cfg: Config, module: nn.Module, data: Prepared, device: torch.device, run_dir: RunDir, console: Console,
    loss_fn: LossFn | None = None, train_targets: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
) -> Fit:
    """Everything the loop needs: batches on the device, loss, optimizer, schedule, callbacks."""
    tc = cfg.train
    task_loss = build_loss(resolve_loss(data.task, tc.loss))  # validation always scores the task's own loss
    targets = data.y_train if train_targets is None else train_targets
    batches = make_batches(data.x_train, targets, tc.batch_size, device, tc.data_placement, tc.loader_workers,
                           drop_singleton=has_batch_norm(module), transform=data.train_transform)  # augmentation: training batches only
    optimizer = build_optimizer(tc.optimizer, transfer.parameter_groups(module, cfg))  # backbone: its own lr
    schedule = Schedule(tc.schedule, optimizer, tc.epochs, math.ceil(len(batches) / tc.accumulate))  # optimizer steps per epoch
    callbacks = [
        *transfer.transfer_callbacks(cfg, module),  # first: a resumed run unfreezes before others look at the model
        EarlyStopping(tc.early_stopping),
        GradientStats(run_dir.gradients, cfg.evaluate.gradient_every),  # before Checkpoint, so a checkpoint holds this epoch's norms
        HistoryCSV(run_dir.history),
        Checkpoint(run_dir.checkpoint),
        ProgressBar(console, tc.epochs, len(batches), tc.early_stopping.monitor),
    ]
    generator = torch.Generator(device=device).manual_seed(tc.seed)
    validate = make_validate(task_loss, data.x_val.to(device), data.y_val.to(device), data.task, cfg.evaluate.batch_size)
    return Fit(module, optimizer, schedule, loss_fn or task_loss, batches, validate, tc, generator, callbacks, scaler=grad_scaler(device, tc.precision))


def check_train_settings(cfg: Config, module: nn.Module, task: str) -> None:
    """Settings that depend on the task or the model, checked before anything is written."""
    tc = cfg.train
    resolve_loss(task, tc.loss)
    if has_batch_norm(module) and tc.batch_size == 1:
        raise TrainwrightError("batch norm needs at least 2 samples per batch; set train.batch_size >= 2 or model.batch_norm: false")
    if cfg.calibrate is not None and task == "regression":
        raise TrainwrightError("calibrate applies to classifiers; this task is regression: remove the calibrate section")
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
    return predict_outputs(module, x, cfg.evaluate.batch_size, device).float().cpu()  # batch by batch: x may not fit on the device


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


def shape_text(shape: tuple[int, ...], modality: str = "") -> str:
    if modality == "text":
        return f"{shape[0]} tokens"
    return "x".join(map(str, shape)) if len(shape) > 1 else f"{shape[0]} features"


def check_same_data(run_dir: RunDir, data: Prepared, purpose: str = "resume") -> None:
    if run_dir.read_json(run_dir.data) != json.loads(json.dumps(data.summary)):
        raise TrainwrightError(f"the data differ from when {run_dir.path} was trained (see its data.json); {purpose} needs the same data")


def print_metrics(console: Console, metrics: dict) -> None:
    where = "test split" if metrics["held_out"] else "training rows (the set was too small to hold any out)"
    table = Table(title=f"metrics on the {where}", title_justify="left")
    table.add_column("metric")
    for split in ("test", "val", "train"):
        table.add_column(split, justify="right")
    for key, value in metrics["test"].items():
        table.add_row(key, _fmt(value), _fmt(metrics["val"].get(key)), _fmt(metrics.get("train", {}).get(key)))
    console.print(table)
    console.print(f"best epoch {metrics['best_epoch']} of {metrics['epochs']}, {metrics['train_seconds']:.2f} s training", highlight=False)
    baselines = metrics.get("baselines")
    if baselines:
        table = Table(title="the network beside classical baselines, same split (test)", title_justify="left")
        table.add_column("metric")
        for name in ("network", *baselines):
            table.add_column(name, justify="right")
        for key, value in metrics["test"].items():
            table.add_row(key, _fmt(value), *(_fmt(scores.get(key)) for scores in baselines.values()))
        console.print(table)
        console.print(verdict(metrics), highlight=False, soft_wrap=True)


def print_calibration(console: Console, result: dict) -> None:
    title = f"calibration ({result['method']}" + (f", T = {result['temperature']:.3f}" if "temperature" in result else "") + "), test split"
    table = Table(title=title, title_justify="left")
    for column in ("metric", "before", "after"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for key in result["before"]:
        table.add_row(key, _fmt(result["before"][key]), _fmt(result["after"][key]))
    console.print(table)


def _fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"
