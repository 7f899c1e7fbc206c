import math

import numpy as np
import pytest
import torch
from torch import nn

from trainwright.data.mixtures import MIXTURES
from trainwright.evaluate.gan_quality import (
    ImageJudge,
    PenultimateFeatures,
    asked_class_rate,
    class_shares,
    frechet_distance,
    image_quality,
    mode_coverage,
    synthetic_utility,
    table_quality,
)

RING = MIXTURES["ring"]


def test_samples_on_every_mode_cover_all_of_them():
    samples = RING.means.repeat(10, 1) + 0.005  # 80 samples, half a std off each mode
    quality = mode_coverage(samples, RING.means, RING.std)
    assert quality.modes == 8 and quality.high_quality == 1.0
    assert quality.counts == (10,) * 8 and quality.reverse_kl == pytest.approx(0.0, abs=1e-12)


def test_samples_on_one_mode_cover_one_with_the_largest_reverse_kl():
    quality = mode_coverage(RING.means[3].repeat(50, 1), RING.means, RING.std)
    assert quality.modes == 1 and quality.high_quality == 1.0
    assert quality.reverse_kl == pytest.approx(math.log(8))


def test_off_mode_junk_is_neither_high_quality_nor_coverage():
    junk = torch.tensor([[0.0, 0.0], [0.5, 0.5], [1.04, 0.0], [0.0, -1.1]])  # the last two are 4 and 10 stds off
    quality = mode_coverage(junk, RING.means, RING.std)
    assert quality.modes == 0 and quality.high_quality == 0.0 and quality.reverse_kl == math.inf
    mixed = mode_coverage(torch.cat([junk, RING.means[:2]]), RING.means, RING.std)
    assert mixed.modes == 2 and mixed.high_quality == pytest.approx(2 / 6)


def test_a_mode_needs_min_samples_to_count():
    samples = torch.cat([RING.means[0].repeat(5, 1), RING.means[1:2]])
    assert mode_coverage(samples, RING.means, RING.std).modes == 2  # PacGAN: one high-quality sample is enough
    assert mode_coverage(samples, RING.means, RING.std, min_samples=3).modes == 1


def test_real_samples_score_what_a_2d_gaussian_predicts():
    for mixture in MIXTURES.values():
        quality = mode_coverage(mixture.sample(20_000, seed=0), mixture.means, mixture.std)
        assert quality.modes == len(mixture.means)
        assert quality.high_quality == pytest.approx(1 - math.exp(-4.5), abs=0.003)  # P(chi2_2 < 9) = 0.9889
        assert quality.reverse_kl < 0.005


def classifier() -> nn.Module:
    """Class = which quarter of a 4x4 image is brightest; 4 penultimate features (the quarter sums)."""
    pool = nn.AvgPool2d(2)
    head = nn.Linear(4, 4)
    with torch.no_grad():
        head.weight.copy_(torch.eye(4) * 10)
        head.bias.zero_()
    return nn.Sequential(pool, nn.Flatten(), head)


