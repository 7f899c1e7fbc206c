"""The setup stage every recipe that trains on data shares: device, model, settings checks, the run
directory's first files, and the supervised loop's parts (batches, optimizer, schedule, callbacks).

A recipe calls these in its own order and changes what it owns: distillation replaces the fit's
``step_loss`` with its own, a future recipe its batches or callbacks.

Example:
    >>> device = resolve_device(cfg.train.device)
    >>> module = build_module(cfg, data).to(device)
    >>> run_dir = start_run(cfg, data, module, device, runs_dir="runs", name=None)
    >>> fit = build_fit(cfg, module, data, device, run_dir, console)
"""

from __future__ import annotations

import functools
import json
import math
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from torch import nn

from trainwright.background import Background, Job, Later, Worker, claim_worker, forks, spare_cores
from trainwright.compute.peak import NOMINAL, nominal_gpu
from trainwright.config import Config
from trainwright.data.batches import make_batches
from trainwright.data.prepare import Prepared, with_input_stage
from trainwright.errors import Interrupted, TrainwrightError, WriteFailed
from trainwright.evaluate.baselines import baseline_predictions, score_baselines
from trainwright.evaluate.metrics import load_metrics, predict_outputs
from trainwright.models.custom import CustomConfig
from trainwright.models.pretrained import starts_from_weights
from trainwright.models.pretrained_weights import start_from_pretrained
from trainwright.models.registry import build_model
from trainwright.models.summary import layer_summary
from trainwright.predict import score
from trainwright.rundir import RunDir, default_run_name, environment, unique_name
from trainwright.tracking.callback import Tracker
from trainwright.tracking.mlflow import MLflowTracking, tracking_uri
from trainwright.tracking.tensorboard import TensorBoard
from trainwright.training import transfer
from trainwright.training.callbacks import CallbackList, Checkpoint, EarlyStopping, GradientStats, HistoryCSV, ProgressBar
from trainwright.training.distributed import Replicas, from_rank0
from trainwright.training.loop import Fit, supervised_loss
from trainwright.training.losses import balanced_class_weights, build_loss, resolve_loss
from trainwright.training.optim import Schedule, build_optimizer
from trainwright.training.precision import grad_scaler


def with_custom_model(cfg: Config, model: nn.Module | None) -> Config:
    """A user's own module is recorded as ``model: {type: custom, class_name: ...}``."""
    return cfg if model is None else cfg.model_copy(update={"model": CustomConfig(class_name=type(model).__qualname__)})


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


# ── work beside the network ──────────────────────────────────────────────────────────────
# The niceness of the worker beside a training that takes every core: the lowest priority (19), so a training
# thread that wants its core back gets it at once (a preempted OpenMP thread would stall its team).
YIELD = 19
# The most data (bytes of tensors) the command line's worker is sent: each job pickles them through a pipe.
WORKER_MAX_BYTES = 64 * 2**20


