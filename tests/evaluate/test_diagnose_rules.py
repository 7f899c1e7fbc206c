"""The diagnosis rules, one by one, on small hand-made histories and gradient statistics."""

from __future__ import annotations

import math

import pytest

from trainwright.evaluate.diagnose import KINDS, REMEDIES, diagnose, no_skill_loss

LN10 = math.log(10)


def history(train, val=None, lr=1e-3, metric=0.9):
    val = val or train
    return [{"epoch": i + 1, "train_loss": t, "val_loss": v, "val_accuracy": metric, "lr": lr, "seconds": 0.1}
            for i, (t, v) in enumerate(zip(train, val))]


def gradients(means, highs=None, dead=None, layers=("0", "2", "4")):
    highs = highs or [[2 * v if v is not None else None for v in row] for row in means]
    return {
        "every": 1,
        "layers": [{"name": name, "type": "Linear", "shape": [8, 8]} for name in layers],
        "activations": [{"name": "1", "type": "ReLU"}, {"name": "3", "type": "ReLU"}],
        "epochs": [{"epoch": i + 1, "steps": 10, "norm_mean": m, "norm_max": h, "dead_share": (dead[i] if dead else [0.0, 0.02])}
                   for i, (m, h) in enumerate(zip(means, highs))],
    }


HEALTHY_LOSS = [1.2 * 0.8**i + 0.05 for i in range(30)]
HEALTHY_GRADS = gradients([[0.5 * 0.95**i, 1.0 * 0.95**i, 0.8 * 0.95**i] for i in range(30)])
GOOD_METRICS = {"held_out": True, "best_epoch": 30, "train": {"accuracy": 0.99}, "val": {"accuracy": 0.96},
                "baselines": {"logistic_regression": {"accuracy": 0.95}}}


def kinds(findings):
    return [f["kind"] for f in findings]


def test_a_healthy_run_has_no_findings():
    assert diagnose(history(HEALTHY_LOSS), HEALTHY_GRADS, task="multiclass", metrics=GOOD_METRICS, no_skill_loss=LN10) == []


def test_every_finding_has_the_promised_shape():
    findings = diagnose(
        history(HEALTHY_LOSS), HEALTHY_GRADS, task="multiclass", diverged={"epoch": 4, "loss": float("nan"), "lr": 10.0}
    )
    assert kinds(findings) == ["lr_too_high"]
    (f,) = findings
    assert list(f) == ["kind", "epoch", "evidence", "remedies"] and f["epoch"] == 4
    assert "nan in epoch 4 at learning rate 10" in f["evidence"]
    assert set(REMEDIES) == set(KINDS) and all(len(r) >= 3 for r in REMEDIES.values())


def test_nan_gradients_are_exploding_gradients_in_that_layer():
    grads = gradients([[0.5, 1.0, 0.8], [None, None, None]])
    findings = diagnose(history([1.0]), grads, task="binary", diverged={"epoch": 2, "loss": float("inf")})
    assert kinds(findings) == ["lr_too_high", "exploding_gradients"]
    assert findings[1]["epoch"] == 2 and findings[1]["layer"] == "0"


def test_a_gradient_spike_is_exploding_even_without_a_nan():
    means = [[0.5, 1.0, 0.8]] * 10
    highs = [[1.0, 2.0, 1.6]] * 6 + [[40.0, 900.0, 50.0]] + [[1.0, 2.0, 1.6]] * 3
    findings = diagnose(history(HEALTHY_LOSS[:10]), gradients(means, highs), task="multiclass")
    assert kinds(findings) == ["exploding_gradients"]
    assert findings[0]["epoch"] == 7 and findings[0]["layer"] == "2" and "900" in findings[0]["evidence"]


def test_gradients_shrinking_as_a_run_converges_are_not_a_spike():
    means = [[10.0 * 0.5**i] * 3 for i in range(40)]  # from 10 down to 1e-11: a converging full-batch run
    assert diagnose(history(HEALTHY_LOSS[:1] * 40), gradients(means, means), task="regression") == []


