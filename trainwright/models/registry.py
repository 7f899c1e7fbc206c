"""Model families by name. Adding one is a new file (a config class + ``build``) and one line here.

``build(cfg, input_shape, out_features) -> nn.Module`` maps a batch (B, *input_shape) to the
task's outputs (B, out_features): logits for classification (1 for binary), values for
regression. ``input_shape`` is one example's shape: (features,) for tables, (C, H, W) for images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from trainwright.config import ModelConfig
from trainwright.models import cnn, custom, mlp, resnet


@dataclass(frozen=True)
class ModelSpec:
    config: type[ModelConfig]
    build: Callable[..., nn.Module]


MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec(mlp.MLPConfig, mlp.build),
    "cnn": ModelSpec(cnn.CNNConfig, cnn.build),
    "resnet": ModelSpec(resnet.ResNetConfig, resnet.build),
    "custom": ModelSpec(custom.CustomConfig, custom.build),
}


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """Build the family ``cfg.type`` names; the config was validated against that family already."""
    return MODELS[cfg.type].build(cfg, tuple(input_shape), out_features)
