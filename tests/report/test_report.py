"""The HTML report: built from the run directory alone, self-contained, escaped, and it renders
in a real browser with every image loaded and no console errors."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser import check_page, find_chromium
from helpers import run_cli
from rich.console import Console

import trainwright as tw
from trainwright.report import render_report
from trainwright.rundir import RunDir

QUIET = Console(quiet=True)
INJECTED = '<script>console.error("injected")</script>'
MISSING_IMAGE = '<img src="missing.png">'


def hostile_table(n: int = 150, seed: int = 0) -> pd.DataFrame:
    """Column names and class labels that would break a report that did not escape them."""
    rng = np.random.default_rng(seed)
    labels = np.array([INJECTED, "a & b", "$x$ <i>"])[rng.integers(0, 3, n)]
    centers = {INJECTED: 0.0, "a & b": 2.0, "$x$ <i>": 4.0}
    base = np.array([centers[label] for label in labels])
    return pd.DataFrame({
        MISSING_IMAGE: base + rng.normal(0, 0.7, n),
        'weight "kg" & $\\alpha$': -base + rng.normal(0, 0.7, n),
        "colour": rng.choice(["red", "blue"], n),
        "kind": labels,
    })


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    table = root / "hostile.csv"
    hostile_table().to_csv(table, index=False)
    run = tw.train(
        {"data": {"source": str(table), "target": "kind"}, "train": {"epochs": 8}},
        runs_dir=root / "runs",
        name="hostile",
        console=QUIET,
    )
    return run.dir


def images(html: str) -> list[str]:
    return re.findall(r"<img [^>]*>", html)


def test_the_report_is_one_self_contained_escaped_file(hostile_run):
    html = (hostile_run / "report.html").read_text(encoding="utf-8")
    for section in ("data", "model", "training", "evaluation", "compute", "diagnosis", "config"):
        assert f'<section id="{section}">' in html
    # Every figure is embedded, so the file opens offline.
    tags = images(html)
    assert len(tags) >= 9  # class balance, loss, metric, lr, seconds, gradients, dead units, confusion, ROC, reliability
    assert all('src="data:image/png;base64,' in tag for tag in tags)
    assert "http://" not in html and "https://" not in html and "<script" not in html.lower().replace("&lt;script", "")
    # The user's column names and labels are shown, escaped.
    assert INJECTED not in html and MISSING_IMAGE not in html
    assert "&lt;script&gt;console.error(&#34;injected&#34;)&lt;/script&gt;" in html
    assert "&lt;img src=&#34;missing.png&#34;&gt;" in html and "a &amp; b" in html and "&lt;i&gt;" in html
    # The baselines sit beside the network, and the diagnosis and resolved config are there.
    assert "logistic regression" in html and "hist gradient boosting" in html
    assert "source:" in html
    assert "No training problems found" in html or 'class="finding"' in html


def assert_renders_in_chromium(run_dir: Path) -> None:
    """Headless Chromium shows every image of the run's report and logs nothing."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium is not installed and cannot be installed here (needs root and apt-get); `make test` installs it")
    page = check_page(chromium, run_dir / "report.html")
    assert page.title == f"{run_dir.name} - trainwright report"
    assert len(page.images) == len(images((run_dir / "report.html").read_text(encoding="utf-8")))
    unloaded = [image["alt"] for image in page.images if not (image["complete"] and image["naturalWidth"] > 0)]
    assert unloaded == []
    assert page.errors == []


def test_the_report_renders_in_headless_chromium(hostile_run):
    assert_renders_in_chromium(hostile_run)


