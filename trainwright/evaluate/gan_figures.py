"""Pictures of a generator's samples: a grid of images, 2-D points over the real ones, or a table's two
first numeric columns over the real rows. A GAN run keeps them at several steps (``samples/``), and
``trainwright sample`` draws them on request.

Example:
    >>> png = sample_grid_png(images_uint8, title="step 2000", row_labels=["0", "1"])
    >>> png = points_png(real_xy, generated_xy, title="step 2000", modes=means)
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from trainwright.evaluate.figures import new_figure, plain, png_bytes


def mosaic(images: torch.Tensor, columns: int, gap: int = 1) -> np.ndarray:
    """uint8 (N, C, H, W) -> one (rows * (H + gap) - gap, columns * (W + gap) - gap, 3) RGB picture on white."""
    pixels = images.cpu().permute(0, 2, 3, 1).numpy()  # (N, H, W, C)
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    n, height, width, _ = pixels.shape
    rows = max(1, math.ceil(n / columns))
    out = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, dtype=np.uint8)
    for k, image in enumerate(pixels):
        r, c = divmod(k, columns)
        out[r * (height + gap) : r * (height + gap) + height, c * (width + gap) : c * (width + gap) + width] = image
    return out


def sample_grid_png(
    images: torch.Tensor, title: str = "", columns: int | None = None, row_labels: list[str] | None = None
) -> bytes:
    """A grid of generated images (uint8 (N, C, H, W)) as PNG bytes; ``row_labels`` name each row (the class asked for).

    Example:
        >>> sample_grid_png(torch.zeros(16, 1, 8, 8, dtype=torch.uint8), "step 500")[:4]
        b'\\x89PNG'
    """
    columns = columns or max(1, math.ceil(math.sqrt(len(images))))
    picture = mosaic(images, columns, gap=max(1, images.shape[-1] // 16))
    rows = math.ceil(len(images) / columns)
    scale = max(1.0, 96 / images.shape[-1])  # small images drawn larger, so an 8x8 digit reads as one
    width, height = picture.shape[1] * scale / 100 + (0.9 if row_labels else 0.2), picture.shape[0] * scale / 100 + 0.5
    figure = new_figure(max(width, 2.5), max(height, 1.2))
    left = (0.8 if row_labels else 0.1) / figure.get_figwidth()
    axes = figure.add_axes(
        (left, 0.1 / figure.get_figheight(), 1 - left - 0.1 / figure.get_figwidth(), 1 - 0.5 / figure.get_figheight())
    )
    axes.imshow(picture, interpolation="nearest", aspect="equal")
    axes.set_xticks([])
    if row_labels:
        step = picture.shape[0] / rows
        axes.set_yticks(
            [step * (r + 0.5) for r in range(min(rows, len(row_labels)))],
            [plain(label, 12) for label in row_labels[:rows]],
            fontsize=8,
        )
    else:
        axes.set_yticks([])
    if title:
        axes.set_title(title, fontsize=9)
    return png_bytes(figure)


def points_png(
    real: np.ndarray, generated: np.ndarray, title: str = "", modes: np.ndarray | None = None, names: tuple[str, str] = ("x", "y")
) -> bytes:
    """Generated 2-D points (N, 2) over real ones (M, 2), modes marked when known, as PNG bytes.

    Example:
        >>> points_png(np.zeros((10, 2)), np.ones((10, 2)), "step 500")[:4]
        b'\\x89PNG'
    """
    figure = new_figure(4.2, 4.2, layout="constrained")
    axes = figure.add_subplot()
    axes.scatter(real[:, 0], real[:, 1], s=3, c="#adb5bd", alpha=0.5, label=f"real ({len(real):,})", linewidths=0)
    axes.scatter(
        generated[:, 0], generated[:, 1], s=3, c="#1f77b4", alpha=0.6, label=f"generated ({len(generated):,})", linewidths=0
    )
    if modes is not None:
        axes.scatter(modes[:, 0], modes[:, 1], s=30, marker="x", c="#d62728", linewidths=1, label="modes")
    axes.set_aspect("equal", adjustable="datalim")
    axes.set_xlabel(plain(names[0]))
    axes.set_ylabel(plain(names[1]))
    axes.legend(fontsize=7, loc="upper right", markerscale=3)
    if title:
        axes.set_title(title, fontsize=9)
    return png_bytes(figure)


def table_png(real: pd.DataFrame, generated: pd.DataFrame, title: str = "") -> bytes:
    """Generated rows over real ones: the first two numeric columns as points, or the first column's
    histogram (categories' shares) when the table has fewer than two numeric columns."""
    numeric = [c for c in real.columns if pd.api.types.is_numeric_dtype(real[c]) and pd.api.types.is_numeric_dtype(generated[c])]
    if len(numeric) >= 2:
        a, b = numeric[:2]
        return points_png(real[[a, b]].to_numpy(float), generated[[a, b]].to_numpy(float), title, names=(a, b))
    column = real.columns[0]
    figure = new_figure(4.6, 3.2, layout="constrained")
    axes = figure.add_subplot()
    if column in numeric:
        bins = np.histogram_bin_edges(real[column].to_numpy(float), bins=30)
        axes.hist(real[column].to_numpy(float), bins=bins, alpha=0.5, density=True, label="real", color="#adb5bd")
        axes.hist(generated[column].to_numpy(float), bins=bins, alpha=0.5, density=True, label="generated", color="#1f77b4")
    else:
        shares = pd.DataFrame(
            {
                "real": real[column].astype(str).value_counts(normalize=True),
                "generated": generated[column].astype(str).value_counts(normalize=True),
            }
        ).fillna(0.0)
        positions = np.arange(len(shares))
        axes.bar(positions - 0.2, shares["real"], 0.4, label="real", color="#adb5bd")
        axes.bar(positions + 0.2, shares["generated"], 0.4, label="generated", color="#1f77b4")
        axes.set_xticks(positions, [plain(v, 12) for v in shares.index], fontsize=7)
    axes.set_xlabel(plain(column))
    axes.legend(fontsize=7)
    if title:
        axes.set_title(title, fontsize=9)
    return png_bytes(figure)
