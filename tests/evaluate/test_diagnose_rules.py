"""The diagnosis rules, one by one, on small hand-made histories and gradient statistics."""

from __future__ import annotations

import math
import re
import typing

import pytest

from trainwright.evaluate.diagnose import KINDS, REMEDIES, diagnose, no_skill_loss, remedies

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
    assert set(REMEDIES) == set(KINDS) and all(len(remedies(kind, "mlp")) >= 3 for kind in KINDS)


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


# ── classes, tiny data, remedies that fit the model ────────────────────────────────────
def confusion(matrix, labels=("no", "yes")):
    return {"labels": list(labels), "matrix": matrix}


def test_predicting_only_the_majority_class_on_imbalanced_data():
    metrics = {**GOOD_METRICS, "train": {"accuracy": 0.81}, "val": {"accuracy": 0.81}, "baselines": {},
               "test": {"accuracy": 0.81, "balanced_accuracy": 0.5}, "confusion_matrix": confusion([[160, 0], [38, 0]])}
    findings = diagnose(history(HEALTHY_LOSS), HEALTHY_GRADS, task="binary", metrics=metrics, majority_share=0.81,
                        rows={"train": 920, "val": 198, "test": 198})
    assert kinds(findings) == ["majority_only"]
    assert "predicted 'no' 198 times (100%); 81% of the training rows are 'no'" in findings[0]["evidence"]
    assert "train.class_weight: balanced" in findings[0]["remedies"][0]
    assert "evaluate.threshold: auto" in findings[0]["remedies"][1]


def test_a_real_class_never_predicted_is_not_healthy():
    matrix = [[50, 2, 0], [3, 40, 0], [4, 8, 0]]  # class 'c': 12 test rows, never predicted
    metrics = {**GOOD_METRICS, "test": {"accuracy": 0.84, "balanced_accuracy": 0.62},
               "confusion_matrix": confusion(matrix, ("a", "b", "c"))}
    findings = diagnose(history(HEALTHY_LOSS), HEALTHY_GRADS, task="multiclass", metrics=metrics, majority_share=0.5,
                        rows={"train": 500, "val": 107, "test": 107})
    assert kinds(findings) == ["class_never_predicted"] and "never predicts 'c' (12 test rows)" in findings[0]["evidence"]


def test_on_a_few_validation_rows_score_findings_give_way_to_too_little_data():
    val = [2.8 - 0.005 * i for i in range(60)]
    metrics = {**GOOD_METRICS, "train": {"accuracy": 1.0}, "val": {"accuracy": 0.3}}
    both = diagnose(history(val, val, lr=1e-6), HEALTHY_GRADS, task="multiclass", metrics=metrics, no_skill_loss=LN10,
                    rows={"train": 38, "val": 8, "test": 8})
    assert kinds(both) == ["too_little_data"] and both[0]["epoch"] is None
    assert "with 8 validation rows (38 training)" in both[0]["evidence"] and "(lr too low, overfitting)" in both[0]["evidence"]
    plenty = diagnose(history(val, val, lr=1e-6), HEALTHY_GRADS, task="multiclass", metrics=metrics, no_skill_loss=LN10,
                      rows={"train": 380, "val": 80, "test": 80})
    assert kinds(plenty) == ["lr_too_low", "overfitting"]
    # A NaN loss is no statistic: it is reported whatever the size.
    nan = diagnose(history([1.0]), None, task="binary", diverged={"epoch": 2, "loss": float("nan")}, rows={"val": 3})
    assert kinds(nan) == ["lr_too_high"]


FAMILIES = ("mlp", "cnn", "resnet", "rnn", "lstm", "gru", "transformer")
KEY = re.compile(r"\b((?:model|train|data|evaluate)(?:\.[a-z0-9_]+)+)")


def _schema_has(path: list[str], family: str) -> bool:
    """Whether ``data.split.val``-style keys exist in the config schema with ``family``'s model section."""
    from pydantic import BaseModel

    from trainwright.config import Config
    from trainwright.models.registry import MODELS

    node: type[BaseModel] = Config
    for i, part in enumerate(path):
        if i == 1 and path[0] == "model":
            node = MODELS[family].config
        fields = node.model_fields
        if part not in fields:
            return False
        inner = [t for t in typing.get_args(fields[part].annotation) or [fields[part].annotation]
                 if isinstance(t, type) and issubclass(t, BaseModel)]
        if i + 1 < len(path):
            if path[0] == "model" and i == 0:
                continue
            if not inner:
                return False
            node = inner[0]
    return True


@pytest.mark.parametrize("family", FAMILIES)
def test_every_remedy_names_keys_that_exist_for_the_model_family(family):
    from trainwright.config import Config

    for kind in KINDS:
        lines = remedies(kind, family)
        assert lines, (kind, family)
        for line in lines:
            for key in KEY.findall(line):
                assert _schema_has(key.split("."), family), f"{kind} for {family}: {key} is not a key ({line})"
    assert "model.hidden" not in " ".join(remedies("overfitting", "cnn") + remedies("underfitting", "lstm")[1:])
    assert Config.model_fields  # the walk above starts from the real schema
