"""The GAN recipe end to end through the command line: a tiny ring run (files, samples, report, a resume that
matches the run never interrupted), a tiny conditional image run judged by its own classifier, a table run
in original units, and bad input refused in one line."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from helpers import expect_clear_error, penguins_like, run_cli
from rich.console import Console
from safetensors.torch import load_file

import trainwright as tw
from trainwright.errors import TrainwrightError
from trainwright.recipes.gan import sample_run
from trainwright.runs import compare_runs, list_runs

QUIET = Console(quiet=True)
RING = """recipe: gan
data: {source: ring}
train: {steps: 60, batch_size: 32}
gan:
  lr_decay: none  # the run's total steps then shape nothing but its length, so a cut run can be resumed longer
  g_hidden: [16, 16]
  d_hidden: [16]
  evaluate: {every_steps: 20, n_samples: 200}
"""


def test_a_ring_run_writes_both_networks_samples_and_a_report_and_resumes_bit_identically(tmp_path):
    config = tmp_path / "ring.yaml"
    config.write_text(RING)
    est = tw.estimate(config, console=QUIET)  # what `trainwright estimate` prints: both networks' FLOPs, timed steps
    assert est.flops_per_step > est.generator_forward + est.discriminator_forward > 0 and est.steps == 60
    whole = run_cli("train", str(config), "--runs-dir", str(tmp_path), "--name", "whole")
    assert whole.returncode == 0, whole.stderr
    assert "GAN (MLP)" in whole.stdout and "FLOPs per step" in whole.stdout and "estimate on cpu" in whole.stdout
    run = tmp_path / "whole"
    for name in ("generator", "discriminator", "generator_ema"):
        assert (run / f"{name}.safetensors").is_file()
    history = pd.read_csv(run / "history.csv")
    assert history["step"].tolist() == [20, 40, 60]
    assert {"d_loss", "g_loss", "d_real", "d_fake", "g_grad_norm", "quality", "modes", "high_quality"} <= set(history.columns)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["recipe"] == "gan" and metrics["steps"] == 60 and metrics["kept"] == "quality"
    assert metrics["reference"]["modes"] == 8 and len(metrics["quality"]["mode_counts"]) == 8
    assert len(list((run / "samples").glob("step_*.png"))) == 3 and (run / "samples.png").is_file()
    report = (run / "report.html").read_text()
    assert "Generative adversarial network" in report and "Samples along training" in report

    rows = run_cli("sample", str(run), "-n", "10", "-o", str(tmp_path / "points.csv"))
    assert rows.returncode == 0, rows.stderr
    assert list(pd.read_csv(tmp_path / "points.csv").columns) == ["x", "y", "mode"]
    sample_run(run, 64, tmp_path / "points.png")
    assert (tmp_path / "points.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(TrainwrightError, match="conditional"):
        sample_run(run, 8, tmp_path / "x.png", label="3")

    tw.train(config, overrides=["train.steps=40"], runs_dir=tmp_path, name="cut", console=QUIET)
    resumed = run_cli("train", "--resume", str(tmp_path / "cut"), "--set", "train.steps=60")
    assert resumed.returncode == 0, resumed.stderr
    assert "after generator step 40" in resumed.stdout
    a, b = (
        load_file(str(run / "checkpoints" / "last.safetensors")),
        load_file(str(tmp_path / "cut" / "checkpoints" / "last.safetensors")),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # networks, optimizers, averages, random streams
    assert pd.read_csv(tmp_path / "cut" / "history.csv")["d_loss"].tolist() == history["d_loss"].tolist()
    with pytest.raises(TrainwrightError, match="already trained 60 generator steps"):  # its config now says 60
        tw.train(resume=tmp_path / "cut", console=QUIET)
    # Killed while finishing: every step trained and checkpointed, the results not all written. The resume writes them.
    cut = tmp_path / "cut"
    written = json.loads((cut / "metrics.json").read_text())
    for name in ("metrics.json", "report.html", "samples.png"):
        (cut / name).unlink()
    finished = run_cli("train", "--resume", str(cut))
    assert finished.returncode == 0, finished.stderr
    assert "had trained all 60 generator steps; writing its results" in finished.stdout
    again = json.loads((cut / "metrics.json").read_text())
    assert again["steps"] == 60 and again["quality"] == written["quality"]  # the same kept generator, judged the same
    assert (cut / "samples.png").is_file() and "Samples along training" in (cut / "report.html").read_text()
    listed = {row["name"]: row for row in list_runs(tmp_path)}  # what `trainwright runs` and `compare` show
    assert listed["whole"]["metric"] == "quality" and listed["whole"]["model"] == "gan-mlp" and listed["whole"]["finished"]
    assert compare_runs([run, tmp_path / "cut"])[0] == ["whole", "cut"]


def test_the_grid_defaults_to_rejection_sampling_which_the_run_and_sample_use(tmp_path):
    """`--data grid`: gan.mlp_init torch and gan.sample.rejection by default; the run prints the generator's own
    measures beside the accepted samples', keeps the calibrated discriminator, and `trainwright sample` uses it."""
    result = run_cli("train", "--data", "grid", "--set", "recipe=gan", "--set", "train.steps=20", "--set",
                     "gan.sample.rejection_steps=10", "--set", "gan.evaluate.every_steps=20", "--set",
                     "gan.evaluate.n_samples=200", "--set", "gan.g_hidden=[16]", "--set", "gan.d_hidden=[16]",
                     "--runs-dir", str(tmp_path), "--name", "grid")
    assert result.returncode == 0, result.stderr
    assert "the generator alone:" in result.stdout and "discriminator rejection sampling" in result.stdout
    run = tmp_path / "grid"
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 < metrics["rejection"]["acceptance"] <= 1 and "high_quality" in metrics["generator_alone"]
    assert (run / "discriminator_rejection.safetensors").is_file() and (run / "rejection.json").is_file()
    rows = run_cli("sample", str(run), "-n", "50", "-o", str(tmp_path / "points.csv"))
    assert rows.returncode == 0, rows.stderr
    assert len(pd.read_csv(tmp_path / "points.csv")) == 50


