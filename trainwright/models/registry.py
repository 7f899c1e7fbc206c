"""Model families by name. Adding one is a new file (a config class + ``build``) and one line here.

``build(cfg, in_features, out_features) -> nn.Module`` maps a batch of inputs to the task's
outputs: logits for classification (1 for binary), values for regression.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from trainwright.config import ModelConfig
from trainwright.models import custom, mlp


@dataclass(frozen=True)
class ModelSpec:
    config: type[ModelConfig]
    build: Callable[..., nn.Module]


MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec(mlp.MLPConfig, mlp.build),
    "custom": ModelSpec(custom.CustomConfig, custom.build),
}


def build_model(cfg: ModelConfig, in_features: int, out_features: int) -> nn.Module:
    """Build the family ``cfg.type`` names; the config was validated against that family already."""
    return MODELS[cfg.type].build(cfg, in_features, out_features)
