import math

import pytest
import torch
from torch import nn

from trainwright.training.gan_losses import discriminator_loss, generator_loss, gradient_penalty, r1_penalty

REAL, FAKE = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_non_saturating_is_bce_on_logits():
    expected_d = (softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(-3.0)) / 2
    assert discriminator_loss("non_saturating", REAL, FAKE).item() == pytest.approx(expected_d)
    bce = nn.functional.binary_cross_entropy_with_logits
    assert generator_loss("non_saturating", FAKE).item() == pytest.approx(bce(FAKE, torch.ones(2)).item())


def test_hinge_and_wasserstein():
    assert discriminator_loss("hinge", REAL, FAKE).item() == pytest.approx((0 + 2.0) / 2 + (1.5 + 0) / 2)
    assert generator_loss("hinge", FAKE).item() == pytest.approx(1.25)
    assert discriminator_loss("wgan_gp", REAL, FAKE).item() == pytest.approx(-1.25 - 0.5)
    assert generator_loss("wgan_gp", FAKE).item() == pytest.approx(1.25)


def linear_critic(weight: list[float]) -> nn.Module:
    critic = nn.Linear(len(weight), 1, bias=False)
    critic.weight.data.copy_(torch.tensor([weight]))
    return critic


def test_gradient_penalty_of_a_linear_critic_is_known():
    critic = linear_critic([3.0, 4.0])  # |grad| = 5 at every point: penalty (5 - 1)^2
    penalty = gradient_penalty(lambda x: critic(x).squeeze(1), torch.randn(8, 2), torch.randn(8, 2))
    assert penalty.item() == pytest.approx(16.0)
    penalty.backward()  # differentiable in the critic's weights: d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w|
    assert torch.allclose(critic.weight.grad, torch.tensor([[2 * 4 * 3 / 5, 2 * 4 * 4 / 5]]))


def test_gradient_penalty_takes_the_norm_over_a_pack():
    critic = linear_critic([0.6, 0.0, 0.0, 0.8])  # sees two 2-D samples side by side: |grad| per pack = 1

    def packed(x):
        return critic(x.reshape(-1, 4)).squeeze(1)

    assert gradient_penalty(packed, torch.randn(6, 2), torch.randn(6, 2), pack=2).item() == pytest.approx(0.0, abs=1e-12)
    # taken per sample, the norms would be 0.6 and 0.8: ((1 - 0.6)^2 + (1 - 0.8)^2) / 2 = 0.1
    assert gradient_penalty(packed, torch.randn(6, 2), torch.randn(6, 2), pack=1).item() == pytest.approx(0.1)


def test_r1_is_the_squared_slope_on_real_samples():
    critic = linear_critic([3.0, 4.0])
    real = torch.randn(5, 2, requires_grad=True)
    assert r1_penalty(critic(real).squeeze(1), real).item() == pytest.approx(25.0)
    packed = torch.randn(6, 2, requires_grad=True)  # two samples per logit: |grad| per pack^2 = 25 + 25
    assert r1_penalty(critic(packed).squeeze(1).reshape(3, 2).sum(1), packed, pack=2).item() == pytest.approx(50.0)