@dataclass
class Beside:
    """Work a run starts right after its data stage and joins later: the classical baselines' test
    predictions and scores, the preprocessor's files (``preprocessor.skops`` loads all of scikit-learn,
    ~1 s of CPU), and the scoring of the network's outputs (torchmetrics and the matplotlib it loads, ~0.8 s
    of CPU, loaded while the network trains; the scoring itself when finish sends the outputs).

    One ``Worker`` writes the files and scores, one job after the other, so it never takes more than one core
    from the run (the estimate's timed steps run meanwhile): the command line's, where it started one (on a
    machine with an idle core, before the run loaded torch, it loaded what the files need), else one forked
    now, where the training leaves a core to spare (it has the data by the fork). The baselines (seconds of
    CPU: HistGradientBoosting) are fitted in a forked process of their own (``ForkedBaselines``), started
    now, so the files and the scoring never wait behind them. Where the training's threads take every core,
    both run at the lowest priority (``YIELD``): they run while the run's own process is on one core (the
    estimate, setting up, evaluating) and give way to the training's threads the moment those want the
    cores. Without a worker, each runs in the run's own process when its result is asked for. The results
    are the same either way (tested)."""

    files: Background | Job | None  # data.preprocessor.files(), for start_run; None when resuming (already written)
    baselines: ForkedBaselines | Background | Job | None  # scored_baselines(data), for finish; None when the run has none
    scores: Later | None = None  # score_splits(data, *outputs, threshold), for finish
    worker: Worker | None = None  # the worker writing the files and scoring (and drawing the report's figures), if any

    @classmethod
    def start(cls, cfg: Config, data: Prepared, resume: bool = False, replicas: Replicas | None = None) -> Beside:
        # The training's threads: torch's on a CPU; one that feeds a GPU. Data-parallel processes (torchrun)
        # start no worker: their cores are the other processes', and only rank 0 asks for the results.
        threads = torch.get_num_threads() if resolve_device(cfg.train.device).type == "cpu" else 1
        parallel = not (replicas is not None and replicas.active)
        spare = spare_cores(threads) > 0 and parallel
        wanted = wants_baselines(cfg, data)
        worker = claim_worker() if parallel else None
        if worker is not None and _tensor_bytes(data) > WORKER_MAX_BYTES:
            worker.close()  # its jobs' arguments travel pickled: large data go to one forked now, or stay here
            worker = None
        if worker is None and spare:
            worker = Worker(shared=data)  # forked now: the data are its own copy, not pickled
        if worker is not None and not spare:
            worker.yield_to(YIELD)
        submit = worker.submit if worker is not None else functools.partial(Background, fork=False)
        files = None if resume else submit(data.preprocessor.files)
        if wanted and (worker is not None or spare) and forks():
            baselines = ForkedBaselines(data, worker, nice=0 if spare else YIELD)
        else:
            baselines = submit(scored_baselines, data) if wanted else None
        scores = Later(score_splits, data, prepare=load_metrics, worker=worker)
        return cls(files, baselines, scores, worker)

    def cancel(self) -> None:
        for job in (self.files, self.baselines, self.scores):
            if job is not None:
                job.cancel()
        if self.worker is not None:
            self.worker.close()


class ForkedBaselines:
    """The baselines' test predictions fitted in a forked process of their own (it has the data by the fork),
    started beside the network as soon as the data are prepared, so the worker's queue (the preprocessor's
    files, the scoring, the report's figures) never waits behind them; scored (``score_baselines``) by the
    worker, which has loaded torchmetrics, or here. ``result()``: ``scored_baselines(data)``."""

    def __init__(self, data: Prepared, worker: Worker | None, nice: int) -> None:
        self._data, self._worker = data, worker
        self._fit = Background(baseline_predictions, data)
        self._fit.yield_to(nice)

    @property
    def forked(self) -> bool:
        return self._fit.forked

    def result(self) -> tuple[dict, dict]:
        predictions = self._fit.result()
        if self._worker is not None and self._worker.alive:
            return predictions, self._worker.submit(score_baselines, predictions, self._data).result()
        return predictions, score_baselines(predictions, self._data)

    def cancel(self) -> None:
        self._fit.cancel()


def _tensor_bytes(data: Prepared) -> int:
    """Bytes of the tensors a prepared data set holds (its splits, features and targets)."""
    parts = [v for value in getattr(data, "__dict__", {}).values() for v in (value if isinstance(value, tuple) else (value,))]
    return sum(t.element_size() * t.numel() for t in parts if isinstance(t, torch.Tensor))


def preload() -> None:
    """What the worker the command line starts first thing (``background.start_worker``) loads while the
    command's own process loads torch: skops for the preprocessor's files (the first job, which the run's setup
    waits for), with torch, scikit-learn and trainwright. Torchmetrics (scoring, and the matplotlib it loads)
    comes next, as a job of its own (``Beside``), so it does not delay the files."""
    import skops.io  # noqa: F401 - loaded for its side effect: all of scikit-learn's estimators


def scored_baselines(data: Prepared) -> tuple[dict, dict]:
    """The baselines' test predictions (``baseline_predictions``) and their metrics (``score_baselines``)."""
    predictions = baseline_predictions(data)
    return predictions, score_baselines(predictions, data)


def score_splits(data: Prepared, val, test, train, threshold: float | None) -> tuple[dict, dict, dict]:
    """The task's metrics (``predict.score``) of the network's outputs on the validation, test and training
    splits (tensors, or their numpy arrays as ``Later`` sends them)."""
    splits = zip((val, test, train), (data.y_val, data.y_test, data.y_train), strict=True)
    return tuple(score(torch.as_tensor(outputs), y, data.preprocessor, threshold=threshold) for outputs, y in splits)


