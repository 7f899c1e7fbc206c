"""A generated image folder: coloured shapes on coloured backgrounds, one sub-folder per shape.

Each image varies in every way that does not change its class: shape colour, background
colour and gradient, size, position, rotation and pixel noise. Writing real PNG files (rather
than tensors in memory) means training on it exercises the same folder path a user's photos
take. Image ``i`` of a class depends only on (seed, class, i): the same seed writes the same
images, and asking for more images per class keeps the first ones.

Example:
    >>> make_shapes(Path("data/shapes"), per_class=1000, size=32)   # data/shapes/{circle,square,triangle}/*.png
    3000
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from trainwright.errors import TrainwrightError

SHAPES = ("circle", "square", "triangle", "star", "cross")
SUPERSAMPLE = 4  # drawn at 4x and shrunk: antialiased edges
MIN_CONTRAST = 120.0  # Euclidean RGB distance between shape and background colours


def _outline(name: str, cx: float, cy: float, radius: float, angle: float) -> list[tuple[float, float]]:
    """Polygon vertices of a shape of circumradius ``radius`` centred at (cx, cy), rotated by ``angle``."""
    if name == "square":
        polar = [(radius, angle + k * math.pi / 2 + math.pi / 4) for k in range(4)]
    elif name == "triangle":
        polar = [(radius, angle + k * 2 * math.pi / 3) for k in range(3)]
    elif name == "star":  # five points, inner radius 0.45
        polar = [(radius if k % 2 == 0 else 0.45 * radius, angle + k * math.pi / 5) for k in range(10)]
    elif name == "cross":  # a plus sign with arms 0.6 x radius wide
        half = 0.3 * radius
        corners = [(half, radius), (half, half), (radius, half), (radius, -half), (half, -half), (half, -radius),
                   (-half, -radius), (-half, -half), (-radius, -half), (-radius, half), (-half, half), (-half, radius)]
        polar = [(math.hypot(x, y), angle + math.atan2(y, x)) for x, y in corners]
    else:
        raise ValueError(name)
    return [(cx + r * math.cos(a), cy + r * math.sin(a)) for r, a in polar]


def draw_shape(name: str, size: int, rng: np.random.Generator) -> Image.Image:
    """One RGB image ``size`` x ``size`` of the shape ``name`` with random appearance."""
    big = size * SUPERSAMPLE
    background = rng.integers(0, 256, 3)
    while True:  # a shape colour that stands out from the background
        colour = rng.integers(0, 256, 3)
        if np.linalg.norm(colour - background) >= MIN_CONTRAST:
            break
    # Background: a linear gradient from the base colour towards a nearby one, in a random direction.
    other = np.clip(background + rng.integers(-60, 61, 3), 0, 255)
    direction = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:big, 0:big] / big
    t = ((xs - 0.5) * math.cos(direction) + (ys - 0.5) * math.sin(direction) + 0.71) / 1.42  # 0..1
    canvas = (background * (1 - t[..., None]) + other * t[..., None]).astype(np.uint8)  # (big, big, 3)
    image = Image.fromarray(canvas)

    radius = rng.uniform(0.22, 0.42) * big
    cx, cy = rng.uniform(radius, big - radius, 2)
    angle = rng.uniform(0, 2 * math.pi)
    draw = ImageDraw.Draw(image)
    fill = tuple(int(v) for v in colour)
    if name == "circle":
        draw.ellipse([cx - radius * 0.8, cy - radius * 0.8, cx + radius * 0.8, cy + radius * 0.8], fill=fill)
    else:
        draw.polygon(_outline(name, cx, cy, radius, angle), fill=fill)
    image = image.resize((size, size), Image.Resampling.LANCZOS)

    noise = rng.normal(0.0, rng.uniform(0, 12), (size, size, 3))  # sensor-like noise, 0-12 of 255
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).round().astype(np.uint8))


def make_shapes(
    folder: str | Path,
    *,
    per_class: int = 1000,
    size: int = 32,
    classes: Sequence[str] = SHAPES[:3],
    seed: int = 0,
    console: Console | None = None,
) -> int:
    """Write ``folder/<shape>/<shape>_00000.png`` ...; returns the number of images written.

    The folder is built beside its final place and renamed at the end, so an interrupted run
    leaves nothing half-written; an existing folder is never touched.
    """
    folder = Path(folder)
    console = console or Console(stderr=True)
    unknown = [name for name in classes if name not in SHAPES]
    if unknown or not classes:
        raise TrainwrightError(
            f"unknown shape {unknown[0]!r}; choose from: {', '.join(SHAPES)}"
            if unknown
            else f"name at least one shape from: {', '.join(SHAPES)}"
        )
    if len(set(classes)) != len(classes):
        raise TrainwrightError(f"shapes are listed twice in {', '.join(classes)}; name each once")
    if folder.exists():
        raise TrainwrightError(f"{folder} already exists; choose a new folder (make-shapes never overwrites)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    total = per_class * len(classes)
    progress = Progress(
        TextColumn("writing shapes"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=total < 500 or not console.is_terminal,
    )
    try:
        with progress:
            task = progress.add_task("shapes", total=total)
            for name in classes:
                (building / name).mkdir()
                for i in range(per_class):
                    rng = np.random.default_rng([seed, SHAPES.index(name), i])
                    draw_shape(name, size, rng).save(building / name / f"{name}_{i:05d}.png", compress_level=1)
                    progress.advance(task)
        os.rename(building, folder)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return total
