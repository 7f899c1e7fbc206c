"""Multi-layer perceptron: Linear -> [BatchNorm] -> activation -> [Dropout], repeated, then a head.

``hidden: []`` is a single Linear layer: the one-neuron model of the classic Y = 2X - 1 example.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field
from torch import nn

from trainwright.config import ModelConfig
from trainwright.models.init import InitScheme, initialize

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


class MLPConfig(ModelConfig):
    type: Literal["mlp"] = "mlp"
    hidden: list[int] = Field([128, 64], description="hidden layer widths; [] is one linear layer")
    activation: Literal["relu", "leaky_relu", "gelu", "tanh", "sigmoid"] = "relu"
    dropout: float = Field(0.2, ge=0, lt=1)
    batch_norm: bool = False
    init: InitScheme = "auto"


def build(cfg: MLPConfig, input_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """An MLP mapping (B, *input_shape) -> (B, out_features) logits or values; inputs with more
    than one dimension (images) are flattened first.

    Example:
        >>> build(MLPConfig(hidden=[32]), (64,), 10)(torch.zeros(2, 64)).shape
        torch.Size([2, 10])
    """
    if any(width < 1 for width in cfg.hidden):
        raise ValueError(f"model.hidden widths must be >= 1, got {cfg.hidden}")
    layers: list[nn.Module] = [nn.Flatten()] if len(input_shape) > 1 else []
    width = math.prod(input_shape)
    for size in cfg.hidden:
        # The Linear bias is redundant right before BatchNorm, which re-centres anyway.
        layers.append(nn.Linear(width, size, bias=not cfg.batch_norm))
        if cfg.batch_norm:
            layers.append(nn.BatchNorm1d(size))
        layers.append(ACTIVATIONS[cfg.activation]())
        if cfg.dropout:
            layers.append(nn.Dropout(cfg.dropout))
        width = size
    layers.append(nn.Linear(width, out_features))
    model = nn.Sequential(*layers)
    initialize(model, cfg.init, cfg.activation)
    return model