def test_report_command_rebuilds_it_from_a_copied_run_directory(hostile_run, tmp_path):
    # A run trained "yesterday", moved elsewhere, its data file gone: the directory is enough.
    copy = tmp_path / "yesterday"
    shutil.copytree(hostile_run, copy)
    (copy / "report.html").unlink()
    (hostile_run.parent.parent / "hostile.csv").rename(tmp_path / "moved.csv")
    try:
        result = run_cli("report", str(copy))
    finally:
        (tmp_path / "moved.csv").rename(hostile_run.parent.parent / "hostile.csv")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(copy / "report.html")
    html = (copy / "report.html").read_text(encoding="utf-8")
    assert 'alt="confusion matrix on the test rows"' in html and 'alt="ROC curves on the test rows"' in html


def test_the_figures_drawn_in_a_second_process_are_the_ones_drawn_here(hostile_run):
    run = RunDir.open(hostile_run)
    assert render_report(run) == render_report(run, parallel=False)


def test_an_unfinished_run_still_gets_a_report(hostile_run, tmp_path):
    copy = tmp_path / "interrupted"
    shutil.copytree(hostile_run, copy)
    for name in ("metrics.json", "model.safetensors", "predictions_test.csv", "diagnosis.json", "report.html"):
        (copy / name).unlink()
    result = run_cli("report", str(copy))
    assert result.returncode == 0, result.stderr
    html = (copy / "report.html").read_text(encoding="utf-8")
    assert "did not finish" in html and "has no test metrics" in html
    assert 'alt="training and validation loss per epoch"' in html


def test_a_regression_report_shows_predictions_against_actual_values(tmp_path):
    run = tw.train({"data": {"source": "diabetes"}, "train": {"epochs": 5}}, runs_dir=tmp_path, console=QUIET)
    html = (run.dir / "report.html").read_text(encoding="utf-8")
    assert 'alt="predicted against actual values on the test rows"' in html and 'alt="residuals on the test rows"' in html
    assert "ridge" in html and "Confusion" not in html


