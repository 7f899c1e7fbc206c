"""A GAN run's config (``recipe: gan``): ``data``, ``gan`` (how the networks are built, trained and
judged) and ``train`` (how long, in which batches, where).

A leaf like the rest of the schema: it imports only pydantic and ``trainwright.config``.

Example:
    >>> cfg = GANConfig(loss="hinge", d_steps=2)
    >>> cfg.lr_g, cfg.betas, cfg.ema
    (0.0002, (0.5, 0.999), 0.99)
    >>> GANRunConfig.model_validate({"recipe": "gan", "data": {"source": "ring"}}).train.steps
    10000
"""

from __future__ import annotations

from typing import Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from trainwright.config.base import Device, Frozen
from trainwright.config.data import DataConfig


class GANSampleConfig(Frozen):
    """What ``trainwright sample`` and the report's sample grids draw."""

    n: int = Field(64, ge=1, description="samples per grid, or rows per CSV")
    ema: bool = Field(True, description="draw from the moving average of the generator when there is one")
    seed: int = Field(0, description="seed of the latent noise, so grids at different epochs show the same z")
    # Discriminator Rejection Sampling (Azadi et al. 2019), a sampling-time method: after training, a copy of the
    # discriminator is trained further against the kept generator, and a sample is kept with a probability its
    # logit gives (an estimate of p_data / p_generator); the final measures, samples.png/csv and `trainwright
    # sample` then show accepted samples only, and the run prints the generator's own measures beside them.
    rejection: bool = Field(False, description="discriminator rejection sampling of the kept generator's samples")
    rejection_steps: int = Field(2000, ge=0, description="rejection: discriminator steps against the fixed generator")
    rejection_quantile: float = Field(
        0.5, ge=0, lt=1, description="rejection: gamma, the share of burn-in samples whose F(x) is shifted under 0"
    )


class GANEvalConfig(Frozen):
    """The offline quality measures computed while training; the best generator by ``keep_best_by`` is kept."""

    every_steps: int = Field(500, ge=1, description="generator steps between two evaluations (one row of history.csv)")
    n_samples: int = Field(2500, ge=10, description="generated samples per evaluation (2500 is PacGAN's protocol)")
    # The quality measure, higher is better: mixtures: share of modes covered x share of high-quality
    # samples; images: share classified as the class asked for (conditional) or the weaker of the coverage of
    # the real images and the class balance (classes x the smallest class's share; unconditional); tables:
    # 1 - the mean per-column distance (KS, or total variation).
    keep_best_by: Literal["quality", "last"] = "quality"
    classifier_epochs: int = Field(30, ge=1, description="images: epochs of the classifier that judges the samples")
    patience: int | None = Field(None, ge=1, description="stop when the quality measure has not improved for this many "
                                 "evaluations; null: train every step")
    sigma_threshold: float = Field(3.0, gt=0, description="mixtures: a sample within this many stds of a mode is high quality")
    k: int = Field(5, ge=1, description="images: neighbours for precision/recall/density/coverage")


class GANConfig(Frozen):
    """Networks, losses and optimizers of a GAN; the defaults are the settings measured in benchmarks/gan_quality.py."""

    loss: Literal["non_saturating", "hinge", "wgan_gp"] = "non_saturating"
    gp_weight: float = Field(10.0, ge=0, description="wgan_gp: weight of the gradient penalty")
    r1: float = Field(
        0.001, ge=0, description="weight gamma of the R1 penalty gamma/2 * |grad D(real)|^2 (Mescheder et al. 2018); 0: off"
    )
    d_steps: int = Field(1, ge=1, description="discriminator steps per generator step")
    lr_g: float = Field(2e-4, gt=0)
    lr_d: float = Field(2e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    lr_decay: Literal["none", "linear"] = Field(
        "linear", description="linear: both rates fall to 0 over the last part of training"
    )
    decay_from: float = Field(0.5, ge=0, lt=1, description="linear decay: share of the generator steps before it starts")
    spectral_norm: bool = Field(False, description="spectral normalization of every discriminator layer")
    ema: float | None = Field(0.99, gt=0, lt=1, description="decay of the generator's moving average used to sample; null: off")
    latent_size: int | Literal["auto"] = Field("auto", description="size of the noise vector z; auto: 16 for MLPs, 64 for DCGAN")
    conditional: bool = Field(False, description="feed class labels to both networks (needs a labelled target)")
    pack: int = Field(1, ge=1, description="PacGAN: the discriminator judges this many samples at once")
    # MLP networks (tables, 2-D points)
    mlp_init: Literal["dcgan", "torch"] = Field(
        "dcgan", description="MLP weights: DCGAN's N(0, 0.02), or torch's default (Kaiming-uniform); conv nets: always DCGAN's"
    )
    g_hidden: list[int] = Field([128, 128, 128, 128], description="MLP generator: widths of the hidden layers")
    d_hidden: list[int] = Field([128, 128], description="MLP discriminator: widths of the hidden layers")
    # Convolutional networks (images, DCGAN style)
    width: int = Field(64, ge=1, description="conv: channels next to the image; they double at each halving of the size")
    g_norm: Literal["batch", "layer", "none"] = Field("batch", description="normalization in the generator (DCGAN: batch)")
    batch_norm_d: bool = Field(False, description="BatchNorm in the discriminator (not with spectral_norm or wgan_gp)")
    sample: GANSampleConfig = GANSampleConfig()
    evaluate: GANEvalConfig = GANEvalConfig()

    @field_validator("g_hidden", "d_hidden")
    @classmethod
    def _positive(cls, widths: list[int]) -> list[int]:
        if not widths or any(width < 1 for width in widths):
            raise ValueError("hidden widths must be a non-empty list of integers >= 1")
        return widths

    @field_validator("latent_size")
    @classmethod
    def _latent(cls, size: int | str) -> int | str:
        if isinstance(size, int) and size < 1:
            raise ValueError("latent_size must be >= 1 or auto")
        return size

    @field_validator("betas")
    @classmethod
    def _betas(cls, betas: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= beta < 1 for beta in betas):
            raise ValueError("betas must both be in [0, 1)")
        return betas

    @model_validator(mode="after")
    def _single_samples(self) -> GANConfig:
        if self.sample.rejection and self.pack != 1:
            raise ValueError("sample.rejection scores one sample at a time: set gan.pack: 1, or sample.rejection: false")
        return self

    @model_validator(mode="after")
    def _norms_agree(self) -> GANConfig:
        if self.batch_norm_d and (self.spectral_norm or self.loss == "wgan_gp"):
            raise ValueError(
                "batch_norm_d: true cannot be combined with spectral_norm or loss: wgan_gp (the penalty is per sample)"
            )
        return self


class GANTrainConfig(Frozen):
    """How long a GAN trains, in which batches, from which seed, on which device."""

    steps: int = Field(10_000, ge=1, description="generator steps (each after gan.d_steps discriminator steps)")
    batch_size: int = Field(64, ge=2, description="real samples per discriminator step, as many generated")
    seed: int = 0
    device: Device = "auto"


class GANRunConfig(Frozen):
    """A whole GAN run: ``recipe: gan`` plus the data, the GAN and the training budget."""

    recipe: Literal["gan"] = "gan"
    data: DataConfig
    gan: GANConfig = GANConfig()
    train: GANTrainConfig = GANTrainConfig()

    @model_validator(mode="after")
    def _whole_packs(self) -> GANRunConfig:
        if self.train.batch_size % self.gan.pack:
            raise ValueError(f"train.batch_size ({self.train.batch_size}) must be a multiple of gan.pack ({self.gan.pack})")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as written to the run directory's ``config.yaml``."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)
