"""Weight initialization schemes, applied to every Linear/Conv layer of a built model.

``auto`` picks He (Kaiming) for ReLU-family activations and Xavier (Glorot) for tanh/sigmoid/
GELU, which keeps activation variance roughly constant through depth (He et al. 2015, Glorot &
Bengio 2010). ``zeros`` is allowed for teaching but warns: every unit in a layer then receives
the same gradient and they never become different (symmetry is never broken).
"""

from __future__ import annotations

import warnings
from typing import Literal

from torch import nn

InitScheme = Literal["auto", "he", "xavier", "small_normal", "zeros", "torch"]

_RELU_FAMILY = {"relu", "leaky_relu"}


def initialize(model: nn.Module, scheme: InitScheme, activation: str = "relu") -> None:
    """Initialize weights in place; biases start at zero (except for ``torch``).

    Example:
        >>> initialize(nn.Sequential(nn.Linear(4, 8), nn.ReLU()), "he")
    """
    if scheme == "torch":
        return  # PyTorch's own per-layer defaults
    if scheme == "auto":
        scheme = "he" if activation in _RELU_FAMILY else "xavier"
    if scheme == "zeros":
        warnings.warn(
            "model.init: zeros gives every unit in a layer the same weights and the same gradient, "
            "so they can never learn different features; use he or xavier",
            stacklevel=2,
        )
    nonlinearity = "leaky_relu" if activation == "leaky_relu" else "relu"
    for module in model.modules():
        if not isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            continue
        weight = module.weight
        if scheme == "he":
            nn.init.kaiming_normal_(weight, nonlinearity=nonlinearity)
        elif scheme == "xavier":
            nn.init.xavier_uniform_(weight)
        elif scheme == "small_normal":
            nn.init.normal_(weight, std=0.01)
        elif scheme == "zeros":
            nn.init.zeros_(weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