def test_a_conditional_image_run_is_judged_by_its_own_classifier_and_samples_a_class(tmp_path):
    result = run_cli(
        "train",
        "--data",
        "digits-images",
        "--set",
        "recipe=gan",
        "--set",
        "gan.conditional=true",
        "--set",
        "gan.width=8",
        "--set",
        "train.steps=20",
        "--set",
        "train.batch_size=32",
        "--set",
        "gan.evaluate.every_steps=10",
        "--set",
        "gan.evaluate.n_samples=100",
        "--set",
        "gan.evaluate.classifier_epochs=1",
        "--runs-dir",
        str(tmp_path),
        "--name",
        "digits",
    )
    assert result.returncode == 0, result.stderr
    run = tmp_path / "digits"
    assert "judge of the samples" in result.stdout and (run / "classifier" / "model.safetensors").is_file()
    quality = json.loads((run / "metrics.json").read_text())["quality"]
    assert {"asked_rate", "fid", "fid_floor", "coverage", "density"} <= set(quality) and len(quality["class_shares"]) == 10
    grid = run_cli("sample", str(run), "-n", "16", "--class", "3", "-o", str(tmp_path / "threes.png"))
    assert grid.returncode == 0, grid.stderr
    assert (tmp_path / "threes.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(TrainwrightError, match="not one of the run's classes"):
        sample_run(run, 8, tmp_path / "x.png", label="eleven")
    with pytest.raises(TrainwrightError, match="generates images.*samples.png"):
        sample_run(run, 8, tmp_path / "x.csv")


def test_a_table_run_samples_rows_in_original_units_and_categories(tmp_path):
    table = tmp_path / "penguins.csv"
    penguins_like().to_csv(table, index=False)
    cfg = {
        "recipe": "gan",
        "data": {"source": str(table), "target": "species"},
        "train": {"steps": 40, "batch_size": 32},
        "gan": {"g_hidden": [16], "d_hidden": [16], "evaluate": {"every_steps": 20, "n_samples": 200}},
    }
    run = tw.train(cfg, runs_dir=tmp_path, name="table", console=QUIET)
    rows = pd.read_csv(run.dir / "samples.csv")
    assert list(rows.columns) == [
        "island",
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "sex",
        "species",
    ]
    assert set(rows["island"]) <= {"Biscoe", "Dream", "Torgersen"} and set(rows["species"]) <= {"Adelie", "Gentoo", "Chinstrap"}
    assert rows["body_mass_g"].between(1000, 8000).all()  # grams, not standardized units
    quality = run.metrics["quality"]
    assert set(quality["columns"]) == set(rows.columns) and quality["train_on_synthetic"]["metric"] == "accuracy"


def test_bad_input_is_one_line_with_the_fix(tmp_path):
    expect_clear_error(
        run_cli("train", "--data", "word-order", "--set", "recipe=gan", "--runs-dir", str(tmp_path)), "text data", "ring, grid"
    )
    refused = [
        ({"source": "seasonal"}, {}, "series data"),
        ({"source": "diabetes"}, {"conditional": True}, "gan.conditional needs class labels.*regression"),
        ({"source": "digits-images", "image": {"size": 6}}, {}, "cannot make 6x6 images.*data.image.size"),
    ]
    for data, gan, message in refused:
        with pytest.raises(TrainwrightError, match=message):
            tw.train({"recipe": "gan", "data": data, "gan": gan}, runs_dir=tmp_path, console=QUIET)
    with pytest.raises(TrainwrightError, match="generator steps, not epochs.*train.steps"):
        tw.estimate({"recipe": "gan", "data": {"source": "ring"}}, overrides=["train.epochs=3"], console=QUIET)
    assert not any(tmp_path.iterdir())  # nothing written
