"""Model families by name. Adding one is a new file (a config class + ``build``) and one line here.

``build(cfg, input_shape, out_features) -> nn.Module`` maps a batch (B, *input_shape) to the
task's outputs (B, out_features): logits for classification (1 for binary), values for
regression. ``input_shape`` is one example's shape: (features,) for tables, (C, H, W) for images,
(length,) token ids for text, (lookback, features) for series. Sequence families also take the
text's ``vocab_size`` (None for series).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from trainwright.config import ModelConfig
from trainwright.errors import TrainwrightError
from trainwright.models import cnn, custom, mlp, pretrained, resnet, rnn, transformer


@dataclass(frozen=True)
class ModelSpec:
    config: type[ModelConfig]
    build: Callable[..., nn.Module]


MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec(mlp.MLPConfig, mlp.build),
    "cnn": ModelSpec(cnn.CNNConfig, cnn.build),
    "resnet": ModelSpec(resnet.ResNetConfig, resnet.build),
    "custom": ModelSpec(custom.CustomConfig, custom.build),
    "rnn": ModelSpec(rnn.RNNConfig, rnn.build),
    "lstm": ModelSpec(rnn.RNNConfig, rnn.build),
    "gru": ModelSpec(rnn.RNNConfig, rnn.build),
    "transformer": ModelSpec(transformer.TransformerConfig, transformer.build),
    "timm": ModelSpec(pretrained.TimmConfig, pretrained.build),  # the vision extra, imported on first use
    "torchvision": ModelSpec(pretrained.TorchvisionConfig, pretrained.build),
}
SEQUENCE_MODELS = ("rnn", "lstm", "gru", "transformer")


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], out_features: int, vocab_size: int | None = None) -> nn.Module:
    """Build the family ``cfg.type`` names; the config was validated against that family already.

    ``vocab_size`` is given for text (token ids), which only the sequence families can read.
    """
    if cfg.type in SEQUENCE_MODELS:
        try:
            return MODELS[cfg.type].build(cfg, tuple(input_shape), out_features, vocab_size=vocab_size)
        except ValueError as error:
            raise TrainwrightError(f"{error}; use model.type mlp, cnn or resnet for tables and images") from None
    if vocab_size is not None:
        raise TrainwrightError(f"model {cfg.type!r} cannot read text; use one of: {', '.join(SEQUENCE_MODELS)}")
    return MODELS[cfg.type].build(cfg, tuple(input_shape), out_features)
