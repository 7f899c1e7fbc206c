"""Calibration: fitted on validation, judged on test, applied by predict afterwards."""

from __future__ import annotations

import io
import json

import pytest
import torch
from helpers import run_cli
from rich.console import Console

import trainwright as tw
from trainwright.evaluate.calibration import calibration_metrics, fit_calibrator

QUIET = Console(quiet=True)


def test_temperature_recovers_a_known_temperature():
    torch.manual_seed(0)
    true_logits = torch.randn(4000, 5) * 2
    y = torch.distributions.Categorical(logits=true_logits).sample()
    calibrator = fit_calibrator(true_logits * 3, y, "multiclass", "temperature")  # a model 3x too confident
    assert calibrator.temperature == pytest.approx(3.0, rel=0.1)
    probs = calibrator.probabilities(true_logits * 3)
    assert torch.equal(probs.argmax(1), true_logits.argmax(1))  # temperature never changes the argmax


@pytest.mark.parametrize("method", ["temperature", "vector", "isotonic"])
def test_every_method_gives_probabilities_for_binary_and_multiclass(method):
    torch.manual_seed(1)
    for task, width, classes in (("binary", 1, 2), ("multiclass", 3, 3)):
        logits = torch.randn(300, width) * 4
        y = (logits.squeeze(1) > 0).long() if task == "binary" else logits.argmax(1)
        y[:30] = torch.randint(0, classes, (30,))  # some label noise
        probs = fit_calibrator(logits, y, task, method).probabilities(logits)
        assert probs.shape == (300, classes)
        assert torch.allclose(probs.sum(1), torch.ones(300), atol=1e-5) and (probs >= 0).all()


def test_metrics_of_a_perfectly_calibrated_and_an_overconfident_predictor():
    y = torch.tensor([0, 0, 1, 1])
    honest = torch.tensor([[0.5, 0.5]] * 4)
    assert calibration_metrics(honest, y)["ece"] == pytest.approx(0.0)
    wrong_and_sure = torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    m = calibration_metrics(wrong_and_sure, y)
    assert m["ece"] == pytest.approx(1.0) and m["mce"] == pytest.approx(1.0)
    assert m["brier"] == pytest.approx(2.0) and m["accuracy"] == 0.0


def test_regression_runs_cannot_be_calibrated(tmp_path):
    with pytest.raises(tw.TrainwrightError, match="classifiers"):
        tw.train({"data": {"source": "diabetes"}, "calibrate": {"method": "temperature"}}, runs_dir=tmp_path, console=QUIET)


def test_temperature_scaling_fixes_an_overconfident_model_end_to_end(tmp_path):
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "examples"
    # Trained in this process (the calibrate command below is the one run through the command line), for 60 of the
    # example's 200 epochs and without baselines: by then its loss is ~0 and temperature scaling cuts the ECE by ~2/3.
    out = io.StringIO()
    tw.train(examples / "overconfident.yaml", overrides=["train.epochs=60", "evaluate.baseline=false"], runs_dir=tmp_path,
             name="sure", console=Console(file=out, width=120))
    assert "calibration (temperature" in out.getvalue()
    run_dir = tmp_path / "sure"
    report = json.loads((run_dir / "calibration.json").read_text())
    assert report["method"] == "temperature" and report["temperature"] > 1  # over-confident: T > 1 softens
    assert set(report["before"]) == set(report["after"]) == {"ece", "mce", "nll", "brier", "accuracy"}
    assert report["after"]["ece"] <= 0.6 * report["before"]["ece"]  # at least 40% lower
    assert report["after"]["accuracy"] == report["before"]["accuracy"]
    assert (run_dir / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    # One expected calibration error: the report's equals calibrate's "before", on the same test rows.
    from trainwright.report.build import report_context
    from trainwright.rundir import RunDir

    assert report_context(RunDir(run_dir))["evaluation"]["ece"] == pytest.approx(report["before"]["ece"], abs=1e-5)

    # From now on predict returns calibrated probabilities, with the same predicted classes.
    from trainwright.data.builtin import BUILTINS

    rows = BUILTINS["digits"].load().drop(columns=["digit"]).head(50)
    calibrated, raw = tw.load(run_dir).predict_proba(rows), tw.load(run_dir, calibrated=False).predict_proba(rows)
    assert (calibrated.argmax(1) == raw.argmax(1)).all()
    assert calibrated.max(1).mean() < raw.max(1).mean()  # less sure of itself

    # The command re-calibrates with another method; the test split is never used for fitting.
    result = run_cli("calibrate", str(run_dir), "--method", "isotonic")
    assert result.returncode == 0, result.stderr
    assert json.loads((run_dir / "calibration.json").read_text())["method"] == "isotonic"
    bad = run_cli("calibrate", str(run_dir), "--method", "platt")
    assert bad.returncode == 2 and "temperature, vector, isotonic" in bad.stderr
