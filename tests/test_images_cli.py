"""End to end for images: the ``trainwright`` command on generated folders, as a new user would run it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
from helpers import expect_clear_error, run_cli
from PIL import Image

from trainwright.data.shapes import make_shapes

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SMALL = ["--set", "train.epochs=2", "--set", "model.widths=[8,16]", "--set", "train.batch_size=16"]


def test_make_shapes_train_predict_evaluate(tmp_path):
    folder = tmp_path / "shapes"
    made = run_cli("make-shapes", str(folder), "--per-class", "30", "--size", "16")
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["circle", "square", "triangle"]
    assert len(list((folder / "circle").glob("*.png"))) == 30
    expect_clear_error(run_cli("make-shapes", str(folder)), "already exists")

    result = run_cli("train", "--data", str(folder), "--runs-dir", str(tmp_path / "runs"), "--name", "shapes", *SMALL,
                     "--set", "data.augment=[hflip, {name: rotation, degrees: 90}]")
    assert result.returncode == 0, result.stderr
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    assert "90 images from 3 class folders" in result.stdout and "model: cnn" in result.stdout
    assert "augment (training batches only): hflip(p=0.5), rotation(p=1, degrees=90)" in result.stdout
    files = {p.name for p in run_dir.iterdir()}
    assert {
        "preprocessor.json",
        "model.safetensors",
        "metrics.json",
        "misclassified.png",
        "examples.png",
        "data.json",
        "report.html",
    } <= files
    assert f"report: {run_dir / 'report.html'}" in result.stdout
    assert "preprocessor.skops" not in files  # image preprocessing is plain JSON
    assert json.loads((run_dir / "preprocessor.json").read_text())["modality"] == "images"
    with Image.open(run_dir / "misclassified.png") as grid:
        assert grid.format == "PNG" and grid.width > 100

    new = tmp_path / "new"
    new.mkdir()
    for name in ("circle_00000.png", "circle_00001.png"):
        (new / name).write_bytes((folder / "circle" / name).read_bytes())
    (new / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    result = run_cli("predict", str(run_dir), str(new), "-o", str(tmp_path / "preds.csv"))
    assert result.returncode == 0, result.stderr
    assert "skipped 1 file (1 not an image)" in result.stderr and "broken.png" in result.stderr
    preds = pd.read_csv(tmp_path / "preds.csv")
    assert list(preds.columns) == ["path", "prediction", "probability_circle", "probability_square", "probability_triangle"]
    assert len(preds) == 2 and preds["path"].str.endswith(".png").all()
    assert preds.iloc[:, 2:].sum(axis=1).round(5).eq(1).all()

    result = run_cli("evaluate", str(run_dir), str(folder), "-o", str(tmp_path / "eval.json"))
    assert result.returncode == 0, result.stderr
    assert 0 <= json.loads((tmp_path / "eval.json").read_text())["accuracy"] <= 1


def test_the_shapes_example_runs_from_its_documented_folder(tmp_path):
    make_shapes(tmp_path / "data" / "shapes", per_class=10, size=16)
    result = run_cli(
        "train",
        str(EXAMPLES / "shapes.yaml"),
        "--set",
        "train.epochs=1",
        "--set",
        "model.widths=[8]",
        "--runs-dir",
        "runs",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "model: cnn" in result.stdout and "augment (training batches only)" in result.stdout


def make_bad_folder(tmp_path: Path) -> Path:
    """A small shapes folder plus every kind of bad file the issue names."""
    folder = tmp_path / "bad"
    make_shapes(folder, per_class=12, size=16)
    good = (folder / "circle" / "circle_00000.png").read_bytes()
    (folder / "circle" / "zero.png").write_bytes(b"")
    (folder / "circle" / "notes.txt").write_text("a text file among the images")
    (folder / "square" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (folder / "square" / "truncated.png").write_bytes(good[: len(good) // 2])
    Image.new("L", (2000, 2000)).save(folder / "triangle" / "bomb.png")  # 4 megapixels in a few kB
    outside = tmp_path / "outside.png"
    outside.write_bytes(good)
    os.symlink(outside, folder / "triangle" / "escape.png")
    (folder / "hexagon").mkdir()  # an empty class folder
    return folder


def test_bad_files_are_skipped_with_a_count_and_the_first_names(tmp_path):
    folder = make_bad_folder(tmp_path)
    result = run_cli(
        "train", "--data", str(folder), "--runs-dir", str(tmp_path / "runs"), *SMALL, "--set", "data.image.max_pixels=1000000"
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    skipped = next(line for line in result.stdout.splitlines() if line.startswith("skipped"))
    assert skipped.startswith("skipped 6 files")
    for fragment in ("1 empty file", "1 not an image", "1 too large", "1 outside the data root", "zero.png", "notes.txt"):
        assert fragment in skipped, skipped
    assert "'hexagon' has no usable images; left out" in result.stdout
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    data = json.loads((run_dir / "data.json").read_text())
    assert data["images"]["usable"] == 36 and data["images"]["skipped"]["count"] == 6
    assert data["classes"] == ["circle", "square", "triangle"]


def test_nothing_usable_or_one_class_is_one_clear_line(tmp_path):
    junk = tmp_path / "junk"
    for label in ("cat", "dog"):
        (junk / label).mkdir(parents=True)
        (junk / label / "empty.jpg").write_bytes(b"")
        (junk / label / "readme.txt").write_text("no images here")
    expect_clear_error(
        run_cli("train", "--data", str(junk), "--runs-dir", str(tmp_path)),
        "no usable images in",
        "skipped 4 files (2 empty file, 2 not an image)",
    )
    one = tmp_path / "one"
    make_shapes(one, per_class=5, size=8, classes=["star"])
    expect_clear_error(run_cli("train", "--data", str(one), "--runs-dir", str(tmp_path)), "at least two classes")
    assert not list(tmp_path.glob("*-cnn-*"))  # no run directory was started


def test_a_table_of_image_paths(tmp_path):
    folder = tmp_path / "pics"
    make_shapes(folder, per_class=15, size=16, classes=["circle", "cross"])
    rows = [{"file": str(p.relative_to(folder)), "shape": p.parent.name} for p in sorted(folder.rglob("*.png"))]
    pd.DataFrame(rows).to_csv(folder / "labels.csv", index=False)
    result = run_cli(
        "train",
        "--data",
        str(folder / "labels.csv"),
        "--target",
        "shape",
        "--set",
        "data.image_column=file",
        "--model",
        "resnet",
        "--runs-dir",
        str(tmp_path / "runs"),
        *SMALL,
    )
    assert result.returncode == 0, result.stderr
    assert "30 images from a table ('shape' labels); binary" in result.stdout and "model: resnet" in result.stdout
    run_dir = result.stdout.strip().splitlines()[-1]
    result = run_cli("predict", run_dir, str(folder / "labels.csv"), "-o", str(tmp_path / "out.csv"))
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["file", "shape", "prediction", "probability_circle", "probability_cross"]
    assert len(out) == 30
