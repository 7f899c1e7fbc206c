"""Convolutional network: stages of [Conv -> BatchNorm -> activation] x ``convs``, pooling between
stages, then global average pooling and a linear head.

Each stage after the first halves the resolution (2x2 pooling) while the widths grow, the
classic VGG-style trade of space for channels; global average pooling makes the head
independent of the image size. Input (B, C, H, W) float, normalized by the model's
``ImageInput``; output (B, out_features) logits.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, field_validator
from torch import nn

from trainwright.config import ModelConfig
from trainwright.errors import TrainwrightError
from trainwright.models.init import InitScheme, initialize
from trainwright.models.mlp import ACTIVATIONS


class CNNConfig(ModelConfig):
    type: Literal["cnn"] = "cnn"
    widths: list[int] = Field([32, 64, 128], min_length=1, description="channels of each stage")
    convs: int = Field(2, ge=1, description="conv blocks per stage")
    kernel_size: int = Field(3, ge=1, description="odd, so 'same' padding keeps the size")
    activation: Literal["relu", "leaky_relu", "gelu", "tanh", "sigmoid"] = "relu"
    batch_norm: bool = True
    pool: Literal["max", "avg"] = "max"
    dropout: float = Field(0.2, ge=0, lt=1, description="before the head")
    init: InitScheme = "auto"
    channels_last: bool = True  # NHWC: faster convolutions with oneDNN on CPUs and tensor cores on GPUs

    @field_validator("widths")
    @classmethod
    def _positive(cls, widths: list[int]) -> list[int]:
        if any(width < 1 for width in widths):
            raise ValueError("widths must all be >= 1")
        return widths

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, size: int) -> int:
        if size % 2 == 0:
            raise ValueError("kernel_size must be odd (3, 5, ...)")
        return size


class ChannelsLast(nn.Module):
    """(B, C, H, W) in channels-last memory order; the values and shape are unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last)


def conv_block(
    width_in: int, width_out: int, kernel_size: int, activation: str, batch_norm: bool, stride: int = 1
) -> list[nn.Module]:
    """Conv -> [BatchNorm] -> activation; the conv bias is redundant before BatchNorm."""
    layers: list[nn.Module] = [nn.Conv2d(width_in, width_out, kernel_size, stride, padding=kernel_size // 2, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(width_out))
    layers.append(ACTIVATIONS[activation]())
    return layers


def build(cfg: CNNConfig, input_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """A CNN mapping (B, C, H, W) -> (B, out_features).

    Example:
        >>> build(CNNConfig(widths=[8, 16]), (1, 8, 8), 10)(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """
    if len(input_shape) != 3:
        raise TrainwrightError(
            f"a cnn needs images (C, H, W); these inputs have shape {input_shape}: use model.type: mlp for tables"
        )
    channels, height, width = input_shape
    layers: list[nn.Module] = [ChannelsLast()] if cfg.channels_last else []
    Pool = nn.MaxPool2d if cfg.pool == "max" else nn.AvgPool2d
    previous = channels
    for stage, stage_width in enumerate(cfg.widths):
        if stage > 0 and min(height, width) >= 2:  # (B, w, H, W) -> (B, w, H/2, W/2)
            layers.append(Pool(2))
            height, width = height // 2, width // 2
        for _ in range(cfg.convs):
            layers += conv_block(previous, stage_width, cfg.kernel_size, cfg.activation, cfg.batch_norm)
            previous = stage_width
    model = nn.Sequential(*layers, *pooled_head(previous, out_features, cfg.dropout))
    initialize(model, cfg.init, cfg.activation)
    return in_memory_format(model, cfg.channels_last)


def pooled_head(width: int, out_features: int, dropout: float) -> list[nn.Module]:
    """Global average pooling, [Dropout], Linear: (B, width, h, w) -> (B, out_features) for any h, w."""
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return [*layers, nn.Linear(width, out_features)]


def in_memory_format(model: nn.Module, channels_last: bool) -> nn.Module:
    """The model with its 4-d weights in channels-last order when asked (to match ``ChannelsLast`` inputs)."""
    return model.to(memory_format=torch.channels_last) if channels_last else model
