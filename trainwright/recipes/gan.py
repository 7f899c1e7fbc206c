"""Generative adversarial networks: a generator learns to make samples its discriminator cannot tell from the data.

The recipe reads top to bottom: ① the data (tables and 2-D point sets feed MLP networks, images DCGAN
networks; text and series are refused), ② the two networks (``models/gan.py``), seeded, ③ the estimate
(both networks' FLOPs per step, a few timed steps), the run directory and the judge of the samples
(built-in mixtures: PacGAN's modes and high-quality share; images: a classifier trainwright trains here
on the real training images, kept in ``classifier/``; tables: per-column distances in original units),
④ the loop (``training/gan_loop.py``: discriminator and generator steps, the quality measures every
``gan.evaluate.every_steps``, the best generator kept by them), ⑤ finish: the kept generator judged on
fresh samples, both networks' weights and the moving average's, samples, metrics, diagnosis and report.

Data-parallel (started by torchrun, or ``train --nproc-per-node N``): every process takes its share of
each global batch and the two networks' gradients are summed over the processes (``training/gan_step.py``),
so a run on N processes trains the weights one process trains; rank 0 writes the run directory, judges the
samples and finishes the run.

Example:
    >>> run = train_gan(validate_gan_config({"recipe": "gan", "data": {"source": "ring"}}))
    >>> run.metrics["quality"]["modes"], run.metrics["quality"]["high_quality"]
    (8, 0.93)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pydantic import ValidationError
from rich.console import Console
from safetensors.torch import load_file

from trainwright.compute.gan_estimate import GANEstimate, estimate_gan
from trainwright.config import EarlyStoppingConfig
from trainwright.config.gan import GANRunConfig, GANTrainConfig
from trainwright.configure import read_raw, validate_config, validate_gan_config
from trainwright.data.images import ImagePreprocessor
from trainwright.data.mixtures import MIXTURES, Mixture
from trainwright.data.modality import modality_of
from trainwright.data.prepare import Prepared, load_preprocessor, prepare_data
from trainwright.errors import TrainingDiverged, TrainwrightError
from trainwright.evaluate.gan_figures import points_png, sample_grid_png, table_png
from trainwright.evaluate.gan_quality import ImageJudge, column_distances, mode_coverage, synthetic_utility, table_quality
from trainwright.files import atomic_write
from trainwright.models.gan import OneHotBlocks, build_discriminator, build_generator
from trainwright.predict import load as load_run
from trainwright.recipes import supervised
from trainwright.recipes.finish import Run, finish
from trainwright.recipes.setup import build_module, check_same_data, interrupted, resolve_device
from trainwright.rundir import RunDir, default_run_name, environment, unique_name
from trainwright.training.callbacks import Callback, CallbackList, Checkpoint, EarlyStopping, HistoryCSV, ProgressBar
from trainwright.training.checkpoint import load_state
from trainwright.training.distributed import Replicas, from_rank0, peer_lost
from trainwright.training.gan_loop import GANFit, RealBatches, fit_gan
from trainwright.training.gan_rejection import Rejection
from trainwright.training.gan_step import GANSteps
from trainwright.training.launch import record_failure

GAN_FILE = "gan.json"  # what `trainwright sample` needs to rebuild the generator and decode its samples
WEIGHTS = {"generator": "generator.safetensors", "discriminator": "discriminator.safetensors",
           "generator_ema": "generator_ema.safetensors"}
REJECTION_WEIGHTS, REJECTION_FILE = "discriminator_rejection.safetensors", "rejection.json"  # gan.sample.rejection
SNAPSHOTS = 6  # sample pictures kept during training, evenly spread over the evaluation periods
MAX_JUDGED = 10_000  # real images the judge's statistics use at most (train, and test for the floor)


def train_gan(cfg: GANRunConfig, *, runs_dir: str | Path = "runs", name: str | None = None, resume: RunDir | None = None,
              console: Console | None = None) -> Run:
    """Train a GAN as ``cfg`` says into a new run directory, or continue ``resume`` from its checkpoint."""
    # Data-parallel (started by torchrun): join the others; rank 0 prints and writes, the others are quiet.
    replicas = Replicas.join(resolve_device(cfg.train.device))
    console = (console or Console()) if replicas.rank == 0 else Console(quiet=True)
    started = time.perf_counter()
    # ①-③ The data, the networks and the estimate.
    data, device, gan, batches, est = setup_gan(cfg, console, replicas)

    # ③ The run directory and the judge of the samples.
    if resume is None:
        run_dir = start_gan_run(cfg, data, gan, device, runs_dir, name)
    else:
        run_dir = resume
        check_same_data(run_dir, data.prepared)
    # From here a signal outside the loop (the loop's Checkpoint says its own) still names the run and how to go on.
    try:
        return _train_gan(cfg, data, device, gan, batches, est, run_dir, resume, replicas, console, started)
    except KeyboardInterrupt as stop:
        raise interrupted(stop, run_dir, replicas) from None


def _train_gan(cfg: GANRunConfig, data: GANData, device: torch.device, gan: GANSteps, batches: RealBatches, est: GANEstimate,
               run_dir: RunDir, resume: RunDir | None, replicas: Replicas, console: Console, started: float) -> Run:
    """③ the judge, ④ the loop and ⑤ finish, in ``run_dir``."""
    evaluate = make_evaluate(cfg, data, None, device) if data.kind != "images" else None  # images: once the judge is trained
    judge = build_judge(cfg, data, run_dir, device, console, replicas)
    if judge is not None:
        evaluate = make_evaluate(cfg, data, judge, device)

    # ④ The loop: callbacks see one "epoch" per evaluation period.
    every = cfg.gan.evaluate.every_steps
    fit = GANFit(gan, batches, evaluate, cfg.train.steps, every, cfg.gan.d_steps, cfg.gan.conditional,
                 build_callbacks(cfg, data, run_dir, device, console, replicas))
    if resume is not None:  # a run whose training had finished (killed while finishing) goes straight to ⑤
        previous = resume_from_checkpoint(fit, run_dir, console)
        run_dir.write_text(run_dir.config, cfg.to_yaml())  # the run's config says how long it now trains (--set train.steps)
    else:
        torch.manual_seed(cfg.train.seed + 1)  # the loop's stream, whatever the judge's training drew before it
        previous = 0.0
    loop_started = time.perf_counter()
    if replicas.active:  # what the launcher says if a process dies: the run, and the command that continues it
        record_failure(f"the last checkpoint of {run_dir.path} is kept; continue with "
                       f"`{replicas.resume_command(run_dir.path)}`", in_advance=True)
    try:
        fit_gan(fit)
    except TrainingDiverged:
        if run_dir.writes:
            finish(run_dir, console, diverged={"epoch": fit.epoch + 1, "loss": float("nan"),
                                               "lr": gan.opt_d.param_groups[0]["lr"]})
        raise
    except RuntimeError as error:
        if not peer_lost(error):
            raise
        held = (f"the checkpoint of {run_dir.path} holds the run after generator step {fit.saved_epoch * fit.every:,}"
                if fit.saved_epoch else f"{run_dir.path} has no checkpoint yet: train it again")
        message = (f"another process of this run stopped, so every process stops; {held}; continue with "
                   f"`{replicas.resume_command(run_dir.path)}`")
        record_failure(message)
        raise TrainwrightError(message) from None
    seconds = previous + time.perf_counter() - loop_started
    if fit.stop_reason:
        console.print(fit.stop_reason, highlight=False)

    # ⑤ The kept generator on fresh samples, every file, the diagnosis and the report (rank 0: the others leave).
    metrics = {}
    if run_dir.writes:
        try:
            metrics = finish_gan(cfg, data, fit, judge, est, run_dir, seconds, device, console)
            console.print(f"total {time.perf_counter() - started:.1f} s", highlight=False)
            finish(run_dir, console)
        except KeyboardInterrupt as stop:
            raise interrupted(stop, run_dir, trained=True) from None
    replicas.close()  # every process leaves once rank 0 has written the results
    return Run(run_dir.path, cfg, metrics, fit.history)


def setup_gan(cfg: GANRunConfig, console: Console,
              replicas: Replicas | None = None) -> tuple[GANData, torch.device, GANSteps, RealBatches, GANEstimate]:
    """Stages ① to ③ of a run, nothing written: the data, the seeded networks, the real batches and the estimate
    (``trainwright estimate`` stops here). ``replicas``: data-parallel, the batches are this process's shares."""
    replicas = replicas or Replicas()
    packs = cfg.train.batch_size // cfg.gan.pack
    if packs < replicas.size:
        raise TrainwrightError(
            f"train.batch_size {cfg.train.batch_size} holds {packs} pack{'s' if packs != 1 else ''} of gan.pack "
            f"{cfg.gan.pack}, fewer than the {replicas.size} processes that share each batch: raise train.batch_size"
        )
    # ① Data: what the discriminator sees, and how a generated sample maps back to the data's own units.
    data = load_gan_data(cfg, console)
    device = replicas.device(resolve_device(cfg.train.device))

    # ② The networks, seeded: the same config gives the same initial weights.
    torch.manual_seed(cfg.train.seed)
    generator = build_generator(cfg.gan, data.shape, data.n_classes)  # an image size it cannot make stops here
    if data.spans:
        generator = OneHotBlocks(generator, data.spans)
    discriminator = build_discriminator(cfg.gan, data.shape, data.n_classes)
    gan = GANSteps(generator.to(device), discriminator.to(device), cfg.gan, data.n_classes, total_steps=cfg.train.steps,
                   replicas=replicas)
    if replicas.active and isinstance(generator, OneHotBlocks):  # its Gumbel noise: drawn for the global batch too
        usable = cfg.train.batch_size - cfg.train.batch_size % cfg.gan.pack
        generator.share = (usable, gan.share(cfg.train.batch_size))
    console.print(network_line(cfg, data, gan, device), highlight=False, soft_wrap=True)
    batches = RealBatches(data.x, data.y, cfg.train.batch_size, torch.Generator().manual_seed(cfg.train.seed), device,
                          data.prepare, share=gan.share(cfg.train.batch_size))

    # ③ The estimate: timed on copies of the networks, the random streams forked; the quality measures
    # timed once where they need no trained judge.
    real, labels = batches.next()
    batches.position = 0  # the estimate's batch is not consumed
    evaluate = make_evaluate(cfg, data, None, device) if data.kind != "images" else None
    est = estimate_gan(gan, real, labels if cfg.gan.conditional else None, d_steps=cfg.gan.d_steps, steps=cfg.train.steps,
                       evaluations=math.ceil(cfg.train.steps / cfg.gan.evaluate.every_steps), evaluate=evaluate)
    for line in est.lines():
        console.print(line, highlight=False, soft_wrap=True)
    return data, device, gan, batches, est


