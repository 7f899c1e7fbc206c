import pytest
import torch
from torch import nn

from trainwright.configure import load_config
from trainwright.data.image_input import ImageInput
from trainwright.errors import TrainwrightError
from trainwright.models.cnn import CNNConfig
from trainwright.models.cnn import build as build_cnn
from trainwright.models.registry import build_model
from trainwright.models.resnet import BasicBlock, ResNetConfig
from trainwright.models.resnet import build as build_resnet


def test_cnn_stages_pool_between_and_end_in_global_average_pooling():
    model = build_cnn(CNNConfig(widths=[8, 16, 32], convs=2, dropout=0.1), (3, 32, 32), 5)
    kinds = [type(m).__name__ for m in model]
    assert kinds.count("Conv2d") == 6 and kinds.count("BatchNorm2d") == 6 and kinds.count("MaxPool2d") == 2
    assert kinds[-4:] == ["AdaptiveAvgPool2d", "Flatten", "Dropout", "Linear"]
    assert all(not m.bias for m in model if isinstance(m, nn.Conv2d))  # redundant before BatchNorm
    assert model(torch.randn(4, 3, 32, 32)).shape == (4, 5)
    # Global average pooling: the same weights take another image size.
    assert model(torch.randn(2, 3, 20, 24)).shape == (2, 5)


def test_cnn_never_pools_below_one_pixel_and_checks_its_input():
    model = build_cnn(CNNConfig(widths=[4, 4, 4, 4, 4]), (1, 8, 8), 10)
    assert sum(isinstance(m, nn.MaxPool2d) for m in model) == 3  # 8 -> 4 -> 2 -> 1, then no more
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(TrainwrightError, match="needs images"):
        build_cnn(CNNConfig(), (64,), 10)


def test_channels_last_is_used_where_asked():
    on = build_cnn(CNNConfig(widths=[8]), (3, 16, 16), 2)
    off = build_cnn(CNNConfig(widths=[8], channels_last=False), (3, 16, 16), 2)
    conv_on = next(m for m in on if isinstance(m, nn.Conv2d))
    conv_off = next(m for m in off if isinstance(m, nn.Conv2d))
    assert conv_on.weight.is_contiguous(memory_format=torch.channels_last)
    assert conv_off.weight.is_contiguous() and not conv_off.weight.is_contiguous(memory_format=torch.channels_last)


def test_resnet_blocks_strides_and_identity_start():
    torch.manual_seed(0)
    model = build_resnet(ResNetConfig(widths=[8, 16], blocks=2), (3, 16, 16), 3)
    blocks = [m for m in model if isinstance(m, BasicBlock)]
    assert len(blocks) == 4
    assert [b.conv1.stride[0] for b in blocks] == [1, 1, 2, 1]
    assert isinstance(blocks[0].shortcut, nn.Identity) and not isinstance(blocks[2].shortcut, nn.Identity)
    # Zero-initialized last BatchNorm: each block starts as act(x + shortcut(x)).
    x = torch.randn(2, 8, 16, 16)
    blocks[1].eval()
    assert torch.allclose(blocks[1](x), torch.relu(x))
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 3)


def test_resnet_large_stem_for_large_images():
    small = build_resnet(ResNetConfig(widths=[8], blocks=1), (3, 32, 32), 2)
    large = build_resnet(ResNetConfig(widths=[8], blocks=1), (3, 96, 96), 2)
    assert not any(isinstance(m, nn.MaxPool2d) for m in small)
    assert any(isinstance(m, nn.MaxPool2d) for m in large)
    assert next(m for m in large if isinstance(m, nn.Conv2d)).kernel_size == (7, 7)
    assert large(torch.randn(2, 3, 96, 96)).shape == (2, 2)


def test_registry_and_config_know_the_image_families():
    for family in ("cnn", "resnet"):
        cfg = load_config({"data": {"source": "iris"}, "model": {"type": family, "widths": [4]}})
        assert build_model(cfg.model, (1, 8, 8), 3)(torch.zeros(2, 1, 8, 8)).shape == (2, 3)
    with pytest.raises(TrainwrightError, match="kernel_size must be odd"):
        load_config({"data": {"source": "iris"}, "model": {"type": "cnn", "kernel_size": 4}})


def test_image_input_normalizes_uint8_and_unit_floats_alike():
    stage = ImageInput([0.5, 0.25, 0.0], [0.5, 0.25, 1.0])
    pixels = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    as_uint8, as_float = stage(pixels), stage(pixels.float() / 255)
    assert torch.allclose(as_uint8, as_float, atol=1e-6)
    assert torch.allclose(as_uint8[0, :, 0, 0], torch.tensor([-1.0, -0.2, 1.0]), atol=1e-6)
    assert set(dict(stage.named_buffers())) == {"mean", "std"}  # saved with the weights