def wants_baselines(cfg: Config, data: Prepared) -> bool:
    """Tables get classical models, text TF-IDF, series naive forecasts; images none."""
    pre = data.preprocessor
    return bool(cfg.evaluate.baseline) and (hasattr(pre, "feature_columns") or getattr(pre, "modality", "") in ("text", "series"))


# ── the model ────────────────────────────────────────────────────────────────────────────
def build_module(cfg: Config, data: Prepared, model: nn.Module | None = None) -> nn.Module:
    """The model for this data, seeded so the same config gives the same initial weights, and checked."""
    torch.manual_seed(cfg.train.seed)
    pre = data.preprocessor
    backbone = transfer.read_backbone(cfg.model.backbone) if cfg.model.backbone is not None else None
    if backbone is not None:
        transfer.check_inputs(backbone, data)
        transfer.use_backbone_normalization(backbone, data)  # before the input stage is built from them
    pretrained = model is None and starts_from_weights(cfg.model)  # timm/torchvision weights (a run backbone replaces them)
    if pretrained:
        transfer.use_pretrained_normalization(cfg.model, data)  # the weights' mean and std, also before the input stage
    module = (
        model if model is not None else build_model(cfg.model, data.input_shape, pre.n_outputs, getattr(pre, "vocab_size", None))
    )
    module = with_input_stage(pre, module)  # images: uint8 pixels are normalized inside the model
    check_output_shape(module, data.input_shape, pre.n_outputs)
    check_train_settings(cfg, module, data.task)
    if backbone is not None:
        transfer.start_from_backbone(module, cfg.model.backbone, backbone)  # all but the new head; then freeze
    if pretrained:
        # Training only: a trained run is rebuilt by predict.load from its own weights, without this file.
        start_from_pretrained(module, cfg.model)  # strictly, all but the new head; then freeze
    return module


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


def check_train_settings(cfg: Config, module: nn.Module, task: str) -> None:
    """Settings that depend on the task or the model, checked before anything is written."""
    tc = cfg.train
    resolve_loss(task, tc.loss)
    if has_batch_norm(module) and tc.batch_size == 1:
        raise TrainwrightError(
            "batch norm needs at least 2 samples per batch; set train.batch_size >= 2 or model.batch_norm: false"
        )
    if cfg.calibrate is not None and task == "regression":
        raise TrainwrightError("calibrate applies to classifiers; this task is regression: remove the calibrate section")
    if tc.class_weight != "none" and task == "regression":
        raise TrainwrightError("train.class_weight weighs classes; this task is regression: remove train.class_weight")
    if cfg.evaluate.threshold != "none" and task != "binary":
        raise TrainwrightError(f"evaluate.threshold decides between two classes; this task is {task}: remove evaluate.threshold")
    monitors = {"train_loss", "val_loss", "val_r2" if task == "regression" else "val_accuracy"}
    if tc.early_stopping.monitor not in monitors:
        raise TrainwrightError(
            f"train.early_stopping.monitor = {tc.early_stopping.monitor!r} is not logged; use one of: "
            f"{', '.join(sorted(monitors))}"
        )


def check_parallel_settings(cfg: Config, replicas: Replicas) -> None:
    """Settings several processes cannot train as one does, refused before anything is written."""
    if replicas.active and cfg.train.unfreeze_at_epoch is not None:
        raise TrainwrightError(
            "train.unfreeze_at_epoch changes which weights train in the middle of a run, which DistributedDataParallel "
            "cannot follow; on several processes train the backbone from the start (remove train.unfreeze_at_epoch) "
            "or keep it frozen"
        )


def has_batch_norm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def model_line(cfg: Config, module: nn.Module, data: Prepared, device: torch.device) -> str:
    """One console line: family, parameters, input and output shapes, device."""
    n_params = sum(p.numel() for p in module.parameters())
    modality = getattr(data.preprocessor, "modality", "")
    shape = f"{data.input_shape[0]} tokens" if modality == "text" else shape_text(data.input_shape)
    outputs = data.preprocessor.n_outputs
    plural = "s" if outputs != 1 else ""
    return f"model: {cfg.model.type}, {n_params:,} parameters, input {shape} -> {outputs} output{plural}, device {device}"


def shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) if len(shape) > 1 else f"{shape[0]} features"


# ── the run directory ───────────────────────────────────────────────────────────────────
def start_run(
    cfg: Config,
    data: Prepared,
    module: nn.Module,
    device: torch.device,
    *,
    runs_dir: str | Path,
    name: str | None,
    backbone: dict | None = None,
    files: Background | Job | None = None,
) -> RunDir:
    """Create the run directory (once the data and the model are known to be good; it stays locked
    until the recipe unlocks it) and write what the run starts from. If those first files cannot be
    written (a full disk), the new directory is removed again: nothing of the run existed yet."""
    # Data-parallel: rank 0 names the run (a timestamp may differ a second between processes).
    run_dir = RunDir.create(runs_dir, from_rank0(name or unique_name(runs_dir, default_run_name(data.name, cfg.model.type))))
    try:
        write_start_files(run_dir, cfg, data, module, device, backbone, files)
    except WriteFailed:
        if run_dir.writes:
            shutil.rmtree(run_dir.path, ignore_errors=True)
        run_dir.unlock()
        raise
    except KeyboardInterrupt as stop:  # the directory stays, and --resume starts it from the beginning
        run_dir.unlock()
        raise interrupted(stop, run_dir) from None
    return run_dir


def interrupted(stop: KeyboardInterrupt, run_dir: RunDir, replicas: Replicas | None = None,
                trained: bool = False) -> Interrupted:
    """A Ctrl-C or SIGTERM (in the loop, or outside it) as an ``Interrupted`` that names the run to resume:
    with ``replicas`` active, on as many processes again; ``trained``: the training had finished (and is
    checkpointed), so the resume only evaluates and writes the results."""
    if not isinstance(stop, Interrupted):
        stop = Interrupted(signal.SIGINT)
    stop.run_dir = stop.run_dir or run_dir.path
    if replicas is not None and replicas.active:
        stop.resume_with = replicas.resume_command(run_dir.path)
    if trained and not stop.detail:
        stop.detail = "training had finished and is checkpointed; the resume evaluates and writes the results"
    return stop


def write_start_files(
    run_dir: RunDir, cfg: Config, data: Prepared, module: nn.Module, device: torch.device, backbone: dict | None = None,
    files: Background | Job | None = None,
) -> None:
    """The resolved config, the environment, the data summary, the fitted preprocessing (``files``: its files,
    already being written out beside) and the model's facts."""
    run_dir.write_text(run_dir.config, cfg.to_yaml())
    run_dir.write_json(run_dir.environment, environment(device, cfg.train.seed))
    run_dir.write_json(run_dir.data, data.summary)
    run_dir.write_files(files.result() if files is not None else data.preprocessor.files())
    run_dir.write_json(run_dir.model_info, model_facts(cfg, data, module, backbone))


def model_facts(cfg: Config, data: Prepared, module: nn.Module, backbone: dict | None = None) -> dict:
    """model.json: the family, input and output widths, parameters, and per layer its shape, parameters and FLOPs."""
    return {
        "type": cfg.model.type,
        "input_shape": list(data.input_shape),
        "out_features": data.preprocessor.n_outputs,
        "parameters": sum(p.numel() for p in module.parameters()),
        **layer_summary(module, data.input_shape),
        **({"backbone": backbone} if backbone is not None else {}),
    }


def check_same_data(run_dir: RunDir, data: Prepared, purpose: str = "resume") -> None:
    if run_dir.read_json(run_dir.data) != json.loads(json.dumps(data.summary)):
        raise TrainwrightError(
            f"the data differ from when {run_dir.path} was trained (see its data.json); {purpose} needs the same data"
        )


