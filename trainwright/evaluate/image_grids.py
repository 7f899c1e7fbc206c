"""Grids of images as PNGs, which an image run's directory keeps for the report and for people.

- ``misclassified.png``: the test images a classifier got wrong, with true and predicted labels.
- ``examples.png``: a few training images per class as decoded (mode, size, resize applied),
  and beside them the same images after one draw of the training augmentation.

Drawn with matplotlib's Agg canvas directly (no pyplot, so no global figure state and no display).
Class labels are the user's text: ``plain`` keeps matplotlib from reading ``$...$`` as math.

Example:
    >>> png, wrong = misclassified_png(x_test, y_test, outputs, "multiclass", classes)
    >>> png = examples_png(x_train, y_train, classes, augment)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from trainwright.evaluate.figures import new_figure, plain, png_bytes
from trainwright.training.losses import probabilities

MAX_SHOWN = 48
PER_CLASS = 4  # examples per class
MAX_CLASSES = 20  # rows of the examples grid


def misclassified_png(x: torch.Tensor, y: torch.Tensor, outputs: torch.Tensor, task: str, classes: list) -> tuple[bytes, int]:
    """The grid as PNG bytes, and how many test images were misclassified.

    ``x`` uint8 (N, C, H, W) images, ``y`` int64 (N,) true classes, ``outputs`` (N, outputs) raw
    model outputs. The first ``MAX_SHOWN`` mistakes are drawn, in test order.
    """
    predicted = probabilities(outputs.float().cpu(), task).argmax(1)
    wrong = torch.nonzero(predicted != y.cpu()).flatten().tolist()
    shown = wrong[:MAX_SHOWN]
    columns = max(1, min(8, len(shown)))
    rows = max(1, math.ceil(len(shown) / columns))
    figure = new_figure(1.6 * columns, 1.8 * rows + 0.5)
    title = f"{len(wrong)} of {len(y)} test images misclassified" + (
        f" (first {len(shown)} shown)" if len(wrong) > len(shown) else ""
    )
    figure.suptitle(title, fontsize=9)
    if not shown:
        figure.text(0.5, 0.4, "no misclassified test images", ha="center", fontsize=9)
    for k, i in enumerate(shown):
        axes = figure.add_subplot(rows, columns, k + 1)
        image = x[i].cpu().numpy()  # (C, H, W) uint8
        if image.shape[0] == 1:
            axes.imshow(image[0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            axes.imshow(np.transpose(image, (1, 2, 0)), interpolation="nearest")
        axes.set_title(f"true {plain(classes[int(y[i])], 16)}\npred {plain(classes[int(predicted[i])], 16)}", fontsize=7)
        axes.set_xticks([])
        axes.set_yticks([])
    figure.tight_layout()
    return png_bytes(figure), len(wrong)


def _mosaic(images: np.ndarray, rows: int, columns: int, gap: int) -> np.ndarray:
    """(rows * columns, H, W, 3) uint8 -> one (rows * (H + gap), columns * (W + gap), 3) picture on white."""
    _, height, width, _ = images.shape
    out = np.full((rows * (height + gap), columns * (width + gap), 3), 255, dtype=np.uint8)
    for k, image in enumerate(images):
        r, c = divmod(k, columns)
        out[r * (height + gap) : r * (height + gap) + height, c * (width + gap) : c * (width + gap) + width] = image
    return out


def examples_png(x: torch.Tensor, y: torch.Tensor, classes: list, augment: nn.Module | None = None) -> bytes:
    """``PER_CLASS`` training images of each class (one row per class, up to ``MAX_CLASSES``) as PNG
    bytes; with ``augment``, the same images after one draw of it, to their right.

    ``x`` uint8 (N, C, H, W) training images, ``y`` int64 (N,) classes. All of it is one picture
    drawn on one axes, so it costs about as much as one small plot.
    """
    shown = list(range(min(len(classes), MAX_CLASSES)))
    y = y.cpu()
    picks = [torch.nonzero(y == c).flatten()[:PER_CLASS].tolist() for c in shown]
    images = torch.zeros(len(shown) * PER_CLASS, *x.shape[1:], dtype=torch.uint8)  # (K, C, H, W); blank where a class has fewer
    for r, rows in enumerate(picks):
        for j, i in enumerate(rows):
            images[r * PER_CLASS + j] = x[i].cpu()
    panels = [images]
    if augment is not None:
        with torch.random.fork_rng(devices=[]):  # drawing the examples leaves the run's random streams alone
            torch.manual_seed(0)
            panels.append((augment.cpu()(images) * 255).round().to(torch.uint8))  # float 0..1 -> uint8
        filled = torch.zeros(len(images), dtype=torch.bool)
        for r, rows in enumerate(picks):
            filled[r * PER_CLASS : r * PER_CLASS + len(rows)] = True
        panels[1][~filled] = 0
    height = x.shape[2]
    gap = max(1, height // 8)
    pictures = []
    for panel in panels:
        pixels = panel.permute(0, 2, 3, 1).numpy()  # (K, H, W, C)
        if pixels.shape[-1] == 1:
            pixels = np.repeat(pixels, 3, axis=-1)  # grayscale drawn as RGB, so both panels share one picture
        pictures.append(_mosaic(pixels, len(shown), PER_CLASS, gap))
    if len(pictures) == 2:
        spacer = np.full((pictures[0].shape[0], 3 * gap, 3), 255, dtype=np.uint8)
        picture = np.concatenate([pictures[0], spacer, pictures[1]], axis=1)
    else:
        picture = pictures[0]
    columns = PER_CLASS * len(panels)
    figure = new_figure(1.2 + 0.9 * columns, 0.6 + 0.9 * len(shown))
    axes = figure.add_axes(
        (
            0.9 / (1.2 + 0.9 * columns),
            0.1 / (0.6 + 0.9 * len(shown)),
            1 - 1.0 / (1.2 + 0.9 * columns),
            1 - 0.5 / (0.6 + 0.9 * len(shown)),
        )
    )
    axes.imshow(picture, interpolation="nearest", aspect="equal")
    axes.set_yticks(
        [r * (height + gap) + height / 2 for r in range(len(shown))], [plain(classes[c], 14) for c in shown], fontsize=8
    )
    axes.set_xticks([])
    for side in axes.spines.values():
        side.set_visible(False)
    more = f", first {MAX_CLASSES} of {len(classes)} classes" if len(classes) > MAX_CLASSES else ""
    title = "training images as decoded" + (" | after augmentation (one draw)" if augment is not None else "") + more
    axes.set_title(title, fontsize=9)
    return png_bytes(figure)
