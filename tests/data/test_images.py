"""Image sources -> uint8 tensors decoded once: folders, tables, the built-in, bad files, saving."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from trainwright.config import DataConfig
from trainwright.configure import load_config
from trainwright.data.decode import decode_count
from trainwright.data.image_input import channel_stats
from trainwright.data.images import ImagePreprocessor, prepare_images
from trainwright.data.prepare import load_preprocessor, prepare_data
from trainwright.data.shapes import make_shapes
from trainwright.errors import TrainwrightError
from trainwright.rundir import RunDir


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    """A small generated folder: 3 classes x 12 PNGs of 16x16."""
    folder = tmp_path_factory.mktemp("images") / "shapes"
    make_shapes(folder, per_class=12, size=16)
    return folder


def copy_folder(source: Path, target: Path) -> Path:
    for path in source.rglob("*.png"):
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(path.read_bytes())
    return target


def test_folder_becomes_uint8_views_of_one_cache_decoded_once(shapes):
    before = decode_count()
    data = prepare_data(DataConfig(source=str(shapes)))
    n = len(data.x_train) + len(data.x_val) + len(data.x_test)
    assert n == 36 and data.cache.decoded == 36 and decode_count() == before + 36
    assert data.x_train.dtype == torch.uint8 and data.x_train.shape[1:] == (3, 16, 16) == data.input_shape
    assert all(
        np.shares_memory(x.numpy(), data.cache.array) for x in (data.x_train, data.x_val, data.x_test)
    )  # views, not copies
    assert data.task == "multiclass" and data.preprocessor.classes == ["circle", "square", "triangle"]
    assert data.summary["split"] == {
        "fractions": "70/15/15",
        "seed": 0,
        "stratified": True,
        "held_out": True,
        "train": 24,
        "val": 6,
        "test": 6,
    }
    assert sorted(data.y_test.tolist()) == [0, 0, 1, 1, 2, 2]  # stratified
    # Normalization statistics come from the training split alone.
    mean, std = channel_stats(data.x_train)
    assert data.preprocessor.mean == mean and data.preprocessor.std == std
    assert mean != channel_stats(data.x_test)[0]
    lines = "\n".join(data.report_lines())
    assert "36 images from 3 class folders" in lines and "rgb 16x16" in lines and "train 24, val 6, test 6 images" in lines


def test_disk_cache_gives_the_same_tensors(shapes):
    memory = prepare_images(DataConfig(source=str(shapes)))
    disk = prepare_images(load_config({"data": {"source": str(shapes), "image": {"cache": "disk"}}}).data)
    assert disk.cache.where == "disk" and memory.cache.where == "memory"
    assert torch.equal(memory.x_train, disk.x_train) and torch.equal(memory.y_test, disk.y_test)


def test_mode_size_and_policy_are_configurable(shapes):
    data = prepare_images(
        load_config({"data": {"source": str(shapes), "image": {"mode": "grayscale", "size": [8, 12], "resize": "pad"}}}).data
    )
    assert data.input_shape == (1, 8, 12)
    facts = data.preprocessor.facts()
    assert (
        facts["modality"] == "images" and facts["mode"] == "grayscale" and facts["size"] == [8, 12] and facts["resize"] == "pad"
    )


def test_preprocessor_round_trips_through_json_and_decodes_new_folders(shapes, tmp_path):
    data = prepare_images(DataConfig(source=str(shapes)))
    RunDir(tmp_path).write_files(data.preprocessor.files())
    assert {p.name for p in tmp_path.iterdir()} - {".lock", "manifest.json"} == {"preprocessor.json"}  # plain JSON, no pickle
    pre = load_preprocessor(tmp_path)
    assert isinstance(pre, ImagePreprocessor) and pre.facts() == data.preprocessor.facts()
    frame, x = pre.inputs(shapes)
    assert list(frame.columns) == ["path", "label"] and len(frame) == 36 and x.shape == (36, 3, 16, 16)
    assert set(frame["label"]) == {"circle", "square", "triangle"}  # a labelled folder can be evaluated
    flat, x_flat = pre.inputs(shapes / "circle")
    assert list(flat.columns) == ["path"] and len(flat) == 12
    one, x_one = pre.inputs(shapes / "circle" / "circle_00003.png")  # a single image file
    assert len(one) == 1 and np.array_equal(x_one[0], x_flat[3])
    assert pre.encode_target(pd.Series(["square", "circle"])).tolist() == [1, 0]
    with pytest.raises(TrainwrightError, match="'hexagon' not seen in training"):
        pre.encode_target(pd.Series(["hexagon"]))


def test_table_of_relative_paths(shapes, tmp_path):
    folder = copy_folder(shapes, tmp_path / "data")
    outside = tmp_path / "outside.png"
    Image.new("RGB", (16, 16)).save(outside)
    rows = [{"file": str(p.relative_to(folder)), "kind": p.parent.name} for p in sorted(folder.rglob("*.png"))]
    rows += [
        {"file": "../outside.png", "kind": "circle"},
        {"file": "circle/absent.png", "kind": "circle"},
        {"file": "square/square_00000.png", "kind": None},
    ]
    pd.DataFrame(rows).to_csv(folder / "labels.csv", index=False)
    data = prepare_images(DataConfig(source=str(folder / "labels.csv"), image_column="file", target="kind"))
    assert data.summary["kind"] == "table" and data.summary["images"]["usable"] == 36
    assert data.summary["images"]["skipped"]["by_reason"] == {"missing": 1, "no label": 1, "outside the data root": 1}
    assert data.preprocessor.image_column == "file" and data.preprocessor.target == "kind"
    with pytest.raises(TrainwrightError, match="data.image_column 'path' is not a column"):
        prepare_images(DataConfig(source=str(folder / "labels.csv"), image_column="path", target="kind"))


def test_digits_images_builtin():
    cfg = load_config({"data": {"source": "digits-images"}})
    assert cfg.model.type == "cnn" and cfg.data.image.size == 8 and cfg.data.image_column == "image"
    data = prepare_data(cfg.data)
    assert data.input_shape == (1, 8, 8) and data.x_train.shape == (1257, 1, 8, 8)
    assert data.preprocessor.classes == list(range(10))
    assert int(data.x_train.max()) == 255  # 0..16 intensities scaled to the full uint8 range


def test_bad_files_are_counted_and_named_and_duplicates_dropped(shapes, tmp_path):
    folder = copy_folder(shapes, tmp_path / "mixed")
    (folder / "circle" / "empty.png").write_bytes(b"")
    (folder / "circle" / "notes.txt").write_text("not an image")
    (folder / "square" / "copy.png").write_bytes((folder / "square" / "square_00001.png").read_bytes())
    (folder / "square" / ".DS_Store").write_bytes(b"\x00\x01")  # hidden: ignored, not counted
    (folder / "bird").mkdir()  # an empty class folder
    (folder / "README.md").write_text("loose file")
    elsewhere = tmp_path / "elsewhere.png"
    Image.new("RGB", (16, 16)).save(elsewhere)
    os.symlink(elsewhere, folder / "triangle" / "link.png")
    data = prepare_images(DataConfig(source=str(folder)))
    images = data.summary["images"]
    assert images["skipped"]["by_reason"] == {"empty file": 1, "not an image": 1, "outside the data root": 1}
    assert images["duplicates_dropped"] == 1 and images["usable"] == 36
    assert data.preprocessor.classes == ["circle", "square", "triangle"]
    text = "\n".join(data.report_lines())
    assert "skipped 3 files" in text and "circle/empty.png (empty file)" in text
    assert "'bird' has no usable images" in text and "README.md" in text


def test_a_linked_class_folder_is_counted_once_under_its_real_folder(shapes, tmp_path):
    folder = copy_folder(shapes, tmp_path / "linked")
    os.symlink("../square", folder / "circle" / "squares")  # cat/dogs -> ../dog
    os.symlink("../square/square_00001.png", folder / "circle" / "alias.png")
    os.symlink("circle", folder / "round")  # a second name for a class folder
    data = prepare_images(DataConfig(source=str(folder)))
    images = data.summary["images"]
    assert data.preprocessor.classes == ["circle", "square", "triangle"]
    assert images["usable"] == 36 and images["skipped"]["by_reason"] == {"a link into another class folder": 2}
    assert "class folder round is a link to circle: its images are counted once, under circle" in "\n".join(data.report_lines())


def test_nothing_usable_and_one_class_are_clear_errors(tmp_path):
    junk = tmp_path / "junk"
    for label in ("a", "b"):
        (junk / label).mkdir(parents=True)
        (junk / label / "x.png").write_text("nope")
    with pytest.raises(TrainwrightError, match=r"no usable images in .*junk: skipped 2 files \(2 not an image\)"):
        prepare_images(DataConfig(source=str(junk)))
    single = tmp_path / "single"
    make_shapes(single, per_class=5, size=8, classes=["star"])
    with pytest.raises(TrainwrightError, match="label 'star'; a classifier needs images of at least two classes"):
        prepare_images(DataConfig(source=str(single)))
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (8, 8)).save(flat / "a.png")
    with pytest.raises(TrainwrightError, match="no class sub-folders"):
        prepare_images(DataConfig(source=str(flat)))


def test_auto_size_is_the_common_size_shrunk_to_64():
    from trainwright.config import ImageConfig
    from trainwright.data.images import resolve_spec

    spec = resolve_spec(ImageConfig(), ["RGB", "L"], [(300, 400), (300, 400), (10, 10)])
    assert spec.size == (48, 64) and spec.mode == "rgb"
    assert resolve_spec(ImageConfig(), ["L", "I;16"], [(28, 28)]).mode == "grayscale"
    assert np.prod(resolve_spec(ImageConfig(size=32), ["L"], [(28, 28)]).size) == 1024


def test_table_column_keys_are_refused_for_images():
    with pytest.raises(TrainwrightError, match="data.features selects table columns; an image source"):
        prepare_data(DataConfig(source="digits-images", features=["pixel_0"]))
