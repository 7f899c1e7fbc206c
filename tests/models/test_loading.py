"""Strict loading: all tensors but the skipped ones, the same keys and shapes, or nothing loads."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainwright.errors import TrainwrightError
from trainwright.models.loading import load_strictly


def net(out: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, out))


def test_everything_but_the_skipped_head_loads_and_step_counters_may_be_absent():
    torch.manual_seed(0)
    source, target = net(out=10), net(out=3)
    tensors = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    head = {"3.weight", "3.bias"}
    assert load_strictly(target, tensors, head, "the weights", "") == 6  # conv weight and bias, bn weight, bias, mean, var
    assert all(torch.equal(target.state_dict()[k], v) for k, v in tensors.items() if k not in head)
    assert target[3].weight.shape == (3, 4)


def test_a_shape_or_key_that_differs_loads_nothing_and_is_named():
    target = net()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    tensors = {**net().state_dict(), "0.weight": torch.zeros(4, 1, 5, 5), "extra.weight": torch.zeros(2)}
    expected = (r"^the weights do not fit: 2 of \d+ tensors differ: 0.weight: model \[4, 1, 3, 3\] vs weights \[4, 1, 5, 5\], "
                r"extra.weight: model absent vs weights \[2\]. Check the file.$")
    with pytest.raises(TrainwrightError, match=expected):
        load_strictly(target, tensors, {"3.weight", "3.bias"}, "the weights do not fit", "Check the file")
    assert all(torch.equal(target.state_dict()[k], v) for k, v in before.items())