def estimate_gan_run(cfg: GANRunConfig, device: str | None = None, console: Console | None = None) -> GANEstimate:
    """How long ``cfg`` will train, measured here on ``device`` (cpu, cuda[:N], mps; default ``train.device``),
    nothing trained or written.

    Example:
        >>> estimate_gan_run(validate_gan_config({"recipe": "gan", "data": {"source": "ring"}})).total_seconds
    """
    if device is not None:
        try:
            cfg = cfg.model_copy(update={"train": GANTrainConfig(**{**cfg.train.model_dump(), "device": device})})
        except ValidationError:
            raise TrainwrightError(f"--device {device}: a GAN's estimate is measured on this machine; use cpu, cuda, "
                                   "cuda:N or mps") from None
    return setup_gan(cfg, console or Console())[4]


# ── ① data ───────────────────────────────────────────────────────────────────────────────
@dataclass
class GANData:
    """The training samples as the discriminator sees them, and how generated ones map back."""

    kind: str  # "points" (a built-in mixture), "table" or "images"
    prepared: Prepared
    x: torch.Tensor  # (N, ...) training samples: floats (tables, points) or uint8 images
    y: torch.Tensor | None  # (N,) class indices, when the data are labelled
    shape: tuple[int, ...]  # one sample as the generator makes it
    n_classes: int  # > 0: class-conditional
    classes: list = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)  # tables: one-hot blocks of the generated vector
    target: str | None = None  # tables: "class" or "value" when the generator makes the target column too
    mixture: Mixture | None = None

    def prepare(self, xb: torch.Tensor) -> torch.Tensor:
        """A real batch as the discriminator sees it: images from uint8 to [-1, 1] like the generator's tanh."""
        return xb.float() / 127.5 - 1 if self.kind == "images" else xb


