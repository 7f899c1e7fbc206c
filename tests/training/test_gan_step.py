import pytest
import torch

from trainwright.config.gan import GANConfig
from trainwright.data.mixtures import MIXTURES
from trainwright.evaluate.gan_quality import mode_coverage
from trainwright.models.gan import build_discriminator, build_generator
from trainwright.training.gan_step import GANSteps

SMALL = GANConfig(latent_size=4, g_hidden=[16], d_hidden=[16], width=8)


def make(cfg: GANConfig, shape=(2,), n_classes: int = 0, total_steps: int | None = None) -> GANSteps:
    torch.manual_seed(0)
    return GANSteps(
        build_generator(cfg, shape, n_classes), build_discriminator(cfg, shape, n_classes), cfg, n_classes, total_steps
    )


@pytest.mark.parametrize("loss", ["non_saturating", "hinge", "wgan_gp"])
def test_steps_update_only_their_own_network_and_return_device_tensors(loss):
    gan = make(SMALL.model_copy(update={"loss": loss, "r1": 1.0, "pack": 2}))
    g_before = [p.clone() for p in gan.generator.parameters()]
    d_before = [p.clone() for p in gan.discriminator.parameters()]
    out = gan.d_step(torch.randn(9, 2))  # 9 -> 8: whole packs only
    assert all(t.dim() == 0 and not t.requires_grad for t in out)
    assert all(torch.equal(a, b) for a, b in zip(g_before, gan.generator.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(d_before, gan.discriminator.parameters()))
    d_after = [p.clone() for p in gan.discriminator.parameters()]
    loss_g = gan.g_step(8)
    assert loss_g.dim() == 0 and torch.isfinite(loss_g)
    assert all(torch.equal(a, b) for a, b in zip(d_after, gan.discriminator.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(g_before, gan.generator.parameters()))
    assert all(p.requires_grad for p in gan.discriminator.parameters())  # handed back trainable


def test_moving_average_lags_the_generator_and_sample_uses_it():
    gan = make(SMALL.model_copy(update={"ema": 0.9}))
    for _ in range(5):
        gan.d_step(torch.randn(8, 2))
        gan.g_step(8)
    seed = torch.Generator().manual_seed(0)
    ema = gan.sample(6, generator=seed)
    live = gan.sample(6, ema=False, generator=torch.Generator().manual_seed(0))
    assert ema.shape == live.shape == (6, 2) and not torch.allclose(ema, live)
    assert torch.equal(ema, gan.sample(6, generator=torch.Generator().manual_seed(0)))  # eval mode: no batch dependence
    assert gan.generator.training  # left as it was


def test_conditional_sampling_and_a_state_dict_that_resumes():
    cfg = SMALL.model_copy(update={"ema": 0.5})
    gan = make(cfg, (1, 8, 8), n_classes=3, total_steps=10)
    images, labels = torch.rand(8, 1, 8, 8) * 2 - 1, torch.randint(3, (8,))
    gan.d_step(images, labels)
    gan.g_step(8, labels)
    assert gan.sample(4, labels=torch.tensor([0, 1, 2, 0])).shape == (4, 1, 8, 8)
    state = gan.state_dict()
    twin = make(cfg, (1, 8, 8), n_classes=3, total_steps=10)
    twin.load_state_dict(state)
    z = torch.Generator().manual_seed(1)
    assert torch.equal(gan.sample(4, generator=z), twin.sample(4, generator=torch.Generator().manual_seed(1)))
    assert twin.opt_g.param_groups[0]["lr"] == gan.opt_g.param_groups[0]["lr"]


def test_learning_rates_fall_linearly_to_zero_over_the_decay_share():
    gan = make(SMALL.model_copy(update={"lr_g": 1.0, "lr_d": 2.0, "decay_from": 0.5}), total_steps=10)
    rates = []
    for _ in range(10):
        rates.append((gan.opt_g.param_groups[0]["lr"], gan.opt_d.param_groups[0]["lr"]))
        gan.d_step(torch.randn(4, 2))
        gan.g_step(4)
    assert [g for g, _ in rates] == pytest.approx([1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2])
    assert [d for _, d in rates] == pytest.approx([2, 2, 2, 2, 2, 2, 1.6, 1.2, 0.8, 0.4])


def test_a_short_run_on_the_ring_covers_several_modes():
    """1000 steps of small networks (~5 s on one core): every mode is found early; precision takes longer."""
    ring = MIXTURES["ring"]
    cfg = GANConfig(latent_size=16, g_hidden=[64, 64], d_hidden=[64, 64], r1=0.01, ema=0.99)
    gan, batches, steps = make(cfg, total_steps=1000), ring.batches(128, seed=0), 1000
    for _ in range(steps):
        gan.d_step(next(batches))
        gan.g_step(128)
    quality = mode_coverage(gan.sample(2500, generator=torch.Generator().manual_seed(0)), ring.means, ring.std)
    assert quality.modes >= 6, quality
