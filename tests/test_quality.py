"""The foundation's accuracy targets, on the built-in sets with the shipped defaults."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

import trainwright as tw

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
QUIET = Console(quiet=True)


def healthy(run) -> bool:
    """The shipped examples train without any diagnosis finding."""
    return json.loads((run.dir / "diagnosis.json").read_text()) == {"findings": []}


def test_digits_example_reaches_97_percent(tmp_path):
    run = tw.train(EXAMPLES / "digits.yaml", runs_dir=tmp_path, console=QUIET)
    assert run.metrics["test"]["accuracy"] >= 0.97
    assert healthy(run)


def test_breast_cancer_reaches_95_percent(tmp_path):
    run = tw.train(EXAMPLES / "breast_cancer.yaml", runs_dir=tmp_path, console=QUIET)
    assert run.metrics["task"] == "binary"
    assert run.metrics["test"]["accuracy"] >= 0.95
    assert healthy(run)


def test_diabetes_r2_at_least_040_over_split_seeds(tmp_path):
    """With 442 rows the test split holds 67: its R² swings with the split. Seed 0's test rows
    are hard for every model (ridge regression scores 0.22 on them, 0.42-0.57 on seeds 1-9), so
    the target is checked as the mean over split seeds 0-4, and seed 0 against ridge's 0.22."""
    runs = [tw.train(EXAMPLES / "diabetes.yaml", overrides=[f"data.split.seed={seed}"], runs_dir=tmp_path, console=QUIET) for seed in range(5)]
    assert all(healthy(run) for run in runs)
    r2 = [run.metrics["test"]["r2"] for run in runs]
    assert sum(r2) / len(r2) >= 0.40
    assert r2[0] >= 0.22
