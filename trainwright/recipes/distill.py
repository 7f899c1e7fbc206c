"""Knowledge distillation: a small student learns from a trained teacher's soft targets.

The loss (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network"):

    loss = alpha * T^2 * KL(p_teacher(T) || p_student(T)) + (1 - alpha) * CE(student, labels)

where p(T) = softmax(logits / T). The T^2 keeps the soft term's gradients on the same scale as
the hard term's when T changes. The teacher must describe the very inputs the student sees: when
training batches are augmented (images), it runs on each augmented batch, in inference mode;
otherwise its logits on the training split are computed once and travel with the labels through
the same shuffled batches, so it never runs per epoch.

This is its own recipe: the supervised loop with the distillation step in place of the plain one.
The result compares the teacher, the distilled student and the same student trained from scratch
on the labels alone with the same seed and budget, over one or more seeds.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.nn import functional as F

from trainwright.cache import cache_dir
from trainwright.compute import estimate_training
from trainwright.config import Config, DistillConfig
from trainwright.configure import deep_merge, load_config, read_yaml
from trainwright.data.batches import make_batches
from trainwright.data.prepare import Prepared, prepare_data
from trainwright.errors import TrainwrightError
from trainwright.evaluate.metrics import predict_outputs
from trainwright.models.summary import layer_summary
from trainwright.predict import load
from trainwright.recipes.finish import Run, finish_supervised
from trainwright.recipes.setup import (
    build_fit,
    build_module,
    check_same_data,
    has_batch_norm,
    model_line,
    resolve_device,
    start_run,
)
from trainwright.recipes.supervised import fit_or_diagnose, train_prepared
from trainwright.rundir import RunDir
from trainwright.tracking.mlflow import tracking_uri
from trainwright.training.compiled import compile_forward
from trainwright.training.distributed import Replicas
from trainwright.training.losses import build_loss, resolve_loss
from trainwright.training.precision import check_precision


def class_logits(outputs: torch.Tensor, task: str) -> torch.Tensor:
    """(B, C) logits whose softmax is the class distribution; binary's one logit z becomes [0, z]."""
    return torch.cat([torch.zeros_like(outputs), outputs], dim=1) if task == "binary" else outputs


def kd_loss(task: str, hard_loss, temperature: float, alpha: float):
    """A loss over (student outputs, (labels, teacher outputs)) for the supervised loop.

    ``hard_loss(outputs, y)`` is the task's loss; for blended inputs (``mixup``) it is called with
    ``y`` a pair of labels and their weights, see ``blended_hard_loss``."""

    def loss(outputs: torch.Tensor, targets: tuple) -> torch.Tensor:
        y, teacher = targets
        student_log = F.log_softmax(class_logits(outputs, task) / temperature, dim=1)
        teacher_p = F.softmax(class_logits(teacher, task) / temperature, dim=1)
        soft = F.kl_div(student_log, teacher_p, reduction="batchmean") * temperature**2
        return alpha * soft + (1 - alpha) * hard_loss(outputs, y)

    return loss