@pytest.mark.parametrize("target", ["missing", "not_a_run"])
def test_report_on_something_that_is_not_a_run_is_one_clear_line(tmp_path, target):
    path = tmp_path / target
    if target == "not_a_run":
        path.mkdir()
        (path / "notes.txt").write_text("hello")
    result = run_cli("report", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: ") and str(path) in result.stderr


# ── image runs ─────────────────────────────────────────────────────────────────────────────
# Class folder names are the user's text too: markup, an ampersand and matplotlib's math sign.
HOSTILE_CLASSES = {"circle": '<img src="missing.png">', "square": "<b>cat", "triangle": "a & $b$"}
BAD_FILE = "<i>zero.png"


@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> Path:
    from trainwright.data.shapes import make_shapes

    root = tmp_path_factory.mktemp("image-report")
    make_shapes(root / "shapes", per_class=12, size=16)
    for shape, name in HOSTILE_CLASSES.items():
        (root / "shapes" / shape).rename(root / "shapes" / name)
    (root / "shapes" / "<b>cat" / BAD_FILE).write_bytes(b"")  # skipped: an empty file
    cfg = {
        "data": {"source": str(root / "shapes"), "augment": ["hflip", {"name": "rotation", "degrees": 30}]},
        "model": {"type": "cnn", "widths": [8, 16], "convs": 1},
        "train": {"epochs": 2, "batch_size": 8, "early_stopping": {"enabled": False}},
    }
    return tw.train(cfg, runs_dir=root / "runs", name="shapes", console=QUIET).dir


def test_an_image_run_gets_a_report_with_its_image_facts_escaped(image_run):
    html = (image_run / "report.html").read_text(encoding="utf-8")
    for section in ("data", "model", "training", "evaluation", "compute", "diagnosis", "config"):
        assert f'<section id="{section}">' in html
    tags = images(html)
    assert all('src="data:image/png;base64,' in tag for tag in tags)
    # Image facts: how images were found, decoded, normalized, skipped and augmented.
    assert "a folder with one sub-folder per class" in html and "37 files found, 36 images used, 1 skipped" in html
    assert "<td>mode</td><td>rgb</td>" in html and "<td>size (height x width)</td><td>16x16</td>" in html
    assert "<td>red</td>" in html and "<td>blue</td>" in html  # per-channel mean and std
    assert "<td>empty file</td>" in html and "&lt;i&gt;zero.png" in html
    assert "hflip(p=0.5)" in html and "rotation(p=1, degrees=30)" in html
    assert 'alt="training images per class, before and after augmentation"' in html
    assert 'alt="misclassified test images with their true and predicted labels"' in html
    assert 'alt="class balance per split"' in html and 'alt="confusion matrix on the test rows"' in html
    # Class folder names are escaped wherever they appear; no baselines for images.
    assert '<img src="missing.png">' not in html and "<b>cat" not in html and "<i>zero" not in html
    assert "&lt;img src=&#34;missing.png&#34;&gt;" in html and "&lt;b&gt;cat" in html and "a &amp; $b$" in html
    assert "logistic regression" not in html
    for name in ("examples.png", "misclassified.png"):
        assert (image_run / name).is_file()


def test_report_command_rebuilds_an_image_report_without_the_images(image_run, tmp_path):
    copy = tmp_path / "moved"
    shutil.copytree(image_run, copy)
    (copy / "report.html").unlink()
    (copy / "examples.png").unlink()  # a run from before examples.png existed: that figure is left out
    result = run_cli("report", str(copy))
    assert result.returncode == 0, result.stderr
    html = (copy / "report.html").read_text(encoding="utf-8")
    assert "training images per class" not in html and 'alt="misclassified test images' in html
    assert "36 images used" in html


def test_the_image_report_renders_in_headless_chromium(image_run):
    assert_renders_in_chromium(image_run)


def test_an_unknown_modality_gets_a_generic_data_section(hostile_run, tmp_path):
    # A modality this version has no view for (sequences are being added): its data.json is shown as keys and values.
    copy = tmp_path / "sequences"
    shutil.copytree(hostile_run, copy)
    summary = {
        "source": "reviews.csv",
        "modality": "text",
        "target": "<b>sentiment",
        "task": "binary",
        "tokens": {"vocabulary": 5000, "max_length": 128},
        "class_balance": {"all": {"neg": 60, "pos": 90}, "train": {"neg": 42, "pos": 63}},
        "split": {"fractions": "70/15/15", "seed": 0, "stratified": True, "held_out": True, "train": 105, "val": 22, "test": 23},
    }
    RunDir(copy).write_json("data.json", summary)  # as another version's run would have written it
    result = run_cli("report", str(copy))
    assert result.returncode == 0, result.stderr
    html = (copy / "report.html").read_text(encoding="utf-8")
    assert "(text data)" in html and "no dedicated view" in html
    assert "<td>tokens</td>" in html and "&#34;vocabulary&#34;: 5000" in html
    assert '<td class="num">105</td>' in html and 'alt="class balance per split"' in html
    assert "<b>sentiment" not in html and "&lt;b&gt;sentiment" in html
    # Even a data.json with none of the usual keys does not stop the report.
    RunDir(copy).write_json("data.json", {"modality": "audio", "split": [1, 2], "class_balance": "?"})
    assert run_cli("report", str(copy)).returncode == 0


def test_plots_and_diagnosis_skip_what_a_run_did_not_record(hostile_run, tmp_path):
    # A loop of another kind (a GAN, an RL policy) records other quantities: no validation loss, no learning rate.
    copy = tmp_path / "other-loop"
    shutil.copytree(hostile_run, copy)
    RunDir(copy).write_text("history.csv", "epoch,train_loss,seconds\n1,0.9,0.1\n2,0.7,0.1\n3,0.6,0.1\n")  # the manifest follows
    result = run_cli("report", str(copy))
    assert result.returncode == 0, result.stderr
    html = (copy / "report.html").read_text(encoding="utf-8")
    assert "training and validation loss per epoch" in html and "learning rate per epoch" not in html
