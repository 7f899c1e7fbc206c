"""What went wrong in a GAN's training, in words, with remedies that name keys of the ``gan:`` section.

``diagnose_gan`` is a pure function over a GAN run's history (one row per evaluation period: both
losses, the discriminator's mean logits on real and generated samples, the generator's gradient norm,
the quality measures) and its final metrics. Findings have the shape of the supervised diagnosis
(``evaluate/diagnose.py``): ``{"kind", "epoch", "evidence", "remedies"}``, ``epoch`` being the
evaluation period, and the evidence naming generator steps.

- ``mode_collapse``: the generator covers few of the data's modes (mixtures), leaves classes out or
  covers little of the real images (images), while its samples are otherwise near the data.
- ``discriminator_wins``: the discriminator's loss near zero, its logits far apart, and the generator's
  gradients vanishing: the generator no longer learns.
- ``oscillation``: the quality measure swings up and down over the second half without passing its best
  of the first half: the players circle the equilibrium instead of settling.
- ``diverged``: the losses became NaN or infinite.

Example:
    >>> diagnose_gan(history, metrics, loss="non_saturating")
    [{'kind': 'mode_collapse', 'epoch': 20, 'evidence': 'the kept generator covers 3 of 25 modes ...', 'remedies': [...]}]
"""

from __future__ import annotations

import itertools
import math
import statistics

# ── thresholds ─────────────────────────────────────────────────────────────────────────
MODES_COVERED = 0.75  # mixtures: fewer than this share of the modes covered ...
SOME_QUALITY = 0.05  # ... while at least this share of the samples is high quality (else it has not learned yet)
STARVED_CLASS = 0.25  # images: a class under this share of its fair share (1/K) of the samples
LOW_COVERAGE = 0.5  # images: fewer than this share of the real images have a generated neighbour ...
LOW_RECALL = 0.5  # ... and recall below this too
D_LOSS_NEAR_ZERO = 0.05  # non-saturating and hinge: the discriminator's loss below this over the last third ...
VANISHED = 0.1  # ... and the generator's gradient norm below this share of its peak in the first third
SWINGS = 3  # oscillation: at least this many reversals of the quality measure over the second half ...
SWING_SIZE = 0.05  # ... each of at least this much (quality is a share, in [0, 1]) ...
NO_PROGRESS = 0.02  # ... while the second half's best is no more than this above the first half's best
MIN_ROWS = 6  # evaluations a trend needs

REMEDIES: dict[str, list[str]] = {
    "mode_collapse": [
        ("let the discriminator see several samples at once: gan.pack: 2 to 4 (PacGAN), so a generator that repeats itself "
         "is caught"),
        "sample from the moving average of the generator: gan.ema: 0.99 with gan.sample.ema: true",
        "penalize the discriminator's slope on the data: raise gan.r1 (e.g. 0.01 to 1); or gan.loss: wgan_gp",
        "slow the generator: lower gan.lr_g (e.g. to half of gan.lr_d); with labelled data, gan.conditional: true",
    ],
    "discriminator_wins": [
        "penalize the discriminator's slope on the data: raise gan.r1 (e.g. 0.1 or 1.0), or gan.spectral_norm: true",
        "weaken it: lower gan.lr_d (e.g. half of gan.lr_g), gan.d_steps: 1, fewer or narrower layers (gan.d_hidden, gan.width)",
        "a loss whose generator gradient does not vanish when the discriminator is sure: gan.loss: hinge or wgan_gp",
    ],
    "oscillation": [
        "let the players settle: gan.lr_decay: linear (both rates fall to 0 over the last part, from gan.decay_from)",
        "smaller steps: lower gan.lr_g and gan.lr_d (e.g. 1e-4), or gan.betas: [0.5, 0.999]",
        "sample from the moving average, which smooths the circling out: gan.ema: 0.99 with gan.sample.ema: true",
        "damp the discriminator: raise gan.r1 (e.g. 0.01 to 1)",
    ],
    "diverged": [
        "lower both learning rates: gan.lr_g and gan.lr_d (e.g. 1e-4)",
        "penalize the discriminator's slope: raise gan.r1 (e.g. 0.1), or gan.spectral_norm: true",
        "a bounded loss: gan.loss: hinge",
    ],
}


def finding(kind: str, epoch: int | None, evidence: str) -> dict:
    return {"kind": kind, "epoch": epoch, "evidence": evidence, "remedies": REMEDIES[kind]}


