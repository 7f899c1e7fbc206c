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


def test_diabetes_r2_at_least_040_on_every_split_seed(tmp_path):
    """With 442 rows the test split holds 67. A plain shuffle made its R² swing with the seed (seed
    0's test rows held so little of the target's spread that ridge regression scored 0.22 on them);
    stratified on target quantiles, every split spans the range, and the target holds on each seed."""
    runs = [
        tw.train(EXAMPLES / "diabetes.yaml", overrides=[f"data.split.seed={seed}"], runs_dir=tmp_path, console=QUIET)
        for seed in range(5)
    ]
    assert all(healthy(run) for run in runs)
    r2 = [run.metrics["test"]["r2"] for run in runs]
    assert min(r2) >= 0.40, r2
    assert all(json.loads((run.dir / "data.json").read_text())["split"]["stratified"] for run in runs)
