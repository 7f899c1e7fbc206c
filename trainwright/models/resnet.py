"""Residual network (He et al. 2016, "basic" blocks): a stem, stages of residual blocks, global
average pooling and a linear head.

Each block computes act(x + BN(conv(act(BN(conv(x)))))): the identity path lets gradients reach
early layers unchanged, so deeper networks train. Stages after the first start with stride 2
(half the resolution, a 1x1 projection on the shortcut). The last BatchNorm of every block
starts at zero (Goyal et al. 2017), so each block starts as the identity. For large images
(``stem: large``, or ``auto`` from 96 pixels) the stem is ImageNet's 7x7 stride-2 convolution and
max pool, a 4x cheaper start.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, field_validator
from torch import nn

from trainwright.config import ModelConfig
from trainwright.errors import TrainwrightError
from trainwright.models.cnn import ChannelsLast, conv_block, in_memory_format, pooled_head
from trainwright.models.init import InitScheme, initialize
from trainwright.models.mlp import ACTIVATIONS

LARGE_STEM_FROM = 96  # pixels on the shorter side


class ResNetConfig(ModelConfig):
    type: Literal["resnet"] = "resnet"
    widths: list[int] = Field([32, 64, 128], min_length=1, description="channels of each stage")
    blocks: int = Field(2, ge=1, description="residual blocks per stage")
    stem: Literal["auto", "small", "large"] = "auto"
    activation: Literal["relu", "leaky_relu", "gelu"] = "relu"
    dropout: float = Field(0.0, ge=0, lt=1, description="before the head")
    init: InitScheme = "auto"
    zero_init_residual: bool = True
    channels_last: bool = True

    @field_validator("widths")
    @classmethod
    def _positive(cls, widths: list[int]) -> list[int]:
        if any(width < 1 for width in widths):
            raise ValueError("widths must all be >= 1")
        return widths


class BasicBlock(nn.Module):
    """(B, w_in, H, W) -> (B, w_out, H/stride, W/stride)."""

    def __init__(self, width_in: int, width_out: int, stride: int, activation: str):
        super().__init__()
        self.conv1 = nn.Conv2d(width_in, width_out, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width_out)
        self.conv2 = nn.Conv2d(width_out, width_out, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width_out)
        self.act = ACTIVATIONS[activation]()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or width_in != width_out:
            self.shortcut = nn.Sequential(nn.Conv2d(width_in, width_out, 1, stride, bias=False), nn.BatchNorm2d(width_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + self.shortcut(x))


def build(cfg: ResNetConfig, input_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """A ResNet mapping (B, C, H, W) -> (B, out_features).

    Example:
        >>> build(ResNetConfig(widths=[8, 16], blocks=1), (3, 32, 32), 3)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 3])
    """
    if len(input_shape) != 3:
        raise TrainwrightError(
            f"a resnet needs images (C, H, W); these inputs have shape {input_shape}: use model.type: mlp for tables"
        )
    channels, height, width = input_shape
    large = cfg.stem == "large" or (cfg.stem == "auto" and min(height, width) >= LARGE_STEM_FROM)
    layers: list[nn.Module] = [ChannelsLast()] if cfg.channels_last else []
    if large:  # (B, C, H, W) -> (B, w0, H/4, W/4)
        layers += [*conv_block(channels, cfg.widths[0], 7, cfg.activation, True, stride=2), nn.MaxPool2d(3, 2, padding=1)]
        height, width = (height + 1) // 4, (width + 1) // 4
    else:
        layers += conv_block(channels, cfg.widths[0], 3, cfg.activation, True)
    previous = cfg.widths[0]
    for stage, stage_width in enumerate(cfg.widths):
        for block in range(cfg.blocks):
            # Halve the resolution at the start of every stage but the first, while it is >= 2.
            stride = 2 if stage > 0 and block == 0 and min(height, width) >= 2 else 1
            layers.append(BasicBlock(previous, stage_width, stride, cfg.activation))
            if stride == 2:
                height, width = (height + 1) // 2, (width + 1) // 2
            previous = stage_width
    model = nn.Sequential(*layers, *pooled_head(previous, out_features, cfg.dropout))
    initialize(model, cfg.init, cfg.activation)
    if cfg.zero_init_residual:
        for module in model.modules():
            if isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)
    return in_memory_format(model, cfg.channels_last)
