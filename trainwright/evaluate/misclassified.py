"""A grid of the test images a classifier got wrong, with their true and predicted labels.

Drawn with matplotlib's Agg canvas directly (no pyplot, so no global figure state and no display).

Example:
    >>> save_misclassified(Path("runs/x/misclassified.png"), x_test, y_test, outputs, "multiclass", classes)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from trainwright.files import atomic_path
from trainwright.training.losses import probabilities

MAX_SHOWN = 48


def save_misclassified(path: Path, x: torch.Tensor, y: torch.Tensor, outputs: torch.Tensor, task: str, classes: list) -> int:
    """Write the grid to ``path`` (PNG); returns how many test images were misclassified.

    ``x`` uint8 (N, C, H, W) images, ``y`` int64 (N,) true classes, ``outputs`` (N, outputs) raw
    model outputs. The first ``MAX_SHOWN`` mistakes are drawn, in test order.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    predicted = probabilities(outputs.float().cpu(), task).argmax(1)
    wrong = torch.nonzero(predicted != y.cpu()).flatten().tolist()
    shown = wrong[:MAX_SHOWN]
    columns = max(1, min(8, len(shown)))
    rows = max(1, math.ceil(len(shown) / columns))
    figure = Figure(figsize=(1.6 * columns, 1.8 * rows + 0.5), dpi=100)
    FigureCanvasAgg(figure)
    title = f"{len(wrong)} of {len(y)} test images misclassified" + (f" (first {len(shown)} shown)" if len(wrong) > len(shown) else "")
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
        axes.set_title(f"true {classes[int(y[i])]}\npred {classes[int(predicted[i])]}", fontsize=7)
        axes.set_xticks([])
        axes.set_yticks([])
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return len(wrong)
