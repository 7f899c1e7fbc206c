"""The ``gan:`` section: how a generative adversarial network is built, trained and judged.

A leaf like the rest of the schema: it imports only pydantic and ``trainwright.config``.

Example:
    >>> cfg = GANConfig(loss="hinge", d_steps=2)
    >>> cfg.lr_g, cfg.betas, cfg.ema
    (0.0002, (0.5, 0.999), 0.99)
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from trainwright.config import Frozen


class GANSampleConfig(Frozen):
    """What ``trainwright sample`` and the report's sample grids draw."""

    n: int = Field(64, ge=1, description="samples per grid, or rows per CSV")
    ema: bool = Field(True, description="draw from the moving average of the generator when there is one")
    seed: int = Field(0, description="seed of the latent noise, so grids at different epochs show the same z")


class GANEvalConfig(Frozen):
    """The offline quality measures computed while training; the best generator by ``keep_best_by`` is kept."""

    every_steps: int = Field(500, ge=1, description="generator steps between two evaluations")
    n_samples: int = Field(2500, ge=10, description="generated samples per evaluation (2500 is PacGAN's protocol)")
    # mixtures: modes covered; images: share of samples classified as the class asked for (conditional)
    # or the smallest class share (unconditional); tables: train-on-synthetic score.
    keep_best_by: Literal["quality", "last"] = "quality"
    sigma_threshold: float = Field(3.0, gt=0, description="mixtures: a sample within this many stds of a mode is high quality")
    k: int = Field(5, ge=1, description="images: neighbours for precision/recall/density/coverage")


class GANConfig(Frozen):
    """Networks, losses and optimizers of a GAN; the defaults are the settings measured in benchmarks/gan_quality.py."""

    loss: Literal["non_saturating", "hinge", "wgan_gp"] = "non_saturating"
    gp_weight: float = Field(10.0, ge=0, description="wgan_gp: weight of the gradient penalty")
    r1: float = Field(0.001, ge=0, description="weight gamma of the R1 penalty gamma/2 * |grad D(real)|^2 (Mescheder et al. 2018); 0: off")
    d_steps: int = Field(1, ge=1, description="discriminator steps per generator step")
    lr_g: float = Field(2e-4, gt=0)
    lr_d: float = Field(2e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    lr_decay: Literal["none", "linear"] = Field("linear", description="linear: both rates fall to 0 over the last part of training")
    decay_from: float = Field(0.5, ge=0, lt=1, description="linear decay: share of the generator steps before it starts")
    spectral_norm: bool = Field(False, description="spectral normalization of every discriminator layer")
    ema: float | None = Field(0.99, gt=0, lt=1, description="decay of the generator's moving average used to sample; null: off")
    latent_size: int | Literal["auto"] = Field("auto", description="size of the noise vector z; auto: 16 for MLPs, 64 for DCGAN")
    conditional: bool = Field(False, description="feed class labels to both networks (needs a labelled target)")
    pack: int = Field(1, ge=1, description="PacGAN: the discriminator judges this many samples at once")
    # MLP networks (tables, 2-D points)
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
    def _norms_agree(self) -> GANConfig:
        if self.batch_norm_d and (self.spectral_norm or self.loss == "wgan_gp"):
            raise ValueError("batch_norm_d: true cannot be combined with spectral_norm or loss: wgan_gp (the penalty is per sample)")
        return self
