"""Knowledge distillation end to end: teacher -> small student, against the same student from scratch."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from helpers import run_cli
from rich.console import Console

import trainwright as tw
from trainwright.recipes.distill import kd_loss
from trainwright.training.losses import build_loss

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_kd_loss_is_the_hard_loss_at_alpha_zero_and_zero_when_the_student_copies_the_teacher():
    torch.manual_seed(0)
    logits, y = torch.randn(8, 4), torch.randint(0, 4, (8,))
    ce = build_loss("cross_entropy")
    assert torch.isclose(kd_loss("multiclass", ce, 4.0, 0.0)(logits, (y, torch.randn(8, 4))), ce(logits, y))
    assert kd_loss("multiclass", ce, 4.0, 1.0)(logits, (y, logits.clone())).abs() < 1e-6
    binary = kd_loss("binary", build_loss("bce"), 2.0, 1.0)
    z = torch.randn(8, 1)
    assert binary(z, (y.clamp(max=1), z.clone())).abs() < 1e-6


def test_soft_target_confidence_says_when_the_soft_targets_are_the_labels():
    from trainwright.recipes.distill import confidence_line, soft_target_confidence

    teacher = torch.nn.Linear(3, 4)
    with torch.no_grad():
        teacher.weight.copy_(torch.eye(4, 3) * 20)  # a teacher sure of every row: logit gaps of about 20
        teacher.bias.zero_()
    x = torch.eye(3)
    sure = soft_target_confidence(teacher, x, "multiclass", 1.0, batch_size=2)
    soft = soft_target_confidence(teacher, x, "multiclass", 8.0, batch_size=2)
    assert sure > 0.99 and 0.5 < soft < 0.9
    assert "nearly the labels themselves" in confidence_line(sure, 1.0)
    assert "labels" not in confidence_line(soft, 8.0)


def test_distill_command_writes_the_comparison(tmp_path):
    # The teacher is trained in this process (the command's train is tested in test_cli); `distill` is under test.
    tw.train({"data": {"source": "iris"}, "model": {"hidden": [256, 128]}, "train": {"epochs": 30},
              "evaluate": {"baseline": False}}, runs_dir=tmp_path, name="teacher", console=Console(quiet=True))
    result = run_cli(
        "distill",
        str(tmp_path / "teacher"),
        "--student",
        str(EXAMPLES / "student.yaml"),
        "--seeds",
        "2",
        "--set",
        "train.epochs=10",
        "--runs-dir",
        str(tmp_path),
        "--name",
        "student",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(tmp_path / "student")
    report = json.loads((tmp_path / "student" / "distill.json").read_text())
    for role in ("teacher", "distilled", "scratch"):
        assert {"accuracy", "f1", "parameters", "flops_per_example", "latency_ms"} <= set(report[role])
    assert report["distilled"]["parameters"] * 10 <= report["teacher"]["parameters"]
    assert report["distilled"]["flops_per_example"] < report["teacher"]["flops_per_example"]
    assert [s["seed"] for s in report["seeds"]] == [0, 1]
    assert 0.25 < report["teacher_top_probability"] <= 1  # iris has 3 classes
    assert "teacher's soft targets at T = 4: mean top probability" in result.stdout
    assert (tmp_path / "student" / "seeds" / "scratch-1" / "metrics.json").is_file()
    wrong = run_cli(
        "distill", str(tmp_path / "teacher"), "--student", str(EXAMPLES / "student.yaml"), "--set", "data.source=wine"
    )
    assert wrong.returncode == 2 and "teacher's data" in wrong.stderr


def test_blends_for_function_matching_and_their_hard_loss():
    from trainwright.recipes.distill import blend, blended_hard_loss

    torch.manual_seed(0)
    images = torch.randint(0, 256, (6, 1, 4, 4), dtype=torch.uint8)
    mixed, partner, lam = blend(images, 1.0)
    pixels = images.float() / 255
    expected = lam.view(-1, 1, 1, 1) * pixels + (1 - lam.view(-1, 1, 1, 1)) * pixels[partner]
    assert mixed.dtype == torch.float32 and torch.allclose(mixed, expected) and ((lam > 0) & (lam < 1)).all()
    logits, y = torch.randn(6, 3), torch.randint(0, 3, (6,))
    ce = torch.nn.functional.cross_entropy
    assert torch.isclose(blended_hard_loss("multiclass")(logits, (y, partner, torch.ones(6))), ce(logits, y))
    assert torch.isclose(blended_hard_loss("multiclass")(logits, (y, partner, torch.zeros(6))), ce(logits, y[partner]))
