"""Batched augmentation of training images, on the training device, with kornia.

``data.augment`` is a list of steps applied in order, each to every image of a batch with its
own probability ``p`` and its own random parameters (one call per batch, no per-image Python).
It runs on training batches only: validation, test and prediction see the images as they are.
Labels are never touched, so only label-preserving transformations belong here.

Example:
    >>> augment = build_augment([HFlip(), Rotation(degrees=10)], channels=3, size=(32, 32))
    >>> augment(torch.zeros(8, 3, 32, 32, dtype=torch.uint8)).dtype   # float pixels in 0..1
    torch.float32
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from trainwright.config import Augment, ColorJitter, Cutout, HFlip, Noise, PadCrop, ResizedCrop, Rotation, VFlip
from trainwright.errors import TrainwrightError


def _kornia_step(step: Augment, channels: int, size: tuple[int, int]) -> nn.Module:
    import kornia.augmentation as K

    if isinstance(step, HFlip):
        return K.RandomHorizontalFlip(p=step.p)
    if isinstance(step, VFlip):
        return K.RandomVerticalFlip(p=step.p)
    if isinstance(step, Rotation):
        return K.RandomRotation(degrees=step.degrees, p=step.p)
    if isinstance(step, ResizedCrop):
        return K.RandomResizedCrop(size, scale=step.scale, ratio=step.ratio, p=step.p)
    if isinstance(step, PadCrop):
        return K.RandomCrop(size, padding=step.padding, padding_mode="reflect", p=step.p)
    if isinstance(step, ColorJitter):
        if channels != 3 and (step.saturation or step.hue):
            raise TrainwrightError(
                "data.augment color_jitter: saturation and hue need rgb images, these are grayscale; "
                "set saturation: 0 and hue: 0, or data.image.mode: rgb"
            )
        return K.ColorJitter(step.brightness, step.contrast, step.saturation, step.hue, p=step.p)
    if isinstance(step, Noise):
        return K.RandomGaussianNoise(mean=0.0, std=step.std, p=step.p)
    if isinstance(step, Cutout):
        # A square of side ``size`` x the image side: area fraction size², aspect ratio 1.
        area = step.size**2
        return K.RandomErasing(scale=(area, area), ratio=(1.0, 1.0), value=step.value, p=step.p)
    raise TrainwrightError(f"augmentation {type(step).__name__} has no kornia counterpart")  # pragma: no cover


class BatchAugment(nn.Module):
    """uint8 (B, C, H, W) in 0..255 -> augmented float32 (B, C, H, W) in 0..1.

    The model's ``ImageInput`` takes float pixels in 0..1 as it takes uint8 in 0..255, so an
    augmented batch and a plain one are normalized the same way.
    """

    def __init__(self, steps: Sequence[nn.Module]):
        super().__init__()
        self.steps = nn.Sequential(*steps)

    @torch.no_grad()  # augmentation is data, not part of the graph
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float().div_(255) if x.dtype == torch.uint8 else x.float()
        return self.steps(x).clamp_(0.0, 1.0)  # noise and jitter can leave 0..1


def build_augment(steps: Sequence[Augment], channels: int, size: tuple[int, int]) -> BatchAugment:
    """The kornia pipeline for ``data.augment`` on images of ``channels`` x ``size`` (H, W)."""
    return BatchAugment([_kornia_step(step, channels, tuple(size)) for step in steps])