def load_gan_data(cfg: GANRunConfig, console: Console) -> GANData:
    """Load, split and prepare ``cfg.data`` as every trainwright run does, then lay it out for a GAN."""
    modality = modality_of(cfg.data)
    if modality in ("text", "series"):
        raise TrainwrightError(
            f"a GAN here models tables, 2-D points and images; {cfg.data.source} is {modality} data: use a table, a folder "
            "of images, or a built-in mixture (ring, grid)"
        )
    data = prepare_data(cfg.data)
    for line in data.report_lines():
        console.print(line, highlight=False, soft_wrap=True)
    pre = data.preprocessor
    labelled = data.task != "regression"
    if cfg.gan.conditional and not labelled:
        raise TrainwrightError(
            f"gan.conditional needs class labels, but {cfg.data.source}'s target {pre.target!r} is a regression target: "
            "set gan.conditional: false, or name a column of classes as data.target"
        )
    classes = list(pre.classes) if labelled else []
    n_classes = len(classes) if cfg.gan.conditional else 0
    y = data.y_train if labelled else None
    if isinstance(pre, ImagePreprocessor):
        return GANData("images", data, data.x_train, y, tuple(data.x_train.shape[1:]), n_classes, classes)
    mixture = MIXTURES.get(cfg.data.source) if cfg.data.source in MIXTURES else None
    spans = pre.onehot_spans()
    x, target = data.x_train, None
    if mixture is None and not cfg.gan.conditional:  # the generator makes the target column too
        if labelled:
            x, target = torch.cat([x, torch.nn.functional.one_hot(data.y_train, len(classes)).float()], dim=1), "class"
            spans = [*spans, (data.x_train.shape[1], x.shape[1])]
        else:
            x, target = torch.cat([x, data.y_train.float()], dim=1), "value"  # the target, scaled as the run scales it
    return GANData("points" if mixture else "table", data, x, y, (x.shape[1],), n_classes, classes, spans, target, mixture)