def test_vanishing_early_layers_name_the_first_layer_and_epoch():
    means = [[1e-9, 1e-5, 0.3]] * 5
    findings = diagnose(history([LN10] * 5), gradients(means), task="multiclass", no_skill_loss=LN10)
    assert kinds(findings) == ["vanishing_gradients"]
    assert findings[0]["layer"] == "0" and findings[0]["epoch"] == 1
    # A vanishing layer recovering by orders of magnitude (1e-13 -> 1e-9) is not an explosion.
    recovering = [[1e-13 * 10**i, 1e-6, 0.3] for i in range(5)]
    assert kinds(diagnose(history([LN10] * 5), gradients(recovering), task="multiclass")) == ["vanishing_gradients"]


def test_dead_relu_units_are_named_by_layer():
    dead = [[0.0, 0.1], [0.1, 0.7], [0.1, 0.9]]
    findings = diagnose(history([1.0, 0.8, 0.7]), gradients([[0.5, 1.0, 0.8]] * 3, dead=dead), task="multiclass")
    assert kinds(findings) == ["dead_units"]
    assert findings[0]["layer"] == "3" and findings[0]["epoch"] == 2 and "90%" in findings[0]["evidence"]


def test_a_blown_up_loss_that_never_recovers_is_lr_too_high():
    losses = [400.0, 3.0] + [2.31] * 20
    findings = diagnose(history(losses, lr=1.0), HEALTHY_GRADS, task="multiclass", no_skill_loss=LN10)
    assert kinds(findings) == ["lr_too_high"] and findings[0]["epoch"] == 1


def test_an_oscillating_loss_is_lr_too_high():
    losses = [1.0, 0.5, 0.9, 0.4, 0.8, 0.45, 0.85, 0.4, 0.9, 0.5]
    findings = diagnose(history(losses, lr=0.5), None, task="multiclass", no_skill_loss=LN10)
    assert kinds(findings) == ["lr_too_high"] and "oscillates" in findings[0]["evidence"]


def test_a_creeping_loss_is_lr_too_low_and_explains_the_underfit():
    val = [2.8 - 0.005 * i for i in range(60)]
    metrics = {**GOOD_METRICS, "train": {"accuracy": 0.15}, "val": {"accuracy": 0.14}}
    findings = diagnose(history(val, val, lr=1e-6), HEALTHY_GRADS, task="multiclass", metrics=metrics, no_skill_loss=LN10)
    assert kinds(findings) == ["lr_too_low"] and findings[0]["epoch"] == 60


def test_a_training_score_below_the_baseline_is_underfitting():
    metrics = {**GOOD_METRICS, "train": {"accuracy": 0.80}, "val": {"accuracy": 0.78}}
    findings = diagnose(history(HEALTHY_LOSS), HEALTHY_GRADS, task="multiclass", metrics=metrics, no_skill_loss=LN10)
    assert kinds(findings) == ["underfitting"] and "logistic_regression" in findings[0]["evidence"]
    no_baselines = {**metrics, "baselines": {}, "train": {"r2": 0.01}, "val": {"r2": 0.0}}
    assert kinds(diagnose(history(HEALTHY_LOSS), None, task="regression", metrics=no_baselines)) == ["underfitting"]


def test_validation_loss_rising_under_the_kept_weights_is_overfitting():
    train = [1.0 * 0.7**i for i in range(40)]
    val = [0.8 - 0.1 * i for i in range(5)] + [0.4 + 0.03 * i for i in range(35)]
    metrics = {**GOOD_METRICS, "best_epoch": 5}
    findings = diagnose(history(train, val), HEALTHY_GRADS, task="multiclass", metrics=metrics, restored_best=False)
    assert kinds(findings) == ["overfitting"] and findings[0]["epoch"] == 5
    assert "rose from 0.4 at epoch 5" in findings[0]["evidence"]
    # With early stopping's best weights restored, the same curves leave nothing to report...
    assert diagnose(history(train, val), HEALTHY_GRADS, task="multiclass", metrics=metrics, restored_best=True) == []
    # ...unless even the best weights fit the training rows far better than the validation rows.
    wide = {**metrics, "train": {"accuracy": 1.0}, "val": {"accuracy": 0.7}}
    assert kinds(diagnose(history(train, val), HEALTHY_GRADS, task="multiclass", metrics=wide)) == ["overfitting"]


def test_no_skill_losses():
    assert no_skill_loss("multiclass", "cross_entropy", [0.1] * 10, True) == pytest.approx(LN10)
    assert no_skill_loss("binary", "bce", [0.5, 0.5], True) == pytest.approx(math.log(2))
    assert no_skill_loss("regression", "mse", [], True) == 1.0
    assert no_skill_loss("regression", "mae", [], True) is None