def blend(xb: torch.Tensor, share: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(blended inputs, the partner of each row, lam (B,)): lam * x + (1 - lam) * x[partner], lam ~ Beta(share, share).

    uint8 images are blended as 0..1 pixels (the model's input stage takes either)."""
    x = xb.float() / 255 if xb.dtype == torch.uint8 else xb
    lam = torch.distributions.Beta(share, share).sample((len(x),)).to(x.device)  # (B,)
    partner = torch.randperm(len(x), device=x.device)
    shape = (-1,) + (1,) * (x.dim() - 1)
    return lam.view(shape) * x + (1 - lam.view(shape)) * x[partner], partner, lam


def blended_hard_loss(task: str):
    """The task's loss on a blend: lam x the loss of the row's label + (1 - lam) x its partner's (mixup's rule)."""

    def per_row(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if task == "binary":
            return F.binary_cross_entropy_with_logits(outputs.squeeze(1), target.to(outputs.dtype), reduction="none")
        return F.cross_entropy(outputs, target, reduction="none")

    def loss(outputs: torch.Tensor, labels: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        y, partner, lam = labels
        return (lam * per_row(outputs, y) + (1 - lam) * per_row(outputs, y[partner])).mean()

    return loss


def soft_target_confidence(teacher: nn.Module, x: torch.Tensor, task: str, temperature: float, batch_size: int) -> float:
    """The teacher's mean top probability at ``temperature`` on the training inputs (un-augmented).

    Near 1 the soft targets are the labels themselves: a teacher fitted to its training split is that
    sure of it at T = 1 (0.995 for the default CNN on digits-images), and distillation adds nothing."""
    with torch.no_grad():
        device = next(teacher.parameters()).device
        logits = class_logits(predict_outputs(teacher, x, batch_size, device).float(), task)
    return F.softmax(logits / temperature, dim=1).max(dim=1).values.mean().item()


def confidence_line(confidence: float, temperature: float) -> str:
    line = f"teacher's soft targets at T = {temperature:g}: mean top probability {confidence:.3f} on the training split"
    if confidence > 0.98:
        return f"{line}: nearly the labels themselves, so distilling adds little to them (distill.temperature 2-8 softens them)"
    return line


def latency_ms(module: nn.Module, input_shape: tuple[int, ...], repeats: int = 50) -> float:
    """Median wall time of one single-example forward pass, in milliseconds (after warm-up)."""
    module.eval()
    x = torch.zeros(1, *input_shape)
    times = []
    with torch.no_grad():
        for i in range(repeats + 5):
            started = time.perf_counter()
            module(x)
            if i >= 5:
                times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def distill(
    teacher_dir: str | Path,
    student: str | Path | dict,
    *,
    overrides: list[str] | tuple[str, ...] = (),
    runs_dir: str | Path = "runs",
    name: str | None = None,
    seeds: int = 1,
    console: Console | None = None,
) -> Run:
    """Distill the run in ``teacher_dir`` into the student config; returns the distilled student's Run.

    The student trains on the teacher's data (its ``data`` section must be absent or the same).
    ``seeds`` > 1 repeats distilled-vs-scratch for train.seed, seed+1, ...; the first is the run.
    """
    console = console or Console()
    teacher_run = RunDir.open(teacher_dir)
    teacher = load(teacher_run.path, calibrated=False)
    if teacher.task == "regression":
        raise TrainwrightError("distillation transfers class probabilities; the teacher does regression")
    raw = dict(student) if isinstance(student, dict) else read_yaml(Path(student))
    teacher_data = teacher.config.data.model_dump(mode="json")
    if "data" in raw and deep_merge(teacher_data, raw["data"]) != teacher_data:
        raise TrainwrightError(
            "the student config's data section differs from the teacher's; remove it: the student trains on the teacher's data"
        )
    settings = DistillConfig.model_validate(raw.pop("distill", {}))
    cfg = load_config({**raw, "data": teacher_data}, overrides)
    if cfg.track.mlflow is True:  # one store for the student and the comparison runs in its sub-folders
        cfg = cfg.model_copy(update={"track": cfg.track.model_copy(update={"mlflow": tracking_uri(True, runs_dir)})})
    # Data-parallel (started by torchrun): every process trains the student and the scratch run; rank 0 prints and writes.
    replicas = Replicas.join(resolve_device(cfg.train.device))
    console = console if replicas.rank == 0 else Console(quiet=True)
    data = prepare_data(cfg.data)
    check_same_data(teacher_run, data, "distillation (the student trains on the teacher's data)")

    confidence = soft_target_confidence(teacher.module, data.x_train, data.task, settings.temperature, cfg.evaluate.batch_size)
    console.print(confidence_line(confidence, settings.temperature), highlight=False)

    per_seed, first, first_scratch = [], None, None
    for offset in range(seeds):
        seed_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"seed": cfg.train.seed + offset})})
        quiet = console if offset == 0 else Console(quiet=True)
        run = train_student(
            seed_cfg,
            data,
            teacher.module,
            settings,
            runs_dir=runs_dir if first is None else first.dir / "seeds",
            name=name if first is None else f"distilled-{seed_cfg.train.seed}",
            console=quiet,
            replicas=replicas,
        )
        scratch = train_prepared(
            seed_cfg,
            data,
            build_module(seed_cfg, data),
            runs_dir=(first or run).dir / "seeds",
            name=f"scratch-{seed_cfg.train.seed}",
            console=Console(quiet=True),
            replicas=replicas,
        )
        first, first_scratch = first or run, first_scratch or scratch
        if replicas.rank == 0:  # the other processes' runs hold no metrics: rank 0 scored and wrote them
            per_seed.append(
                {
                    "seed": seed_cfg.train.seed,
                    "distilled": run.metrics["test"]["accuracy"],
                    "scratch": scratch.metrics["test"]["accuracy"],
                }
            )
    replicas.close()
    if replicas.rank != 0:  # rank 0 compares the runs it wrote
        return first

    result = {
        "temperature": settings.temperature,
        "alpha": settings.alpha,
        "teacher": describe(teacher.module, data.input_shape, teacher_run.read_json(teacher_run.metrics)["test"]),
        "teacher_top_probability": confidence,
        "distilled": describe(load(first.dir).module, data.input_shape, first.metrics["test"]),
        "scratch": describe(load(first_scratch.dir).module, data.input_shape, first_scratch.metrics["test"]),
        "seeds": per_seed,
        "mean_accuracy": {
            "distilled": statistics.fmean(s["distilled"] for s in per_seed),
            "scratch": statistics.fmean(s["scratch"] for s in per_seed),
        },
    }
    RunDir(first.dir).write_json(first.dir / "distill.json", result)
    print_distill(console, result)
    return first