# ── the supervised loop's parts ─────────────────────────────────────────────────────────
def build_fit(cfg: Config, module: nn.Module, data: Prepared, device: torch.device, run_dir: RunDir, console: Console,
              replicas: Replicas | None = None) -> Fit:
    """Everything the supervised loop needs: batches on the device, loss, optimizer, schedule, callbacks.
    ``replicas``: data-parallel, each process takes its share of every batch and the step runs the model's
    DistributedDataParallel wrapper (``Fit.step_loss``; the fit's ``model`` stays the plain module)."""
    tc = cfg.train
    replicas = replicas or Replicas()
    weights = class_weights(cfg, data, console)
    weights = weights.to(device) if weights is not None else None
    task_loss = build_loss(resolve_loss(data.task, tc.loss), weights)  # validation scores the same (weighted) loss
    batches = make_batches(
        data.x_train,
        data.y_train,
        tc.batch_size,
        device,
        tc.data_placement,
        tc.loader_workers,
        drop_singleton=has_batch_norm(module),
        transform=data.train_transform,
    ).shard(replicas.rank, replicas.size)  # augmentation: training batches only
    model = replicas.wrap(module, tc.strategy)  # fsdp: sharded in place, so before its optimizer is built
    optimizer = build_optimizer(tc.optimizer, transfer.parameter_groups(module, cfg))  # backbone: its own lr
    schedule = Schedule(tc.schedule, optimizer, tc.epochs, math.ceil(len(batches) / tc.accumulate))  # optimizer steps per epoch
    callbacks = CallbackList(
        [
            *transfer.transfer_callbacks(cfg, module),
            EarlyStopping(tc.early_stopping),
            GradientStats(run_dir, cfg.evaluate.gradient_every),
            HistoryCSV(run_dir),
            Checkpoint(run_dir, every=tc.checkpoint_seconds, replicas=replicas),
            ProgressBar(console, tc.epochs, len(batches), tc.early_stopping.monitor),
            *tracking_callbacks(cfg, run_dir),
        ]
    )
    generator = torch.Generator(device=device).manual_seed(tc.seed)
    validate = make_validate(task_loss, data.x_val.to(device), data.y_val.to(device), data.task, cfg.evaluate.batch_size,
                             replicas)
    return Fit(
        module,
        optimizer,
        schedule,
        supervised_loss(model, task_loss),
        batches,
        validate,
        tc,
        generator,
        callbacks,
        scaler=grad_scaler(device, tc.precision),
        replicas=replicas,
    )


def tracking_callbacks(cfg: Config, run_dir: RunDir) -> list[Tracker]:
    """What ``track`` asks for, on the process that writes the run (rank 0): MLflow (its worker process
    starts now, so MLflow's import overlaps the first epochs) and TensorBoard (``<run>/tensorboard``).
    The finish step (``recipes/finish.finish``) gives them the final metrics and files, then closes them."""
    track = cfg.track
    if not run_dir.writes:
        return []
    trackers: list[Tracker] = []
    if track.mlflow:
        uri = tracking_uri(track.mlflow, run_dir.path.parent)  # true: <runs dir>/mlflow.db
        trackers.append(MLflowTracking(uri, track.experiment, run_dir.path.name, cfg.to_dict()))
    if track.tensorboard:
        trackers.append(TensorBoard(run_dir.path / "tensorboard", every=cfg.evaluate.gradient_every))
    return trackers


def class_weights(cfg: Config, data: Prepared, console: Console | None = None) -> torch.Tensor | None:
    """``train.class_weight: balanced``: one weight per class from the training split's counts (printed), else None."""
    if cfg.train.class_weight == "none":
        return None
    classes = data.preprocessor.classes
    weights = balanced_class_weights(data.y_train, len(classes))
    if console is not None:
        shown = ", ".join(f"{label} {w:.3g}" for label, w in zip(classes, weights.tolist()))
        console.print(f"class weights in the loss (balanced, from the training split): {shown}", highlight=False, soft_wrap=True)
    return weights


def make_validate(loss_fn, x_val: torch.Tensor, y_val: torch.Tensor, task: str, batch_size: int,
                  replicas: Replicas | None = None):
    """Per-epoch validation: the loss plus one cheap metric (accuracy, or R² for regression).
    Data-parallel: each process predicts its share of the rows, and every process scores them all."""
    replicas = replicas or Replicas()
    mine = replicas.shard_rows(len(x_val))

    def validate(model: nn.Module) -> dict[str, float]:
        with replicas.whole(model):  # FSDP: the weights gathered once, not per batch
            out = replicas.gather_rows(predict_outputs(model, x_val[mine], batch_size), len(x_val))
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
