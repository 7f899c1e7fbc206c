"""The generated shapes folder: deterministic from its seed, never overwriting, checked arguments."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from trainwright.data.shapes import SHAPES, draw_shape, make_shapes
from trainwright.errors import TrainwrightError


def test_same_seed_same_files_and_more_images_keep_the_first(tmp_path):
    assert make_shapes(tmp_path / "a", per_class=3, size=16, classes=["star", "cross"]) == 6
    make_shapes(tmp_path / "b", per_class=5, size=16, classes=["cross", "star"])
    make_shapes(tmp_path / "c", per_class=3, size=16, classes=["star", "cross"], seed=1)
    for name in ("star/star_00002.png", "cross/cross_00000.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes()
    with Image.open(tmp_path / "a" / "star" / "star_00000.png") as image:
        assert image.size == (16, 16) and image.mode == "RGB"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no build folder left behind


def test_every_shape_differs_from_its_background():
    for index, name in enumerate(SHAPES):
        pixels = np.asarray(draw_shape(name, 32, np.random.default_rng([0, index, 0])), dtype=float)
        assert pixels.std(axis=(0, 1)).max() > 20  # a shape stands out, not a flat colour


def test_bad_arguments_are_clear_and_an_existing_folder_is_untouched(tmp_path):
    with pytest.raises(TrainwrightError, match="unknown shape 'hexagon'; choose from: circle, square, triangle, star, cross"):
        make_shapes(tmp_path / "x", classes=["circle", "hexagon"])
    with pytest.raises(TrainwrightError, match="listed twice"):
        make_shapes(tmp_path / "x", classes=["circle", "circle"])
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("mine")
    with pytest.raises(TrainwrightError, match="already exists"):
        make_shapes(tmp_path / "mine", per_class=1)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["keep.txt"]
    assert not (tmp_path / "x").exists()
