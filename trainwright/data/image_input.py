"""The image model's input stage, in torch: the training split's per-channel statistics and
``ImageInput``, the first module of every image model. Apart from ``images.py`` so that decoding
images for a prediction from an exported model needs no torch.

Example:
    >>> mean, std = channel_stats(data.x_train)       # uint8 (N, C, H, W) -> per-channel lists
    >>> ImageInput(mean, std)(data.x_train[:8]).dtype
    torch.float32
"""

from __future__ import annotations

import torch
from torch import nn


def channel_stats(x: torch.Tensor, chunk: int = 256) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of uint8 (N, C, H, W) images, in 0..1 units."""
    channels = x.shape[1]
    total, squares = torch.zeros(channels, dtype=torch.float64), torch.zeros(channels, dtype=torch.float64)
    for start in range(0, len(x), chunk):
        part = x[start : start + chunk].to(torch.float64) / 255.0  # (n, C, H, W)
        total += part.sum(dim=(0, 2, 3))
        squares += part.pow(2).sum(dim=(0, 2, 3))
    count = max(1, x.shape[0] * x.shape[2] * x.shape[3])
    mean = total / count
    std = (squares / count - mean.pow(2)).clamp_min(0).sqrt()
    # A constant channel (a blank data set) keeps unit scale rather than dividing by zero.
    std = torch.where(std > 1e-3, std, torch.ones_like(std))
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


# ── the model's input stage ────────────────────────────────────────────────────────────────
class ImageInput(nn.Module):
    """Pixels -> normalized float, the first module of every image model.

    Takes (B, C, H, W) uint8 in 0..255 (the cache, validation, prediction) or float in 0..1
    (augmented training batches), the same convention as torchvision; returns
    ``(x - mean) / std`` per channel as float32 (B, C, H, W). ``mean`` and ``std`` are buffers,
    so they are saved with the weights.
    """

    def __init__(self, mean: list[float], std: list[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            # (x / 255 - mean) / std, folded into one multiply-add.
            return torch.addcmul(-self.mean / self.std, x.float(), 1 / (255 * self.std))
        return (x.float() - self.mean) / self.std
