import pytest
import torch
from torch import nn

from trainwright.config.gan import GANConfig
from trainwright.errors import TrainwrightError
from trainwright.models.gan import build_discriminator, build_generator, upsamplings

SMALL = GANConfig(latent_size=8, g_hidden=[16, 16], d_hidden=[16], width=8)


def test_mlp_shapes_for_points_and_tables():
    for features in (2, 7):
        generator, discriminator = build_generator(SMALL, (features,)), build_discriminator(SMALL, (features,))
        fake = generator(torch.randn(5, 8))
        assert fake.shape == (5, features)
        assert discriminator(fake).shape == (5,)


def test_packing_gives_one_logit_per_pack_and_sees_the_whole_pack():
    cfg = SMALL.model_copy(update={"pack": 3})
    discriminator = build_discriminator(cfg, (2,))
    x = torch.randn(6, 2, requires_grad=True)
    logits = discriminator(x)
    assert logits.shape == (2,)
    (grad,) = torch.autograd.grad(logits[0], x)
    assert grad[:3].abs().sum() > 0 and grad[3:].abs().sum() == 0  # logit 0 depends on samples 0-2 only
    with pytest.raises(ValueError, match="multiple of pack"):
        discriminator(torch.randn(4, 2))


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 16, 16), (1, 28, 28), (3, 32, 32), (3, 64, 64)])
def test_dcgan_makes_and_judges_images_from_8_to_64_pixels(shape):
    generator, discriminator = build_generator(SMALL, shape), build_discriminator(SMALL, shape)
    fake = generator(torch.randn(2, 8))
    assert fake.shape == (2, *shape)
    assert fake.abs().max() <= 1  # tanh, like images scaled to [-1, 1]
    assert discriminator(fake).shape == (2,)


def test_dcgan_doubles_from_a_4_to_7_pixel_start():
    assert [upsamplings(side, side) for side in (8, 16, 28, 32, 48, 64)] == [1, 2, 2, 3, 3, 4]


@pytest.mark.parametrize("shape", [(1, 9, 9), (1, 6, 6), (3, 128, 128), (1, 7, 14)])
def test_an_image_size_the_generator_cannot_make_says_which_to_use(shape):
    with pytest.raises(TrainwrightError, match="data.image.size"):
        build_generator(SMALL, shape)


def test_data_a_gan_cannot_model_is_refused():
    with pytest.raises(TrainwrightError, match="tables or points"):
        build_generator(SMALL, (48, 3))  # a series window


def test_conditional_networks_use_the_labels():
    for shape in ((2,), (1, 8, 8)):
        torch.manual_seed(0)
        generator = build_generator(SMALL, shape, n_classes=10).eval()
        discriminator = build_discriminator(SMALL, shape, n_classes=10)
        z = torch.randn(4, 8)
        a, b = generator(z, torch.zeros(4, dtype=torch.long)), generator(z, torch.full((4,), 7))
        assert a.shape == (4, *shape) and not torch.allclose(a, b)
        assert not torch.allclose(discriminator(a, torch.zeros(4, dtype=torch.long)), discriminator(a, torch.full((4,), 7)))
        with pytest.raises(ValueError, match="pass labels"):
            generator(z)


def test_dcgan_init_and_spectral_norm():
    torch.manual_seed(0)
    cfg = GANConfig(latent_size=64, width=64, spectral_norm=True)
    generator, discriminator = build_generator(cfg, (3, 32, 32)), build_discriminator(cfg, (3, 32, 32))
    weights = torch.cat([m.weight.flatten() for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert weights.std().item() == pytest.approx(0.02, rel=0.05)
    convs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)
    for conv in convs:  # each layer's largest singular value is ~1 after a few power iterations
        discriminator(torch.randn(4, 3, 32, 32))
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, rel=0.1)


def test_mlp_init_is_dcgans_or_torchs_default_and_convs_always_dcgans():
    # N(0, 0.02) on a 2-D input leaves the MLP discriminator too smooth to resolve PacGAN's 0.05-std modes
    torch.manual_seed(0)
    cfg = GANConfig(latent_size=16, g_hidden=[128], d_hidden=[128], width=8, mlp_init="torch")
    for net in (build_generator(cfg, (2,)), build_discriminator(cfg, (2,))):
        first = next(m for m in net.modules() if isinstance(m, nn.Linear))
        bound = 1 / first.in_features**0.5  # torch's Kaiming-uniform bound for Linear
        assert first.weight.abs().max().item() == pytest.approx(bound, rel=0.1)
    dcgan = cfg.model_copy(update={"mlp_init": "dcgan"})
    weights = torch.cat([m.weight.flatten() for m in build_discriminator(dcgan, (2,)).modules() if isinstance(m, nn.Linear)])
    assert weights.std().item() == pytest.approx(0.02, rel=0.1)
    convs = [m for m in build_discriminator(cfg, (1, 8, 8)).modules() if isinstance(m, nn.Conv2d)]
    assert torch.cat([m.weight.flatten() for m in convs]).std().item() == pytest.approx(0.02, rel=0.1)
