import pytest
import torch
from torch import nn

from trainwright.models.init import initialize
from trainwright.models.mlp import MLPConfig, build


def test_hidden_layers_batch_norm_dropout_and_head():
    model = build(MLPConfig(hidden=[16, 8], batch_norm=True, dropout=0.1, activation="gelu"), (5,), 3)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Linear", "BatchNorm1d", "GELU", "Dropout", "Linear", "BatchNorm1d", "GELU", "Dropout", "Linear"]
    assert model(torch.randn(4, 5)).shape == (4, 3)


def test_empty_hidden_is_one_linear_neuron():
    model = build(MLPConfig(hidden=[]), (1,), 1)
    assert isinstance(model[0], nn.Linear) and len(model) == 1
    assert sum(p.numel() for p in model.parameters()) == 2  # one weight, one bias


@pytest.mark.parametrize("scheme", ["he", "xavier", "small_normal", "auto"])
def test_init_schemes_break_symmetry(scheme):
    torch.manual_seed(0)
    model = build(MLPConfig(hidden=[32], init=scheme), (10,), 2)
    weight = model[0].weight
    assert weight.std() > 0  # units differ from each other
    assert torch.count_nonzero(model[0].bias) == 0


def test_he_and_small_normal_have_their_scale():
    torch.manual_seed(0)
    he = build(MLPConfig(hidden=[512], init="he"), (256,), 1)[0].weight
    small = build(MLPConfig(hidden=[512], init="small_normal"), (256,), 1)[0].weight
    assert he.std().item() == pytest.approx((2 / 256) ** 0.5, rel=0.05)
    assert small.std().item() == pytest.approx(0.01, rel=0.05)


def test_zeros_init_warns_about_symmetry():
    with pytest.warns(UserWarning, match="symmetry|same gradient"):
        model = build(MLPConfig(hidden=[4], init="zeros"), (3,), 2)
    assert torch.count_nonzero(model[0].weight) == 0


def test_initialize_covers_conv_layers():
    conv = nn.Sequential(nn.Conv2d(3, 8, 3))
    initialize(conv, "small_normal")
    assert conv[0].weight.std().item() == pytest.approx(0.01, rel=0.3)


def test_images_are_flattened_for_an_mlp():
    model = build(MLPConfig(hidden=[8]), (1, 8, 8), 10)
    assert isinstance(model[0], nn.Flatten)
    assert model(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
