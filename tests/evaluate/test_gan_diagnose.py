"""The GAN diagnosis on hand-made histories: each failure found with its evidence, a healthy run left alone."""

from __future__ import annotations

from trainwright.evaluate.gan_diagnose import diagnose_gan


def rows(n: int, **columns) -> list[dict]:
    """``n`` history rows; each column is a constant or a function of the row index."""
    return [{"epoch": i + 1, "step": 100 * (i + 1), **{k: (v(i) if callable(v) else v) for k, v in columns.items()}}
            for i in range(n)]


HEALTHY = {"d_loss": 1.2, "g_loss": 0.9, "d_real": 0.4, "d_fake": -0.3, "g_grad_norm": 0.5,
           "quality": lambda i: min(0.9, 0.1 * i)}


def test_a_healthy_run_has_no_findings():
    metrics = {"quality": {"modes": 8, "high_quality": 0.93, "mode_counts": [300] * 8}, "best_epoch": 10, "best_step": 1000}
    assert diagnose_gan(rows(10, **HEALTHY), metrics) == []


def test_mode_collapse_on_a_mixture_and_on_images():
    collapsed = {"quality": {"modes": 3, "high_quality": 0.9, "mode_counts": [800, 700, 700] + [0] * 22}, "best_step": 5000}
    [finding] = diagnose_gan(rows(10, **HEALTHY), collapsed)
    assert finding["kind"] == "mode_collapse" and "3 of 25 modes" in finding["evidence"]
    assert any("gan.pack" in remedy for remedy in finding["remedies"])
    unlearned = {"quality": {"modes": 0, "high_quality": 0.0, "mode_counts": [0] * 8}}  # not collapse: nothing learned yet
    assert diagnose_gan(rows(10, **HEALTHY), unlearned) == []
    starved = {"quality": {"class_shares": [0.3, 0.3, 0.39, 0.01], "coverage": 0.8, "recall": 0.8}}
    assert [f["kind"] for f in diagnose_gan(rows(10, **HEALTHY), starved)] == ["mode_collapse"]


def test_a_discriminator_that_wins_outright():
    history = rows(9, d_loss=lambda i: 1.3 if i < 3 else 0.01, g_loss=lambda i: 0.7 + i, d_real=9.0, d_fake=-9.0,
                   g_grad_norm=lambda i: 2.0 if i < 3 else 0.01, quality=0.1)
    [finding] = diagnose_gan(history, None)
    assert finding["kind"] == "discriminator_wins" and "0.5% of its peak" in finding["evidence"]
    assert any("gan.r1" in remedy for remedy in finding["remedies"])
    assert diagnose_gan(history, None, loss="wgan_gp") == []  # a critic's loss has no zero to fall to


def test_oscillation_without_progress():
    history = rows(12, **{**HEALTHY, "quality": lambda i: [0.2, 0.5, 0.7, 0.8, 0.6, 0.7, 0.3, 0.7, 0.2, 0.6, 0.3, 0.7][i]})
    [finding] = diagnose_gan(history, None)
    assert finding["kind"] == "oscillation" and "reversing" in finding["evidence"]
    assert any("gan.lr_decay" in remedy for remedy in finding["remedies"])


def test_divergence_is_reported_with_gan_remedies():
    [finding] = diagnose_gan(rows(2, **HEALTHY), None, diverged={"epoch": 3, "loss": float("nan")})
    assert finding["kind"] == "diverged" and any("gan.lr_d" in remedy for remedy in finding["remedies"])