def quarter_images(classes: torch.Tensor, noise: float = 0.1, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    images = noise * torch.randn(len(classes), 1, 4, 4, generator=generator)
    rows, cols = classes // 2, classes % 2
    for index, (row, col) in enumerate(zip(rows.tolist(), cols.tolist())):
        images[index, 0, 2 * row : 2 * row + 2, 2 * col : 2 * col + 2] += 1
    return images


def test_class_shares_and_asked_class_rate():
    asked = torch.tensor([0, 1, 2, 3] * 25)
    images = quarter_images(asked)
    net = classifier()
    assert torch.allclose(class_shares(net, images, 4), torch.full((4,), 0.25, dtype=torch.float64))
    assert asked_class_rate(net, images, asked) == 1.0
    assert asked_class_rate(net, images, (asked + 1) % 4) == 0.0
    assert class_shares(net, quarter_images(torch.zeros(10, dtype=torch.long)), 4).tolist() == [1.0, 0.0, 0.0, 0.0]


def test_penultimate_features_are_the_heads_input():
    net = classifier()
    images = quarter_images(torch.arange(4))
    features = PenultimateFeatures(net)
    assert features.num_features == 4
    assert torch.allclose(features(images), nn.AvgPool2d(2)(images).flatten(1))


def test_frechet_distance_of_identical_sets_is_zero_and_grows_with_a_shift():
    images = quarter_images(torch.arange(4).repeat(100), noise=0.3)
    features = PenultimateFeatures(classifier())
    assert frechet_distance(features, images, images) == pytest.approx(0.0, abs=1e-6)
    other = quarter_images(torch.arange(4).repeat(100), noise=0.3, seed=1)
    shifted = frechet_distance(features, images, other + 0.5)  # every feature moves by 0.5: d^2 >= 4 * 0.25
    assert 0.9 < shifted < 1.2
    assert frechet_distance(features, images, other) < 0.1


def test_image_quality_puts_the_floor_beside_the_distance():
    train = quarter_images(torch.arange(4).repeat(100), noise=0.3, seed=0)
    test = quarter_images(torch.arange(4).repeat(50), noise=0.3, seed=1)
    good = image_quality(classifier(), train, test, quarter_images(torch.arange(4).repeat(100), noise=0.3, seed=2))
    collapsed = image_quality(classifier(), train, test, quarter_images(torch.zeros(400, dtype=torch.long), noise=0.3, seed=2))
    assert good.fid < 0.1 and good.fid_floor < 0.1
    assert collapsed.fid > 10 * good.fid
    assert good.coverage > 0.8 and 0.7 < good.density < 1.3
    assert collapsed.coverage < 0.4 and collapsed.recall < 0.4 and collapsed.precision > 0.8  # sharp but one class


def test_the_judge_scores_in_the_trained_networks_features_and_leaves_it_as_it_was():
    # A classifier with dropout and BatchNorm, handed over in eval mode (as a trained run's is). The judge's FID
    # must be the plain Frechet distance of the same sets, and judging must not switch the classifier to
    # training mode or move its running statistics (the wrapper's own default mode once did both: the real
    # images' statistics were taken with dropout on, and a conditional digits GAN read FID 403 instead of 45).
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Dropout(0.5),
                        nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 4))
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.5, 0.5)
    net.eval()
    running = net[1].running_mean.clone()
    train = quarter_images(torch.arange(4).repeat(100), noise=0.3, seed=0)
    test = quarter_images(torch.arange(4).repeat(50), noise=0.3, seed=1)
    generated = quarter_images(torch.zeros(200, dtype=torch.long), noise=0.3, seed=2)
    judged = ImageJudge(net, train, test, n=200).quality(generated)
    assert not net.training and torch.equal(net[1].running_mean, running)
    direct = frechet_distance(PenultimateFeatures(net), train, generated)
    assert judged.fid == pytest.approx(direct, rel=1e-6)
    assert judged.fid_floor == pytest.approx(frechet_distance(PenultimateFeatures(net), train, test), rel=1e-6)
    net.train()  # a classifier left in training mode still gives the trained network's features, and stays so
    features = PenultimateFeatures(net)
    assert torch.equal(features(train[:8]), features(train[:8])) and net.training


def test_table_quality_separates_a_matching_table_from_a_broken_one():
    rng = np.random.default_rng(0)
    cov = [[1.0, 0.8], [0.8, 1.0]]
    real = rng.multivariate_normal([0, 0], cov, size=2000)
    good = table_quality(real, rng.multivariate_normal([0, 0], cov, size=2000))
    bad = table_quality(real, np.column_stack([rng.normal(1.0, 1.0, 2000), rng.normal(0.0, 1.0, 2000)]))
    assert max(good.ks) < 0.06 and max(good.wasserstein) < 0.1 and good.correlation_gap < 0.05
    assert bad.ks[0] > 0.3 and bad.wasserstein[0] == pytest.approx(1.0, abs=0.1) and bad.correlation_gap > 0.7


def test_synthetic_utility_scores_both_on_real_test_rows():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 3))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    useless = synthetic_utility(x[:300], rng.integers(0, 2, 300), x[:300], y[:300], x[300:], y[300:])
    assert useless.metric == "accuracy" and useless.real > 0.9 and useless.synthetic < 0.7
    regression = synthetic_utility(x[:300], x[:300, 0], x[:300], x[:300, 0], x[300:], x[300:, 0], task="regression")
    assert regression.metric == "r2" and regression.synthetic == regression.real > 0.9
