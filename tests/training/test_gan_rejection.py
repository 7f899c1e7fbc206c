"""Discriminator rejection sampling (gan.sample.rejection): the calibrated discriminator drops the samples
where the data are not, on real code paths with tiny networks."""

import pytest
import torch
from pydantic import ValidationError

from trainwright.config.gan import GANConfig, GANSampleConfig
from trainwright.models.gan import build_discriminator, build_generator
from trainwright.training.gan_rejection import Rejection, acceptance_constants
from trainwright.training.gan_step import GANSteps


def test_acceptance_is_monotone_in_the_logit_and_gamma_raises_it():
    logits = torch.linspace(-10, 3, 50)
    m, gamma, rate = acceptance_constants(logits, 0.5)
    assert m == pytest.approx(3.0) and 0 < rate < 1
    shifted = Rejection(None, m, gamma).accept_probability(logits)
    exact = Rejection(None, m, 0.0).accept_probability(logits)
    assert torch.all(shifted[1:] >= shifted[:-1]) and torch.all(exact[1:] >= exact[:-1])
    assert shifted.mean() > exact.mean()  # gamma < 0 here: the shift trades exactness for acceptance
    assert float(exact[-1]) > 0.999 and float(exact[0]) < 1e-3


def test_calibrated_rejection_keeps_the_samples_where_the_data_are():
    """The real points are the generator's own samples on the right half only; after calibration the accepted samples
    lie mostly there, far more than the generator's own half, and `sample` draws until n are accepted."""
    cfg = GANConfig(latent_size=2, g_hidden=[16], d_hidden=[32, 32], mlp_init="torch", lr_d=1e-2, ema=None)
    torch.manual_seed(0)
    gan = GANSteps(build_generator(cfg, (2,)), build_discriminator(cfg, (2,)), cfg)
    g = torch.Generator().manual_seed(1)
    centre = gan.sample(4000, generator=g, rejection=False)[:, 0].median()

    def real():  # (128, 2) of the generator's samples right of its median
        x = gan.sample(512, generator=g, rejection=False)
        return x[x[:, 0] > centre][:128], None

    right = lambda x: float((x[:, 0] > centre).double().mean())
    raw = gan.sample(1000, generator=torch.Generator().manual_seed(2), rejection=False)
    rejection = gan.calibrate_rejection(real, steps=150, quantile=0.0, burn_in=2000)
    assert 0.2 < rejection.acceptance < 0.9
    kept = gan.sample(1000, generator=torch.Generator().manual_seed(2))
    assert kept.shape == (1000, 2)
    assert right(raw) < 0.6 and right(kept) > 0.85
    assert torch.equal(gan.sample(5, generator=torch.Generator().manual_seed(3)),
                       gan.sample(5, generator=torch.Generator().manual_seed(3)))  # seeded: the same draws
    assert all(p.requires_grad for p in gan.discriminator.parameters())  # the training discriminator is untouched


def test_rejection_needs_single_samples():
    with pytest.raises(ValidationError, match="gan.pack: 1"):
        GANConfig(pack=2, sample=GANSampleConfig(rejection=True))
