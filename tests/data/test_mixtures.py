import math

import torch

from trainwright.data.mixtures import MIXTURES


def test_ring_is_pacgans_eight_gaussians_on_the_unit_circle():
    ring = MIXTURES["ring"]
    assert ring.means.shape == (8, 2) and ring.std == 0.01
    assert torch.allclose(ring.means.norm(dim=1), torch.ones(8))
    angles = torch.atan2(ring.means[:, 1], ring.means[:, 0]) % (2 * math.pi)
    assert torch.allclose(angles.sort().values, torch.arange(8) * math.pi / 4, atol=1e-6)


def test_grid_is_pacgans_twenty_five_gaussians():
    grid = MIXTURES["grid"]
    assert grid.std == 0.05
    assert {tuple(point) for point in grid.means.tolist()} == {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}


def test_samples_lie_around_the_modes_with_the_given_spread():
    for mixture in MIXTURES.values():
        points = mixture.sample(20_000, seed=0)
        offsets = points - mixture.means[torch.cdist(points, mixture.means).argmin(dim=1)]  # (N, 2)
        assert abs(offsets.std().item() - mixture.std) < 0.05 * mixture.std
        counts = torch.bincount(torch.cdist(points, mixture.means).argmin(dim=1), minlength=len(mixture.means))
        assert counts.min() > 0.8 * len(points) / len(mixture.means)  # equal weights


def test_seeded_samples_and_batches_repeat():
    ring = MIXTURES["ring"]
    assert torch.equal(ring.sample(50, seed=3), ring.sample(50, seed=3))
    assert not torch.equal(ring.sample(50, seed=3), ring.sample(50, seed=4))
    first, second = ring.batches(32, seed=1), ring.batches(32, seed=1)
    a, b = next(first), next(first)
    assert torch.equal(a, next(second)) and not torch.equal(a, b)