def decode_rows(data: GANData, x: torch.Tensor, labels: torch.Tensor | None) -> pd.DataFrame:
    """Generated (or real) vectors (N, F) -> rows in the data's original units, categories and labels."""
    pre = data.prepared.preprocessor
    width = pre.n_features
    x = x.detach().float().cpu()
    frame = pre.inverse_transform(x[:, :width].numpy())
    if data.target == "class":
        frame[pre.target] = np.asarray(data.classes, dtype=object)[x[:, width:].argmax(dim=1).numpy()]
    elif data.target == "value":
        frame[pre.target] = pre.decode_target(x[:, width].numpy())
    elif labels is not None:
        frame[pre.target] = np.asarray(data.classes, dtype=object)[labels.cpu().numpy()]
    elif data.mixture is not None:  # the mode a point is nearest to
        frame[pre.target] = torch.cdist(torch.tensor(frame.to_numpy(np.float64)), data.mixture.means.double()).argmin(1).numpy()
    return frame


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    """The generator's tanh output [-1, 1] -> uint8 pixels (N, C, H, W)."""
    return ((x.detach().float().cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def asked_labels(data: GANData, n: int, device: torch.device) -> torch.Tensor | None:
    """For a conditional generator: every class in turn, as many of each (n,); None otherwise."""
    return torch.arange(data.n_classes, device=device).repeat(math.ceil(n / data.n_classes))[:n] if data.n_classes else None


# ── ③ the run directory and the judge of the samples ────────────────────────────────────
def network_line(cfg: GANRunConfig, data: GANData, gan: GANSteps, device: torch.device) -> str:
    kind = "MLP" if len(data.shape) == 1 else "DCGAN"
    g = sum(p.numel() for p in gan.generator.parameters())
    d = sum(p.numel() for p in gan.discriminator.parameters())
    condition = f", conditional on {data.n_classes} classes" if data.n_classes else ""
    return (f"GAN ({kind}{condition}): generator {g:,} parameters (z of {gan.latent_size}) -> {'x'.join(map(str, data.shape))}, "
            f"discriminator {d:,} parameters{f' (packs of {cfg.gan.pack})' if cfg.gan.pack > 1 else ''}; "
            f"{cfg.gan.loss} loss, {cfg.train.steps:,} steps of batch {cfg.train.batch_size}, device {device}")


def start_gan_run(cfg: GANRunConfig, data: GANData, gan: GANSteps, device: torch.device, runs_dir: str | Path,
                  name: str | None) -> RunDir:
    """The run directory and what the run starts from: config, environment, data, preprocessing, networks."""
    kind = "gan-mlp" if len(data.shape) == 1 else "gan-dcgan"
    # Data-parallel: rank 0 names the run (a timestamp may differ a second between processes).
    run_dir = RunDir.create(runs_dir, from_rank0(name or unique_name(runs_dir, default_run_name(data.prepared.name, kind))))
    run_dir.write_text(run_dir.config, cfg.to_yaml())
    run_dir.write_json(run_dir.environment, environment(device, cfg.train.seed))
    run_dir.write_json(run_dir.data, data.prepared.summary)
    run_dir.write_files(data.prepared.preprocessor.files())
    g = sum(p.numel() for p in gan.generator.parameters())
    d = sum(p.numel() for p in gan.discriminator.parameters())
    run_dir.write_json(run_dir.model_info, {
        "type": kind, "input_shape": list(data.shape), "out_features": 1, "parameters": g + d,
        "generator": {"parameters": g, "latent_size": gan.latent_size}, "discriminator": {"parameters": d},
    })
    run_dir.write_json(run_dir.path / GAN_FILE, {
        "kind": data.kind, "shape": list(data.shape), "n_classes": data.n_classes, "classes": data.classes,
        "spans": data.spans, "target": data.target, "mixture": data.mixture.name if data.mixture else None,
        "latent_size": gan.latent_size,
    })
    return run_dir


def build_judge(cfg: GANRunConfig, data: GANData, run_dir: RunDir, device: torch.device, console: Console,
                replicas: Replicas | None = None) -> ImageJudge | None:
    """Images: a classifier trained by trainwright on the real training images (kept as ``classifier/``, a
    supervised run of its own, data-parallel too on several processes) judges the samples. Other data need no
    network to be judged."""
    if data.kind != "images":
        return None
    path = run_dir.path / "classifier"
    if (path / "metrics.json").is_file():  # a resumed run: the judge it trained before
        classifier, accuracy = load_run(path, device=str(device)).module, None
    else:
        classifier_cfg = validate_config({
            "data": cfg.data.model_dump(mode="json"),
            "train": {"epochs": cfg.gan.evaluate.classifier_epochs, "seed": cfg.train.seed, "device": cfg.train.device},
        })
        resume = RunDir.open(path) if (path / "config.yaml").is_file() else None  # interrupted while training the judge
        module = build_module(classifier_cfg, data.prepared)
        run = supervised.train_prepared(classifier_cfg, data.prepared, module, runs_dir=run_dir.path, name="classifier",
                                        resume=resume, console=Console(quiet=True), replicas=replicas)
        classifier, accuracy = module.to(device).eval(), run.metrics.get("test", {}).get("accuracy")  # rank 0's
    shown = f"test accuracy {accuracy:.3f}, " if accuracy is not None else ""
    console.print(f"judge of the samples: {cfg.data.source}'s classifier ({shown}{path})", highlight=False, soft_wrap=True)
    prepared = data.prepared
    real_train = prepared.x_train[:MAX_JUDGED].to(device).float() / 255
    real_test = prepared.x_test[:MAX_JUDGED].to(device).float() / 255
    return ImageJudge(classifier, real_train, real_test, cfg.gan.evaluate.n_samples, cfg.gan.evaluate.k)


def make_evaluate(cfg: GANRunConfig, data: GANData, judge: ImageJudge | None, device: torch.device):
    """The quality measures of the generator (its moving average when sampling from it), on the same z each time."""
    n, seed = cfg.gan.evaluate.n_samples, cfg.gan.sample.seed + 1
    real_rows = decode_rows(data, data.x, data.y) if data.kind == "table" else None

    def evaluate(gan: GANSteps) -> dict[str, float]:
        asked = asked_labels(data, n, device)
        x = gan.sample(n, labels=asked, ema=cfg.gan.sample.ema, generator=torch.Generator(device).manual_seed(seed))
        out = measure(cfg, data, x, asked, judge, real_rows)
        return {key: value for key, value in out.items() if isinstance(value, (int, float))}  # history.csv: numbers only

    return evaluate


def measure(cfg: GANRunConfig, data: GANData, x: torch.Tensor, asked: torch.Tensor | None, judge: ImageJudge | None,
            real_rows: pd.DataFrame | None) -> dict:
    """Every measure of generated samples ``x`` (N, ...); ``quality`` is the one the best generator is kept by."""
    if data.kind == "images":
        out = judge.judge((x.float() + 1) / 2, asked)
        # Unconditional: the weaker of coverage and the class balance (classes x the smallest class's share: 1 when
        # every class has its fair share), so the kept generator is not one that starves a class.
        balance = min(1.0, len(out["class_shares"]) * out["min_class_share"])
        return {"quality": out["asked_rate"] if asked is not None else min(out["coverage"], balance), **out}
    frame = decode_rows(data, x, asked)
    if data.kind == "points":
        mixture = data.mixture
        points = torch.tensor(frame[["x", "y"]].to_numpy(np.float64))
        q = mode_coverage(points, mixture.means, mixture.std, cfg.gan.evaluate.sigma_threshold)
        k = len(mixture.means)
        return {"quality": q.modes / k * q.high_quality, "modes": q.modes, "high_quality": q.high_quality,
                "reverse_kl": q.reverse_kl, "mode_counts": list(q.counts)}
    pre = data.prepared.preprocessor
    kinds = {**pre.kinds, **({pre.target: "numeric" if data.target == "value" else "categorical"} if pre.target in frame else {})}
    distances = column_distances(real_rows, frame, kinds)
    mean = float(np.mean([d["distance"] for d in distances.values()]))
    numeric = [c for c, kind in kinds.items() if kind == "numeric"]
    gap = 0.0
    if len(numeric) > 1:
        gap = table_quality(real_rows[numeric].to_numpy(float), frame[numeric].to_numpy(float)).correlation_gap
    return {"quality": 1 - mean, "column_distance": mean, "correlation_gap": gap, "columns": distances}


def build_callbacks(cfg: GANRunConfig, data: GANData, run_dir: RunDir, device: torch.device, console: Console,
                    replicas: Replicas | None = None) -> CallbackList:
    """The shared callbacks, unchanged, plus the sample pictures kept along the way."""
    ev, every = cfg.gan.evaluate, cfg.gan.evaluate.every_steps
    periods = math.ceil(cfg.train.steps / every)
    keep = ev.keep_best_by == "quality"
    stopping = EarlyStoppingConfig(
        enabled=keep or ev.patience is not None,
        monitor="quality",
        mode="max",
        patience=ev.patience or periods + 1,
        restore_best=keep,
    )
    return CallbackList(
        [
            EarlyStopping(stopping),
            HistoryCSV(run_dir),
            Checkpoint(run_dir, replicas=replicas),
            ProgressBar(console, periods, every, "quality"),  # an "epoch" here is an evaluation period
            SampleSnapshots(cfg, data, run_dir, device, periods),
        ]
    )


class SampleSnapshots(Callback):
    """Samples of the same z at several evaluation periods, ``samples/step_NNNNNN.png`` (the report shows them)."""

    order = 25  # after the history, before the checkpoint: pictures do not change the state

    def __init__(self, cfg: GANRunConfig, data: GANData, run_dir: RunDir, device: torch.device, periods: int):
        self.cfg, self.data, self.run_dir, self.device = cfg, data, run_dir, device
        self.periods = {round(p) for p in np.linspace(1, periods, min(SNAPSHOTS, periods))}

    def on_epoch_end(self, state, logs: dict) -> None:
        if self.run_dir.writes and (state.epoch in self.periods or state.stop_reason):
            gan = state.gan
            png = draw_samples(
                self.cfg, self.data, gan, picture_size(self.cfg, self.data), None, self.device, f"step {logs['step']:,}"
            )
            self.run_dir.write_bytes(self.run_dir.path / "samples" / f"step_{logs['step']:06d}.png", png)


def picture_size(cfg: GANRunConfig, data: GANData) -> int:
    """Samples in a picture: a grid of ``gan.sample.n`` images; points and rows as many as an evaluation draws."""
    return cfg.gan.sample.n if data.kind == "images" else max(cfg.gan.sample.n, cfg.gan.evaluate.n_samples)


def draw_samples(
    cfg: GANRunConfig,
    data: GANData,
    gan: GANSteps,
    n: int,
    label: int | None,
    device: torch.device,
    title: str,
    seed: int | None = None,
) -> bytes:
    """A picture of ``n`` samples: a grid of images (one row per class when conditional), or points or rows over the real ones."""
    seed = cfg.gan.sample.seed if seed is None else seed
    if data.n_classes and label is None:  # every class, one row each
        per = max(1, n // data.n_classes)
        labels = torch.arange(data.n_classes, device=device).repeat_interleave(per)
    else:
        labels = torch.full((n,), label, device=device) if label is not None else None
    x = gan.sample(
        len(labels) if labels is not None else n,
        labels=labels,
        ema=cfg.gan.sample.ema,
        generator=torch.Generator(device).manual_seed(seed),
    )
    if data.kind == "images":
        if data.n_classes and label is None:
            return sample_grid_png(to_pixels(x), title, columns=per, row_labels=[str(c) for c in data.classes])
        return sample_grid_png(to_pixels(x), title)
    frame = decode_rows(data, x, labels)
    real = decode_rows(data, data.x[:5000], data.y[:5000] if data.y is not None else None)
    if data.kind == "points":
        modes = data.mixture.means.numpy()
        return points_png(real[["x", "y"]].to_numpy(float), frame[["x", "y"]].to_numpy(float), title, modes)
    return table_png(real, frame, title)


def resume_from_checkpoint(fit: GANFit, run_dir: RunDir, console: Console) -> float:
    """Put the run back where its checkpoint left it; returns the seconds already trained."""
    fit.load_state_dict(load_state(run_dir.checkpoint))
    trained = fit.epoch >= fit.max_epochs
    if trained and all(path.is_file() for path in (run_dir.metrics, run_dir.report)):
        raise TrainwrightError(
            f"{run_dir.path} already trained {fit.step:,} generator steps; to train longer pass "
            f"--set train.steps=N with N > {fit.step}"
        )
    if trained:  # stopped (killed, interrupted) after its last step, before its results were all written
        console.print(f"{run_dir.path} had trained all {fit.step:,} generator steps; writing its results", highlight=False,
                      soft_wrap=True)
    else:
        console.print(f"resuming {run_dir.path} after generator step {fit.step:,}", highlight=False, soft_wrap=True)
    return sum(row["seconds"] for row in fit.history)


# ── ⑤ finish ─────────────────────────────────────────────────────────────────────────────
def finish_gan(
    cfg: GANRunConfig,
    data: GANData,
    fit: GANFit,
    judge: ImageJudge | None,
    est: GANEstimate,
    run_dir: RunDir,
    seconds: float,
    device: torch.device,
    console: Console,
) -> dict:
    """The kept generator judged on fresh samples (another z than the one it was kept by), every file written."""
    gan, n = fit.gan, cfg.gan.evaluate.n_samples
    stopper = next(cb for cb in fit.callbacks if isinstance(cb, EarlyStopping))
    asked = asked_labels(data, n, device)
    real_rows = decode_rows(data, data.x, data.y) if data.kind == "table" else None
    generator_alone = None
    if cfg.gan.sample.rejection:  # the generator's own samples measured first, then the calibration of the rejection
        x = gan.sample(n, labels=asked, ema=cfg.gan.sample.ema,
                       generator=torch.Generator(device).manual_seed(cfg.gan.sample.seed + 2), rejection=False)
        generator_alone = measure(cfg, data, x, asked, judge, real_rows)
        rejection = gan.calibrate_rejection(lambda: fit.batches.next(), cfg.gan.sample.rejection_steps,
                                            cfg.gan.sample.rejection_quantile, cfg.gan.sample.ema)
        run_dir.save_weights(rejection.discriminator, REJECTION_WEIGHTS)
        run_dir.write_json(run_dir.path / REJECTION_FILE, {"max_logit": rejection.max_logit, "gamma": rejection.gamma,
                                                           "acceptance": rejection.acceptance})
    x = gan.sample(
        n, labels=asked, ema=cfg.gan.sample.ema, generator=torch.Generator(device).manual_seed(cfg.gan.sample.seed + 2)
    )
    quality = measure(cfg, data, x, asked, judge, real_rows)
    reference = reference_measures(cfg, data, judge, quality)
    if data.kind == "table":
        quality["train_on_synthetic"] = utility(cfg, data, decode_rows(data, x, asked))
    best = stopper.best_epoch if cfg.gan.evaluate.keep_best_by == "quality" else fit.epoch
    metrics = {
        "recipe": "gan",
        "kind": data.kind,
        "task": data.prepared.task,
        "steps": fit.step,
        "epochs": fit.epoch,
        "every_steps": fit.every,
        "best_epoch": best,
        "best_step": min(best * fit.every, cfg.train.steps),
        "kept": cfg.gan.evaluate.keep_best_by,
        "train_seconds": seconds,
        "stopped_early": fit.stop_reason,
        "quality": quality,
        "reference": reference,
        **({"generator_alone": generator_alone, "rejection": {
            "steps": cfg.gan.sample.rejection_steps, "quantile": cfg.gan.sample.rejection_quantile,
            "acceptance": gan.rejection.acceptance}} if generator_alone is not None else {}),
        "compute": est.metrics(seconds, fit.step),
    }
    for key, module in fit.modules.items():
        module = module.module if key == "generator_ema" else module  # the averaged generator's own weights
        run_dir.save_weights(module, WEIGHTS[key])
    run_dir.write_json(run_dir.metrics, metrics)
    title = f"kept generator (step {metrics['best_step']:,})"
    run_dir.write_bytes(run_dir.path / "samples.png", draw_samples(cfg, data, gan, picture_size(cfg, data), None, device, title))
    if data.kind != "images":
        run_dir.write_text(
            run_dir.path / "samples.csv",
            decode_rows(data, x[: cfg.gan.sample.n], asked[: cfg.gan.sample.n] if asked is not None else None).to_csv(
                index=False
            ),
        )
    for line in quality_lines(metrics):
        console.print(line, highlight=False, soft_wrap=True)
    return metrics


def reference_measures(cfg: GANRunConfig, data: GANData, judge: ImageJudge | None, quality: dict) -> dict:
    """What real data score on the same measures: the best a generator could do."""
    if data.kind == "points":
        test = torch.tensor(decode_rows(data, data.prepared.x_test, None)[["x", "y"]].to_numpy(np.float64))
        q = mode_coverage(
            test[: cfg.gan.evaluate.n_samples], data.mixture.means, data.mixture.std, cfg.gan.evaluate.sigma_threshold
        )
        return {
            "what": f"{min(len(test), cfg.gan.evaluate.n_samples)} real test points",
            "modes": q.modes,
            "high_quality": q.high_quality,
            "reverse_kl": q.reverse_kl,
        }
    if data.kind == "images":
        return {"what": "real training vs real test images", "fid": quality["fid_floor"]}
    return {}


def utility(cfg: GANRunConfig, data: GANData, rows: pd.DataFrame) -> dict | None:
    """Train on synthetic rows, test on real ones, beside train on real rows (scikit-learn's gradient boosting)."""
    pre, prepared = data.prepared.preprocessor, data.prepared
    if pre.target not in rows or not prepared.held_out:
        return None
    x_synthetic = pre.transform(rows)
    if data.prepared.task == "regression":
        y_synthetic, y_train, y_test, task = (
            rows[pre.target].to_numpy(float),
            pre.decode_target(prepared.y_train.numpy()),
            pre.decode_target(prepared.y_test.numpy()),
            "regression",
        )
    else:
        y_synthetic = pre.encode_target(pd.Series(rows[pre.target].tolist(), name=pre.target))
        y_train, y_test, task = prepared.y_train.numpy(), prepared.y_test.numpy(), "classification"
        if len(np.unique(y_synthetic)) < 2:
            return {"synthetic": None, "real": None, "metric": "accuracy", "note": "the generated rows hold one class only"}
    result = synthetic_utility(
        x_synthetic, y_synthetic, prepared.x_train.numpy(), y_train, prepared.x_test.numpy(), y_test, task, seed=cfg.train.seed
    )
    return vars(result)


def quality_lines(metrics: dict) -> list[str]:
    """The kept generator's measures in a few console lines."""
    q, ref = metrics["quality"], metrics["reference"]
    head = [(f"kept generator: step {metrics['best_step']:,} of {metrics['steps']:,} ({metrics['kept']}), "
            f"{metrics['train_seconds']:.1f} s training")]
    if "rejection" in metrics:  # the generator's own samples first, then the accepted ones the lines below measure
        alone = metrics["generator_alone"]
        if metrics["kind"] == "points":
            head.append(f"the generator alone: {alone['modes']}/{len(alone['mode_counts'])} modes covered, "
                        f"{alone['high_quality']:.1%} high quality, reverse KL {alone['reverse_kl']:.3f}")
        elif metrics["kind"] == "images":
            asked = f"classified as asked {alone['asked_rate']:.1%}; " if "asked_rate" in alone else ""
            head.append(f"the generator alone: {asked}class shares {' '.join(f'{s:.1%}' for s in alone['class_shares'])} "
                        f"(smallest {alone['min_class_share']:.1%}), FID {alone['fid']:.2f}, coverage {alone['coverage']:.2f}")
        head.append(f"discriminator rejection sampling (gan.sample.rejection): {metrics['rejection']['acceptance']:.1%} of "
                    "the generator's samples accepted; the measures below are of accepted samples")
    if metrics["kind"] == "points":
        return [
            *head,
            (f"fresh samples: {q['modes']}/{len(q['mode_counts'])} modes covered, {q['high_quality']:.1%} high quality, "
             f"reverse KL {q['reverse_kl']:.3f} (real test points: {ref['modes']} modes, {ref['high_quality']:.1%})"),
        ]
    if metrics["kind"] == "images":
        asked = f"classified as the class asked for {q['asked_rate']:.1%}; " if "asked_rate" in q else ""
        shares = " ".join(f"{s:.1%}" for s in q["class_shares"])
        return [
            *head,
            f"fresh samples: {asked}class shares {shares} (smallest {q['min_class_share']:.1%})",
            (f"FID {q['fid']:.2f} in the classifier's features (real train vs test: {q['fid_floor']:.2f}), precision "
             f"{q['precision']:.2f}, recall {q['recall']:.2f}, density {q['density']:.2f}, coverage {q['coverage']:.2f}"),
        ]
    lines = [
        *head,
        (f"fresh rows: mean per-column distance {q['column_distance']:.3f} (KS or total variation), correlation gap "
         f"{q['correlation_gap']:.3f}"),
    ]
    tstr = q.get("train_on_synthetic")
    if tstr and tstr.get("synthetic") is not None:
        lines.append(
            f"a model trained on generated rows scores {tstr['metric']} {tstr['synthetic']:.3f} on the real test rows "
            f"(trained on real rows: {tstr['real']:.3f})"
        )
    return lines


# ── `trainwright sample` ─────────────────────────────────────────────────────────────────
def sample_run(
    run_dir: str | Path, n: int, output: str | Path, label: str | None = None, ema: bool | None = None, seed: int | None = None
) -> Path:
    """Draw ``n`` samples from a finished GAN run into ``output``: a .png (a grid of images, or points or rows
    over the real ones) or a .csv (tables and points, in original units and categories).

    Example:
        >>> sample_run("runs/digits-images-gan-dcgan-20260101-120000", 64, "samples.png", label="3")
    """
    run = RunDir.open(run_dir)
    raw = read_raw(run.config)
    if raw.get("recipe") != "gan":
        raise TrainwrightError(
            f"{run.path} is not a GAN run (its config has no recipe: gan); sample draws from a GAN's generator"
        )
    cfg = validate_gan_config(raw)
    facts = run.read_json(run.path / GAN_FILE)
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in (".png", ".csv"):
        raise TrainwrightError(f"-o {output}: write samples to a .png (a picture) or a .csv (the rows)")
    if suffix == ".csv" and facts["kind"] == "images":
        raise TrainwrightError(f"{run.path} generates images: write them as a grid with -o samples.png")
    data = rebuilt_data(run, cfg, facts, with_real=suffix == ".png")
    index = None
    if label is not None:
        if not data.n_classes:
            raise TrainwrightError(f"--class needs a class-conditional run; {run.path} was trained with gan.conditional: false")
        names = [str(c) for c in data.classes]
        if str(label) not in names:
            raise TrainwrightError(f"--class {label!r} is not one of the run's classes: {', '.join(names)}")
        index = names.index(str(label))
    gan = rebuilt_gan(run, cfg, data, facts, ema if ema is not None else cfg.gan.sample.ema)
    seed = cfg.gan.sample.seed if seed is None else seed
    if suffix == ".png":
        png = draw_samples(cfg, data, gan, n, index, torch.device("cpu"), f"{n} samples from {run.path.name}", seed)
        write_file(output, png)
    else:
        labels = torch.full((n,), index) if index is not None else asked_labels(data, n, torch.device("cpu"))
        x = gan.sample(n, labels=labels, ema=False, generator=torch.Generator().manual_seed(seed))
        write_file(output, decode_rows(data, x, labels).to_csv(index=False).encode())
    return output


def rebuilt_data(run: RunDir, cfg: GANRunConfig, facts: dict, with_real: bool) -> GANData:
    """What decoding needs, from the run directory alone (the real rows are read again for a picture over them)."""
    pre = load_preprocessor(run.path)
    shape, kind = tuple(facts["shape"]), facts["kind"]
    empty = torch.zeros(0, *shape)
    prepared = _Prepared(pre, run.read_json(run.data).get("name", ""))
    data = GANData(
        kind,
        prepared,
        empty,
        None,
        shape,
        facts["n_classes"],
        facts["classes"],
        [tuple(s) for s in facts["spans"]],
        facts["target"],
        MIXTURES[facts["mixture"]] if facts["mixture"] else None,
    )
    if kind != "images" and with_real:  # real rows to draw the samples over
        try:
            data.x = load_gan_data(cfg, Console(quiet=True)).x
        except TrainwrightError:
            data.x = empty  # the data moved: the samples are drawn alone
    return data


@dataclass
class _Prepared:
    """The part of a prepared data set that decoding reads, for a run loaded from its directory."""

    preprocessor: object
    name: str
    task: str = ""
    held_out: bool = False


def rebuilt_gan(run: RunDir, cfg: GANRunConfig, data: GANData, facts: dict, ema: bool) -> GANSteps:
    """The run's generator (its moving average when ``ema`` and the run kept one), ready to sample on the CPU."""
    gan_cfg = cfg.gan.model_copy(update={"latent_size": facts["latent_size"], "ema": None})
    generator = build_generator(gan_cfg, data.shape, data.n_classes)
    if data.spans:
        generator = OneHotBlocks(generator, data.spans)
    path = run.path / (
        WEIGHTS["generator_ema"] if ema and (run.path / WEIGHTS["generator_ema"]).is_file() else WEIGHTS["generator"]
    )
    if not path.is_file():
        raise TrainwrightError(f"{run.path} has no {path.name}; the run did not finish (resume it with --resume {run.path})")
    generator.load_state_dict(load_file(str(path)))
    gan = GANSteps(generator, build_discriminator(gan_cfg, data.shape, data.n_classes), gan_cfg, data.n_classes)
    calibrated = run.path / REJECTION_WEIGHTS
    if cfg.gan.sample.rejection and ema == cfg.gan.sample.ema and calibrated.is_file():  # the generator it was calibrated on
        discriminator = build_discriminator(gan_cfg, data.shape, data.n_classes)
        discriminator.load_state_dict(load_file(str(calibrated)))
        constants = run.read_json(run.path / REJECTION_FILE)
        gan.rejection = Rejection(discriminator.eval(), constants["max_logit"], constants["gamma"], constants["acceptance"])
    return gan


def write_file(path: Path, content: bytes) -> None:
    try:
        atomic_write(path, content)
    except OSError as error:
        raise TrainwrightError(f"cannot write {path}: {error.strerror}") from None