def train_student(
    cfg: Config,
    data: Prepared,
    teacher: nn.Module,
    settings: DistillConfig,
    *,
    runs_dir: str | Path,
    name: str | None,
    console: Console,
    replicas: Replicas | None = None,
) -> Run:
    """The supervised recipe's stages ③-⑤ for a student, with the distillation step in the loop
    (``replicas``: data-parallel, see ``recipes/supervised.py``)."""
    replicas = replicas or Replicas()
    device = replicas.device(resolve_device(cfg.train.device))
    check_precision(device, cfg.train.precision)
    module = build_module(cfg, data).to(device)
    console.print(model_line(cfg, module, data, device), highlight=False)
    est = estimate_training(cfg, data, module, device, peak_cache=cache_dir())
    console.print(est.summary(), highlight=False, soft_wrap=True)
    run_dir = start_run(cfg, data, module, device, runs_dir=runs_dir, name=name)

    run = build_fit(cfg, module, data, device, run_dir, console, replicas)
    student = replicas.wrapper or module  # what the step runs: the module, or its DistributedDataParallel wrapper
    kd = kd_loss(data.task, build_loss(resolve_loss(data.task, cfg.train.loss)), settings.temperature, settings.alpha)
    teacher = teacher.to(device).eval()
    if settings.mixup > 0:
        # Function matching: the teacher labels blends of the (augmented) training inputs, per batch.
        blended = kd_loss(data.task, blended_hard_loss(data.task), settings.temperature, settings.alpha)

        def step_loss(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
            mixed, partner, lam = blend(xb, settings.mixup)
            return blended(student(mixed), ((yb, partner, lam), teacher_outputs(teacher, mixed)))

        run.step_loss = step_loss
    elif data.train_transform is None:
        # The teacher's view of every training example, computed once: (N, outputs), shuffled with the labels.
        logits = predict_outputs(teacher, data.x_train.to(device), cfg.evaluate.batch_size).float().cpu()
        run.batches = make_batches(
            data.x_train,
            (data.y_train, logits),
            cfg.train.batch_size,
            device,
            cfg.train.data_placement,
            cfg.train.loader_workers,
            drop_singleton=has_batch_norm(module),
        ).shard(replicas.rank, replicas.size)
        run.step_loss = lambda xb, targets: kd(student(xb), targets)
    else:
        # Augmented batches: the teacher sees the same augmented images as the student.
        run.step_loss = lambda xb, yb: kd(student(xb), (yb, teacher_outputs(teacher, xb)))
    if est.compile.enabled:  # train.compile: true, or auto where the estimate projected that it pays
        compile_forward(module, est.compile.torch_mode)
    seconds = fit_or_diagnose(run, run_dir, console)
    if run.stop_reason:
        console.print(run.stop_reason, highlight=False)
    result = finish_supervised(run_dir, cfg, data, module, device, run, est, seconds, console)
    run_dir.unlock()  # start_run locked it (a failure keeps it locked until this process ends)
    return result


def teacher_outputs(teacher: nn.Module, xb: torch.Tensor) -> torch.Tensor:
    """The teacher's logits on a batch, without a graph (they are targets, not trained)."""
    with torch.no_grad():
        return teacher(xb).float()


def describe(module: nn.Module, input_shape: tuple[int, ...], metrics: dict) -> dict:
    return {
        **metrics,
        "parameters": sum(p.numel() for p in module.parameters()),
        "flops_per_example": layer_summary(module, input_shape)["flops_per_row"],
        "latency_ms": latency_ms(module, input_shape),
    }


def print_distill(console: Console, result: dict) -> None:
    table = Table(
        title=f"distillation (T = {result['temperature']}, alpha = {result['alpha']}), test split", title_justify="left"
    )
    for column in ("model", "accuracy", "f1", "parameters", "FLOPs/example", "latency ms"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for role in ("teacher", "distilled", "scratch"):
        r = result[role]
        table.add_row(
            role,
            f"{r['accuracy']:.4f}",
            f"{r['f1']:.4f}",
            f"{r['parameters']:,}",
            f"{r['flops_per_example']:,}",
            f"{r['latency_ms']:.3f}",
        )
    console.print(table)
    if len(result["seeds"]) > 1:
        rows = ", ".join(f"seed {s['seed']}: {s['distilled']:.4f} vs {s['scratch']:.4f}" for s in result["seeds"])
        means = result["mean_accuracy"]
        console.print(
            f"distilled vs scratch accuracy per seed: {rows}; mean {means['distilled']:.4f} vs {means['scratch']:.4f}",
            highlight=False,
        )
