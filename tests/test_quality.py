"""The foundation's accuracy targets, on the built-in sets with the shipped defaults."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

import trainwright as tw

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
QUIET = Console(quiet=True)


def test_digits_example_reaches_97_percent(tmp_path):
    run = tw.train(EXAMPLES / "digits.yaml", runs_dir=tmp_path, console=QUIET)
    assert run.metrics["test"]["accuracy"] >= 0.97


def test_breast_cancer_reaches_95_percent(tmp_path):
    run = tw.train({"data": {"source": "breast_cancer"}}, runs_dir=tmp_path, console=QUIET)
    assert run.metrics["task"] == "binary"
    assert run.metrics["test"]["accuracy"] >= 0.95


def test_diabetes_r2_at_least_040(tmp_path):
    run = tw.train({"data": {"source": "diabetes"}}, runs_dir=tmp_path, console=QUIET)
    assert run.metrics["task"] == "regression"
    assert run.metrics["test"]["r2"] >= 0.40
