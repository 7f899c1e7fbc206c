"""Issue 16's quality bars for the GAN core, and its speed against a hand-written GAN loop.

Every GAN here is built from ``GANConfig()``'s defaults (the settings this benchmark chose) under each
built-in mixture's own ``gan:`` defaults, as ``trainwright train --data grid`` uses them (the grid: torch's
MLP init and discriminator rejection sampling, whose accepted samples are scored, the generator's own
printed beside them); only the number of generator steps and the batch size are set per data set (the
mixtures: each one's own ``train.steps`` default, the ring 10,000, the grid 100,000; batch 256).

- mixtures: the 8-Gaussian ring and the 25-Gaussian grid (PacGAN's protocol: 2,500 samples, a sample
  is high quality within 3 stds of its nearest mode, a mode is covered with one such sample), seeds
  0-4, per seed and mean, ``--jobs`` seeds at a time (2: about 25 min for the grid on a quiet 2-core machine).
  Bars: ring >= 7.8 modes and >= 90% high quality; grid >= 24 and >= 90%.
- digits: sklearn's 8x8 digits as 1x8x8 images (80/20 split, stratified). A small CNN trained on the
  real training images judges a class-conditional GAN (share of samples classified as the class asked
  for; bar >= 90%) and an unconditional one (class shares of 1,000 samples; bar: all 10 present, none
  under 4%); the Fréchet distance in the CNN's features is printed beside the train-vs-test floor.
- speed: ``GANSteps`` against the same steps written by hand (same networks, data, batch, steps, Adam,
  R1, EMA and schedule), alternating runs; the ratio is the median over the pairs.

    nice -n 19 python benchmarks/gan_quality.py [--section all|mixtures|digits|speed] [--seeds 0 1 2 3 4]
        [--mixtures ring grid] [--mixture-steps N] [--jobs 2] [--mlp-init torch] [--no-rejection]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import NamedTuple

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from trainwright.config.gan import GANConfig
from trainwright.data.builtin import BUILTINS
from trainwright.data.mixtures import MIXTURES
from trainwright.evaluate.gan_quality import ModeCoverage, asked_class_rate, class_shares, image_quality, mode_coverage
from trainwright.models.gan import build_discriminator, build_generator
from trainwright.training.gan_step import GANSteps

MIXTURE_STEPS, MIXTURE_BATCH = 10_000, 256  # generator steps (one discriminator step each), samples per batch
DIGITS_STEPS, DIGITS_BATCH = 2000, 64
BARS = {"ring": (7.8, 0.90), "grid": (24.0, 0.90)}


# ── 2-D mixtures ─────────────────────────────────────────────────────────────────────────
def mixture_config(name: str, cfg: GANConfig, overrides: dict) -> GANConfig:
    """``cfg`` under the built-in mixture's own ``gan:`` defaults (what `trainwright train --data grid` uses), then
    ``overrides`` (the command line's)."""
    merged = cfg.model_dump()
    for layer in (BUILTINS[name].gan_defaults.get("gan", {}), overrides):
        merged = {**merged, **layer, "sample": {**merged["sample"], **layer.get("sample", {})}}
    return GANConfig.model_validate(merged)


class MixtureFit(NamedTuple):
    quality: ModeCoverage  # of the samples `trainwright sample` draws (accepted ones with gan.sample.rejection)
    generator_alone: ModeCoverage | None  # with rejection: the generator's own samples of the same z
    acceptance: float | None
    gan: GANSteps


def fit_mixture(name: str, seed: int, cfg: GANConfig, steps: int = MIXTURE_STEPS, batch: int = MIXTURE_BATCH) -> MixtureFit:
    """Train a GAN on one mixture from ``seed`` and score 2,500 samples of its moving average; with
    ``cfg.sample.rejection``, calibrate discriminator rejection sampling and score 2,500 accepted samples too.

    The points are standardized per column (mean and std of a first draw of 10,000), as trainwright
    prepares every numeric table, and the samples mapped back before scoring.
    """
    mixture = MIXTURES[name]
    torch.manual_seed(seed)
    gan = GANSteps(build_generator(cfg, (2,)), build_discriminator(cfg, (2,)), cfg, total_steps=steps)
    batches = mixture.batches(batch, seed=seed)
    first = mixture.sample(10_000, seed=seed + 1000)
    mean, std = first.mean(dim=0), first.std(dim=0)  # (2,), (2,)
    for _ in range(steps):
        for _ in range(cfg.d_steps):
            gan.d_step((next(batches) - mean) / std)
        gan.g_step(batch)
    alone = gan.sample(2500, generator=torch.Generator().manual_seed(seed), rejection=False) * std + mean
    if not cfg.sample.rejection:
        return MixtureFit(mode_coverage(alone, mixture.means, mixture.std), None, None, gan)
    rejection = gan.calibrate_rejection(lambda: ((next(batches) - mean) / std, None), cfg.sample.rejection_steps,
                                        cfg.sample.rejection_quantile)
    accepted = gan.sample(2500, generator=torch.Generator().manual_seed(seed)) * std + mean
    return MixtureFit(mode_coverage(accepted, mixture.means, mixture.std), mode_coverage(alone, mixture.means, mixture.std),
                      rejection.acceptance, gan)


def mixture_steps(name: str) -> int:
    """The built-in mixture's own ``train.steps`` default (what `trainwright train --data grid` trains), else 10,000."""
    return BUILTINS[name].gan_defaults.get("train", {}).get("steps", MIXTURE_STEPS)


def seed_line(name: str, seed: int, cfg: GANConfig, steps: int) -> tuple[str, ModeCoverage]:
    """One seed's fit on one mixture, as the line the benchmark prints (run in a worker process of its own)."""
    torch.set_num_threads(1)
    started = time.perf_counter()
    fit = fit_mixture(name, seed, cfg, steps)
    q = fit.quality
    alone = "" if fit.generator_alone is None else (
        f"; generator alone {fit.generator_alone.modes} modes, {fit.generator_alone.high_quality:.1%}, "
        f"rejection accepts {fit.acceptance:.1%}")
    return (f"{name} seed {seed}: modes {q.modes}/{len(q.counts)}, high quality {q.high_quality:.1%}, "
            f"reverse KL {q.reverse_kl:.3f}{alone} ({time.perf_counter() - started:.0f} s)"), q


def mixtures(
    names: list[str], seeds: list[int], cfg: GANConfig, steps: int | None = None, overrides: dict | None = None,
    jobs: int = 1,
) -> bool:
    """Each mixture over ``seeds`` (``jobs`` seeds at a time, each in a process of its own on one thread); ``steps``
    None: the mixture's own default (``mixture_steps``)."""
    passed = True
    for name in names:
        modes_bar, quality_bar = BARS[name]
        mixture_cfg = mixture_config(name, cfg, overrides or {})
        name_steps = steps or mixture_steps(name)
        print(f"{name}: gan.mlp_init {mixture_cfg.mlp_init}, gan.sample.rejection {mixture_cfg.sample.rejection}, "
              f"{name_steps:,} steps of batch {MIXTURE_BATCH}", flush=True)
        results = []
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for line, q in pool.map(seed_line, *zip(*[(name, seed, mixture_cfg, name_steps) for seed in seeds])):
                results.append(q)
                print(line, flush=True)
        modes = statistics.mean(q.modes for q in results)
        quality = statistics.mean(q.high_quality for q in results)
        ok = modes >= modes_bar and quality >= quality_bar
        passed &= ok
        print(f"{name} mean over {len(seeds)} seeds: modes {modes:.1f}, high quality {quality:.1%} "
              f"(bar: >= {modes_bar} and >= {quality_bar:.0%}) {'PASS' if ok else 'FAIL'}", flush=True)
    return passed


# ── digits ───────────────────────────────────────────────────────────────────────────────
def digits_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """sklearn's digits as (N, 1, 8, 8) floats in [-1, 1] (values 0..16), split 80/20 stratified."""
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 8 - 1
    labels = torch.tensor(digits.target)
    x_train, x_test, y_train, y_test = train_test_split(images, labels, test_size=0.2, stratify=labels, random_state=seed)
    return x_train, x_test, y_train, y_test


def shift(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image moved by up to one pixel in each direction (background fill), (B, 1, 8, 8)."""
    batch, _, height, width = images.shape
    padded = F.pad(images, (1, 1, 1, 1), value=-1.0)  # (B, 1, H + 2, W + 2)
    dy, dx = torch.randint(3, (2, batch), generator=generator)
    rows = (dy[:, None] + torch.arange(height))[:, :, None]  # (B, H, 1)
    cols = (dx[:, None] + torch.arange(width))[:, None, :]  # (B, 1, W)
    return padded[torch.arange(batch)[:, None, None], 0, rows, cols][:, None]


def digits_classifier(x_train: torch.Tensor, y_train: torch.Tensor, epochs: int = 30, seed: int = 0) -> nn.Module:
    """A small CNN trained on the real training digits (shifted by up to a pixel); 128 penultimate features."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 4, 4)
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(64 * 16, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10),
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(x_train), 64):
            index = order[start : start + 64]
            loss = F.cross_entropy(net(shift(x_train[index], generator)), y_train[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return net.eval()


def fit_digits(x_train: torch.Tensor, y_train: torch.Tensor, cfg: GANConfig, seed: int, steps: int = DIGITS_STEPS) -> GANSteps:
    """A DCGAN on the training digits, class-conditional when ``cfg.conditional``; epochs of shuffled batches."""
    n_classes = 10 if cfg.conditional else 0
    torch.manual_seed(seed)
    shape = tuple(x_train.shape[1:])
    gan = GANSteps(build_generator(cfg, shape, n_classes), build_discriminator(cfg, shape, n_classes), cfg, n_classes, steps)
    generator, step = torch.Generator().manual_seed(seed), 0
    while step < steps:
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(x_train) - DIGITS_BATCH + 1, DIGITS_BATCH * cfg.d_steps):
            for d in range(cfg.d_steps):
                index = order[start + d * DIGITS_BATCH : start + (d + 1) * DIGITS_BATCH]
                labels = y_train[index] if n_classes else None
                gan.d_step(x_train[index], labels)
            gan.g_step(DIGITS_BATCH, labels)
            step += 1
            if step == steps:
                break
    return gan


def digits(seed: int, cfg: GANConfig) -> bool:
    x_train, x_test, y_train, y_test = digits_data()
    started = time.perf_counter()
    cnn = digits_classifier(x_train, y_train)
    with torch.no_grad():
        accuracy = (cnn(x_test).argmax(1) == y_test).double().mean().item()
    print(f"digits classifier: test accuracy {accuracy:.1%} ({time.perf_counter() - started:.0f} s)", flush=True)

    started = time.perf_counter()
    gan = fit_digits(x_train, y_train, cfg.model_copy(update={"conditional": True}), seed)
    asked = torch.arange(10).repeat(100)  # 100 samples of each class
    samples = gan.sample(1000, labels=asked, generator=torch.Generator().manual_seed(seed))
    rate = asked_class_rate(cnn, samples, asked)
    quality = image_quality(cnn, x_train, x_test, samples)
    conditional_ok = rate >= 0.90
    print(f"digits conditional seed {seed}: classified as the class asked for {rate:.1%} (bar >= 90%) "
          f"{'PASS' if conditional_ok else 'FAIL'}; FID {quality.fid:.2f} (train-vs-test floor {quality.fid_floor:.2f}), "
          f"precision {quality.precision:.2f}, recall {quality.recall:.2f}, density {quality.density:.2f}, "
          f"coverage {quality.coverage:.2f} ({time.perf_counter() - started:.0f} s)", flush=True)

    started = time.perf_counter()
    gan = fit_digits(x_train, y_train, cfg.model_copy(update={"conditional": False}), seed)
    samples = gan.sample(1000, generator=torch.Generator().manual_seed(seed))
    shares = class_shares(cnn, samples, 10)
    quality = image_quality(cnn, x_train, x_test, samples)
    unconditional_ok = bool((shares > 0).all() and shares.min() >= 0.04)
    print(
        f"digits unconditional seed {seed}: class shares of 1000 samples {' '.join(f'{s:.1%}' for s in shares.tolist())}; "
        f"smallest {shares.min():.1%} (bar: all 10, none under 4%) {'PASS' if unconditional_ok else 'FAIL'}; "
        f"FID {quality.fid:.2f} (floor {quality.fid_floor:.2f}), precision {quality.precision:.2f}, recall {quality.recall:.2f}, "
        f"density {quality.density:.2f}, coverage {quality.coverage:.2f} ({time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    return conditional_ok and unconditional_ok


# ── speed ────────────────────────────────────────────────────────────────────────────────
def hand_written(cfg: GANConfig, data: list[torch.Tensor], steps: int) -> float:
    """The same training written out by hand: Adam, non-saturating loss (with R1 when ``cfg.r1``), EMA and linear
    decay; seconds."""
    torch.manual_seed(0)
    generator, discriminator = build_generator(cfg, (2,)), build_discriminator(cfg, (2,))
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr_g, betas=cfg.betas, fused=True)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr_d, betas=cfg.betas, fused=True)
    ema = AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
    start = cfg.decay_from * steps
    decay = [
        torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1.0 if s < start else (steps - s) / (steps - start))
        for o in (opt_g, opt_d)
    ]
    batch = len(data[0])
    started = time.perf_counter()
    for step in range(steps):
        real = data[step].requires_grad_(cfg.r1 > 0)
        with torch.no_grad():
            fake = generator(torch.randn(batch, generator.latent_size))
        d_real, d_fake = discriminator(real), discriminator(fake)
        loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        if cfg.r1:
            (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
            loss_d = loss_d + cfg.r1 / 2 * grad.square().sum(1).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = F.softplus(-discriminator(generator(torch.randn(batch, generator.latent_size)))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        ema.update_parameters(generator)
        for schedule in decay:
            schedule.step()
    assert torch.isfinite(loss_d) and torch.isfinite(loss_g)
    return time.perf_counter() - started


def with_steps(cfg: GANConfig, data: list[torch.Tensor], steps: int) -> float:
    torch.manual_seed(0)
    gan = GANSteps(build_generator(cfg, (2,)), build_discriminator(cfg, (2,)), cfg, total_steps=steps)
    batch = len(data[0])
    started = time.perf_counter()
    for step in range(steps):
        out = gan.d_step(data[step])
        loss_g = gan.g_step(batch)
    assert torch.isfinite(out.loss) and torch.isfinite(loss_g)
    return time.perf_counter() - started


def speed(cfg: GANConfig, steps: int = 300, repeats: int = 5) -> float:
    assert cfg.loss == "non_saturating" and cfg.ema and cfg.pack == 1 and cfg.d_steps == 1, (
        "hand_written mirrors these"
    )
    batches = MIXTURES["ring"].batches(MIXTURE_BATCH, seed=0)
    data = [next(batches) for _ in range(steps)]
    hand_written(cfg, data, 50), with_steps(cfg, data, 50)  # warm-up
    ratios = []
    for repeat in range(repeats):
        hand, ours = hand_written(cfg, data, steps), with_steps(cfg, data, steps)
        ratios.append(ours / hand)
        print(f"speed run {repeat + 1}: hand-written {hand:.2f} s, GANSteps {ours:.2f} s, ratio {ratios[-1]:.3f}", flush=True)
    ratio = statistics.median(ratios)
    print(f"speed: {steps} steps of batch {MIXTURE_BATCH} on the ring, GANSteps/hand-written = {ratio:.3f} "
          f"(median of {repeats} pairs; bar <= 1.05)")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=["all", "mixtures", "digits", "speed"], default="all")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--mixtures", nargs="+", choices=list(BARS), default=list(BARS))
    parser.add_argument("--mixture-steps", type=int, default=None,
                        help="generator steps per mixture run (default: the mixture's own train.steps, else 10,000)")
    parser.add_argument("--jobs", type=int, default=2, help="mixture seeds trained at once, one process of one thread each")
    parser.add_argument("--mlp-init", choices=["dcgan", "torch"], default=None,
                        help="gan.mlp_init of the mixtures' MLPs, over the mixture's own default (grid: torch, ring: dcgan)")
    parser.add_argument("--no-rejection", action="store_true", help="the grid without its gan.sample.rejection default")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = GANConfig()
    print(f"GANConfig defaults: {cfg.model_dump(exclude={'sample', 'evaluate'})}", flush=True)
    overrides = {"mlp_init": args.mlp_init} if args.mlp_init else {}
    if args.no_rejection:
        overrides["sample"] = {"rejection": False}
    if args.section in ("all", "mixtures"):
        mixtures(args.mixtures, args.seeds, cfg, args.mixture_steps, overrides, args.jobs)
    if args.section in ("all", "digits"):
        digits(args.seeds[0], cfg)
    if args.section in ("all", "speed"):
        speed(cfg)


if __name__ == "__main__":
    main()