def diagnose_gan(
    history: list[dict], metrics: dict | None, loss: str = "non_saturating", diverged: dict | None = None
) -> list[dict]:
    """Every finding the history and the final metrics support; an empty list when nothing looks wrong."""
    if diverged is not None:
        return [
            finding(
                "diverged",
                diverged.get("epoch"),
                f"the losses became NaN or infinite in evaluation period {diverged.get('epoch')}; the run stopped there",
            )
        ]
    findings = [*mode_collapse(history, metrics), *discriminator_wins(history, loss), *oscillation(history)]
    return findings


def mode_collapse(history: list[dict], metrics: dict | None) -> list[dict]:
    """Few modes (mixtures), a starved class or little coverage (images), judged on the kept generator's fresh samples."""
    quality = (metrics or {}).get("quality") or (history[-1] if history else {})
    epoch = (metrics or {}).get("best_epoch") or (history[-1]["epoch"] if history else None)
    step = (metrics or {}).get("best_step") or (history[-1].get("step") if history else None)
    where = f"the generator kept (step {step:,})" if step is not None else "the generator"
    if "modes" in quality and "high_quality" in quality:
        counts = quality.get("mode_counts")
        total = len(counts) if counts else max((row.get("modes", 0) for row in history), default=0)
        if total and quality["modes"] < MODES_COVERED * total and quality["high_quality"] >= SOME_QUALITY:
            return [
                finding(
                    "mode_collapse",
                    epoch,
                    f"{where} covers {quality['modes']} of {total} modes, though "
                    f"{quality['high_quality']:.0%} of its samples are near a mode: it has "
                    "settled on part of the data",
                )
            ]
        return []
    shares = quality.get("class_shares")
    if shares:
        smallest, fair = min(shares), 1 / len(shares)
        if smallest < STARVED_CLASS * fair:
            starved = [i for i, s in enumerate(shares) if s < STARVED_CLASS * fair]
            return [
                finding(
                    "mode_collapse",
                    epoch,
                    f"the classifier finds {len(starved)} of {len(shares)} classes in under "
                    f"{STARVED_CLASS * fair:.1%} of the samples of {where} (smallest {smallest:.1%}; "
                    f"a fair share is {fair:.1%})",
                )
            ]
    coverage, recall = quality.get("coverage"), quality.get("recall")
    if coverage is not None and recall is not None and coverage < LOW_COVERAGE and recall < LOW_RECALL:
        return [
            finding(
                "mode_collapse",
                epoch,
                f"only {coverage:.0%} of the real images have a generated neighbour "
                f"(coverage) and recall is {recall:.2f} for {where}: its samples cover "
                "little of the data",
            )
        ]
    return []


def discriminator_wins(history: list[dict], loss: str) -> list[dict]:
    """The discriminator's loss near zero over the last third while the generator's gradients have vanished."""
    if loss == "wgan_gp" or len(history) < 3 or not all("d_loss" in row and "g_grad_norm" in row for row in history):
        return []
    third = max(1, len(history) // 3)
    late, early = history[-third:], history[:third]
    d_loss = statistics.mean(row["d_loss"] for row in late)
    peak = max(row["g_grad_norm"] for row in early)
    now = statistics.mean(row["g_grad_norm"] for row in late)
    if d_loss < D_LOSS_NEAR_ZERO and peak > 0 and now < VANISHED * peak:
        last = history[-1]
        return [
            finding(
                "discriminator_wins",
                late[0]["epoch"],
                f"over the last {third} evaluations (from step {late[0].get('step', 0):,}) the discriminator's loss "
                f"averaged {d_loss:.3f}, its mean logit {last.get('d_real', math.nan):.1f} on real samples against "
                f"{last.get('d_fake', math.nan):.1f} on generated ones, and the generator's gradient norm fell to "
                f"{now / peak:.1%} of its peak: the generator no longer learns",
            )
        ]
    return []


def oscillation(history: list[dict]) -> list[dict]:
    """Over the second half, the quality measure reverses direction again and again without passing the first half's best."""
    values = [row["quality"] for row in history if isinstance(row.get("quality"), (int, float)) and math.isfinite(row["quality"])]
    if len(values) < MIN_ROWS:
        return []
    half = len(values) // 2
    first, second = values[:half], values[half:]
    moves = [b - a for a, b in itertools.pairwise(second) if abs(b - a) >= SWING_SIZE]
    reversals = sum(1 for a, b in itertools.pairwise(moves) if a * b < 0)
    if reversals >= SWINGS and max(second) <= max(first) + NO_PROGRESS:
        start = history[len(history) - len(second)]
        return [
            finding(
                "oscillation",
                start["epoch"],
                f"from step {start.get('step', 0):,} the quality measure moved between {min(second):.2f} and "
                f"{max(second):.2f}, reversing {reversals} times, without passing its best of the first half "
                f"({max(first):.2f}): the two networks circle instead of settling",
            )
        ]
    return []
