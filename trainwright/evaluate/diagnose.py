"""What went wrong in training, in words, with the remedies a practitioner would try.

``diagnose`` is a pure function over what a run directory holds: the per-epoch history
(``history.csv``), the gradient statistics (``gradients.json``), the final metrics with their
baselines (``metrics.json``) and, for a run that failed, the epoch whose loss became NaN.
``runs.diagnose_run`` reads those files, so a run trained yesterday is diagnosed the same way.

Each finding is ``{"kind", "epoch", "layer" (when it applies), "evidence", "remedies"}``, with
``kind`` one of ``KINDS``. An empty list means nothing looks wrong. The thresholds below were set
on the built-in data sets with their default configs (no findings on any split seed tried) and
on deliberately broken configs (tests/evaluate/test_diagnose.py): each is a margin well outside
what healthy runs show, so a finding is worth reading.

Example:
    >>> diagnose(history, gradients, task="multiclass", no_skill_loss=2.30)  # Adam at lr 1e-6 on digits
    [{'kind': 'lr_too_low', 'epoch': 30, 'evidence': 'the validation loss crept from 2.82 to 2.75 ...', 'remedies': [...]}]
"""

from __future__ import annotations

import csv
import itertools
import math
import statistics
from pathlib import Path
from typing import Any, Literal

from rich.console import Console

KINDS = ("lr_too_high", "exploding_gradients", "vanishing_gradients", "dead_units", "lr_too_low", "underfitting", "overfitting",
         "majority_only", "class_never_predicted", "too_little_data")
Kind = Literal[
    "lr_too_high", "exploding_gradients", "vanishing_gradients", "dead_units", "lr_too_low", "underfitting", "overfitting",
    "majority_only", "class_never_predicted", "too_little_data"
]
# Judged from how the scores and losses moved: on a few validation rows that is noise, not a finding.
STATISTICAL = ("lr_too_low", "underfitting", "overfitting", "majority_only", "class_never_predicted")

# ── thresholds ─────────────────────────────────────────────────────────────────────────
VANISHING_RATIO = 1e-3  # first layer's gradient norm below this fraction of the largest layer's
NEAR_ZERO_NORM = 1e-7  # every layer's gradient norm below this: nothing learns
SPIKE_RATIO = 100.0  # a step's gradient norm this many times the typical norm of the epochs before
GROWTH_RATIO = 1e3  # the epoch-mean gradient norm grew this many times over the first epoch's
DEAD_SHARE = 0.5  # at least this share of a ReLU layer's units output 0 for every validation row
LOW_LR_RATE = 0.01  # lr too low: the validation loss sheds less than this share of its first value per epoch ...
LOW_LR_MIN_EPOCHS = 10  # ... over at least this many epochs ...
LOW_LR_STILL_FALLING = 0.8  # ... still falls in at least this share of the last epochs ...
LOW_LR_FAR = 0.5  # ... and stays above this share of the no-skill loss (without one: fell by less than this share)
BLOWUP = 10.0  # lr too high: the training loss of an epoch this many times a no-skill model's
RISE_RATIO = 1.5  # lr too high: the training loss climbed back to this many times its minimum ...
RISE_MIN_ABS = 0.1  # ... by at least this fraction of the no-skill loss (or of the first epoch's)
JUMP = 0.25  # lr too high: an epoch's training loss this fraction above the epoch before ...
OSCILLATIONS = 3  # ... at least this many times
UNDERFIT_ACCURACY = 0.05  # training accuracy this far below the best baseline's test accuracy (or 2 standard errors)
UNDERFIT_R2 = 0.10  # training R² this far below the best baseline's test R²
CHANCE_MARGIN = 0.05  # accuracy within this of always guessing the majority class; R² below this
OVERFIT_VAL_RISE = 0.20  # validation loss of the kept weights this fraction above its minimum ...
OVERFIT_VAL_RISE_ABS = 0.02  # ... and by at least this much in absolute terms
OVERFIT_ACCURACY_GAP = 0.08  # training accuracy above validation accuracy by this much (and 3 standard errors)
OVERFIT_R2_GAP = 0.30  # training R² above validation R² by this much
MIN_ROWS = 30  # fewer validation rows (or windows) than this: too few to judge fit, learning rate or classes
ONE_CLASS_SHARE = 0.98  # predicting one class for at least this share of the test rows ...
IMBALANCED = 0.6  # ... which is the majority class, at least this share of the training rows
NEVER_PREDICTED_ROWS = 5  # a class with at least this many test rows that the network never predicts

# A remedy is a line for every model family, or {family: line} for the families it fits (a key that
# exists in that family's config; tests/evaluate/test_diagnose_rules.py checks each against the schema).
Remedy = str | dict[str, str]
REMEDIES: dict[str, list[Remedy]] = {
    "overfitting": [
        "regularize: add an L2 penalty (train.l2: 1e-4) or weight decay (train.optimizer: {name: adamw, weight_decay: 0.01})",
        {"mlp": "add dropout (model.dropout: 0.2 to 0.5)", "cnn": "add dropout before the head (model.dropout: 0.2 to 0.5)",
         "resnet": "add dropout before the head (model.dropout: 0.2 to 0.5)",
         "rnn": "add dropout (model.dropout: 0.2 to 0.5; between stacked layers and before the head)",
         "transformer": "raise dropout (model.dropout: 0.2 to 0.3)"},
        "keep early stopping on with the best weights restored (train.early_stopping: {enabled: true, restore_best: true})",
        "get more data, or augment the data you have",
        {"mlp": "use a smaller network (fewer or narrower model.hidden layers)",
         "cnn": "use a smaller network (fewer or narrower stages, model.widths)",
         "resnet": "use a smaller network (fewer or narrower stages, model.widths, or fewer model.blocks)",
         "rnn": "use a smaller network (fewer model.hidden units or model.layers)",
         "transformer": "use a smaller network (a smaller model.d_model or fewer model.layers)"},
    ],
    "underfitting": [
        {"mlp": "give the model more capacity: wider or more hidden layers (model.hidden)",
         "cnn": "give the model more capacity: wider or more stages (model.widths) or more convolutions per stage (model.convs)",
         "resnet": "give the model more capacity: wider or more stages (model.widths) or more model.blocks per stage",
         "rnn": "give the model more capacity: more model.hidden units or model.layers",
         "transformer": "give the model more capacity: a larger model.d_model, model.ff or more model.layers"},
        "train longer (train.epochs) and check the learning rate is not too low",
        "regularize less (lower model.dropout, train.l2, train.optimizer.weight_decay)",
        "add or engineer features that carry the signal",
    ],
    "vanishing_gradients": [
        {"mlp": "use ReLU (model.activation: relu) with He initialization (model.init: he)",
         "cnn": "use ReLU (model.activation: relu) with He initialization (model.init: he)",
         "resnet": "use ReLU (model.activation: relu) with He initialization (model.init: he)",
         "rnn": "use an LSTM or a GRU (model.type: lstm or gru), whose gates keep gradients alive through time"},
        {"mlp": "for tanh or sigmoid, use Xavier initialization (model.init: xavier), not small random weights",
         "cnn": "for tanh or sigmoid, use Xavier initialization (model.init: xavier), not small random weights"},
        {"mlp": "add batch normalization (model.batch_norm: true)", "cnn": "add batch normalization (model.batch_norm: true)"},
        {"mlp": "use fewer layers", "cnn": "use fewer stages (model.widths)", "resnet": "use fewer stages (model.widths)",
         "rnn": "use fewer layers (model.layers) or shorter windows (data.window.lookback)",
         "transformer": "use fewer layers (model.layers)"},
    ],
    "exploding_gradients": [
        "clip the gradient norm (train.clip_grad_norm: 1.0)",
        "lower the learning rate (train.optimizer.lr)",
        {"mlp": "add batch normalization (model.batch_norm: true)", "cnn": "add batch normalization (model.batch_norm: true)"},
        "check the inputs for extreme values and keep them standardized (data.preprocess.numeric: standard)",
    ],
    "dead_units": [
        "lower the learning rate (train.optimizer.lr)",
        {"mlp": "use an activation that keeps a gradient below zero (model.activation: leaky_relu or gelu)",
         "cnn": "use an activation that keeps a gradient below zero (model.activation: leaky_relu or gelu)",
         "resnet": "use an activation that keeps a gradient below zero (model.activation: leaky_relu or gelu)"},
        {"mlp": "use He initialization (model.init: he)", "cnn": "use He initialization (model.init: he)",
         "resnet": "use He initialization (model.init: he)"},
        {"mlp": "add batch normalization (model.batch_norm: true)", "cnn": "add batch normalization (model.batch_norm: true)"},
    ],
    "lr_too_high": [
        "lower the learning rate about 10x (train.optimizer.lr)",
        "warm the learning rate up (train.schedule.warmup_epochs: 5) or decay it (train.schedule.name: cosine)",
        "clip the gradient norm (train.clip_grad_norm: 1.0)",
    ],
    "lr_too_low": [
        "raise the learning rate about 10x (train.optimizer.lr)",
        "use Adam (train.optimizer.name: adam, lr 1e-3) or a one-cycle schedule (train.schedule.name: one_cycle)",
        "train for more epochs",
    ],
    "majority_only": [
        "weigh the classes in the loss (train.class_weight: balanced)",
        "for two classes, choose the decision threshold on the validation split (evaluate.threshold: auto)",
        "judge the model by balanced accuracy or macro F1, not accuracy, which rewards guessing the majority",
        "add features that tell the classes apart",
    ],
    "class_never_predicted": [
        "weigh the classes in the loss (train.class_weight: balanced)",
        "for two classes, choose the decision threshold on the validation split (evaluate.threshold: auto)",
        "get more rows of that class, or merge it with a related one",
    ],
    "too_little_data": [
        "get more data: these findings need a few dozen validation rows at least",
        "hold out more rows for validation (data.split.val) if the data allow",
        "train again with other split seeds (data.split.seed) to see how much the scores move",
    ],
}
# The recurrent families share one config (and so one set of remedies).
_FAMILY = {"lstm": "rnn", "gru": "rnn"}


def remedies(kind: str, model_type: str = "mlp") -> list[str]:
    """The remedies for ``kind`` that fit the model family (each names keys that exist in its config).

    Example:
        >>> remedies("vanishing_gradients", "lstm")[0]
        'use an LSTM or a GRU (model.type: lstm or gru), whose gates keep gradients alive through time'
    """
    family = _FAMILY.get(model_type, model_type)
    lines = [entry if isinstance(entry, str) else entry.get(family) for entry in REMEDIES[kind]]
    return [line for line in lines if line]


def finding(kind: Kind, epoch: int | None, evidence: str, layer: str | None = None, remedies: list[str] | None = None) -> dict:
    out: dict[str, Any] = {"kind": kind, "epoch": epoch}
    if layer is not None:
        out["layer"] = layer
    out["evidence"] = evidence
    out["remedies"] = remedies if remedies is not None else [line for line in REMEDIES[kind] if isinstance(line, str)]
    return out


def diagnose(
    history: list[dict],
    gradients: dict | None = None,
    *,
    task: str,
    metrics: dict | None = None,
    diverged: dict | None = None,
    restored_best: bool = True,
    majority_share: float | None = None,
    no_skill_loss: float | None = None,
    rows: dict | None = None,
    model_type: str = "mlp",
) -> list[dict]:
    """Findings about one run, most fundamental first; ``[]`` when training looks healthy.

    ``history``: one dict per finished epoch (``epoch``, ``train_loss``, ``val_loss``, ``lr``, and
    ``val_accuracy`` or ``val_r2``). ``gradients``: the content of ``gradients.json``.
    ``metrics``: the content of ``metrics.json`` (``train``/``val``/``test`` scores, ``baselines``,
    ``best_epoch``, ``held_out``), absent for a failed run. ``diverged``: ``{"epoch", "loss", "lr"}``
    when the loss became NaN. ``restored_best``: the kept weights are those of ``best_epoch``.
    ``majority_share``: the share of the most frequent class in the training rows.
    ``no_skill_loss``: the training loss of a model that learned nothing (predicts the class
    frequencies, or the mean), the yardstick for "the loss blew up" and "the loss barely moved".
    ``rows``: the split sizes (``{"train": n, "val": n, "test": n}``), to tell a real gap in accuracy
    from the noise of a small validation or test split; with fewer than ``MIN_ROWS`` validation rows
    the findings judged from scores (over- and underfitting, the learning rate too low, classes) give
    way to one ``too_little_data`` finding that names them. ``model_type``: the model family, whose
    config keys the remedies name.
    """
    rows = rows or {}
    grads = gradients or {"layers": [], "activations": [], "epochs": []}
    findings = divergence(history, grads, diverged)
    # A loop that did not record a quantity (a GAN has no validation loss) skips the rules that read it.
    if (not findings or findings[0]["kind"] != "lr_too_high") and recorded(history, "train_loss", "lr"):
        findings = lr_too_high(history, no_skill_loss) + findings
    dead = dead_units(grads)
    # Dead units stop the gradient too: all-zero norms are their symptom, not a separate problem.
    findings += dead + vanishing(grads, near_zero=not dead)
    if recorded(history, "val_loss", "lr"):
        findings += lr_too_low(history, no_skill_loss)
    if metrics is not None:
        # Underfitting, and classes never predicted, are symptoms; a cause found above already explains them.
        cause = bool(findings)
        if not cause:
            findings += underfitting(metrics, task, majority_share, rows)
        if recorded(history, "train_loss", "val_loss"):
            findings += overfitting(history, metrics, task, restored_best, rows)
        classes = [] if cause else class_findings(metrics, task, majority_share)
        if classes and classes[0]["kind"] == "majority_only":  # the underfitting it implies says less
            findings = [f for f in findings if f["kind"] != "underfitting"]
        findings += classes
    findings = too_little_data(findings, rows)
    for f in findings:
        f["remedies"] = remedies(f["kind"], model_type)
    return findings


def too_little_data(findings: list[dict], rows: dict) -> list[dict]:
    """On fewer than ``MIN_ROWS`` validation rows, the findings judged from scores are noise: one finding says so instead."""
    val = rows.get("val") if rows.get("held_out", True) else rows.get("train")
    judged = [f for f in findings if f["kind"] in STATISTICAL]
    if val is None or val >= MIN_ROWS or not judged:
        return findings
    named = ", ".join(dict.fromkeys(f["kind"].replace("_", " ") for f in judged))
    where = f"{val} validation rows" if rows.get("held_out", True) else f"{val} rows, all of them training rows"
    evidence = (f"with {where} ({rows.get('train', '?')} training), the scores move by chance more than these rules can tell "
                f"apart, so what they would have said ({named}) is left out")
    kept = [f for f in findings if f not in judged]
    return [*kept, finding("too_little_data", None, evidence)]


def class_findings(metrics: dict, task: str, majority_share: float | None) -> list[dict]:
    """A classifier that predicts one class for (nearly) every test row, or never predicts a real class."""
    matrix = (metrics.get("confusion_matrix") or {}).get("matrix")
    labels = (metrics.get("confusion_matrix") or {}).get("labels") or []
    if task == "regression" or not matrix:
        return []
    support = [sum(row) for row in matrix]  # true rows per class
    predicted = [sum(column) for column in zip(*matrix)]
    total = sum(support)
    if not total:
        return []
    epoch = metrics.get("best_epoch")
    top = max(range(len(predicted)), key=predicted.__getitem__)
    test = metrics.get("test") or {}
    scores = f"accuracy {test.get('accuracy', math.nan):.3f}, balanced accuracy {test.get('balanced_accuracy', math.nan):.3f}"
    label, count = labels[top], predicted[top]
    if count >= ONE_CLASS_SHARE * total and support[top] < total and (majority_share or 0) >= IMBALANCED:
        evidence = (f"on the {total} test rows the network predicted {label!r} {count} times ({count / total:.0%}); "
                    f"{majority_share:.0%} of the training rows are {label!r}: it learned to guess the majority class ({scores})")
        return [finding("majority_only", epoch, evidence)]
    never = [i for i in range(len(labels)) if predicted[i] == 0 and support[i] >= NEVER_PREDICTED_ROWS]
    if not never:
        return []
    shown = ", ".join(f"{labels[i]!r} ({support[i]} test rows)" for i in never)
    return [finding("class_never_predicted", epoch, f"the network never predicts {shown}: its recall there is 0 ({scores})")]


def recorded(history: list[dict], *keys: str) -> bool:
    """Every epoch of ``history`` has each of ``keys`` (an empty history has nothing to judge)."""
    return bool(history) and all(key in row for row in history for key in keys)


# ── learning rate and divergence ───────────────────────────────────────────────────────
def divergence(history: list[dict], grads: dict, diverged: dict | None) -> list[dict]:
    """A NaN loss (lr_too_high), and gradients that became non-finite or spiked (exploding)."""
    out = []
    if diverged is not None:
        lr = diverged.get("lr") or _lr_of(history, diverged["epoch"])
        lr_text = f" at learning rate {lr:g}" if lr is not None else ""
        out.append(
            finding(
                "lr_too_high",
                diverged["epoch"],
                f"the training loss became {diverged['loss']} in epoch {diverged['epoch']}{lr_text}; training stopped",
            )
        )
    exploding = exploding_gradients(grads)
    if exploding:
        out.append(exploding)
    return out


def exploding_gradients(grads: dict) -> dict | None:
    """A gradient norm that became inf/NaN, spiked far above the norms just before, or grew by
    orders of magnitude. Spikes and growth are judged on the largest layer's norm, the scale of
    the whole update: a vanishing early layer recovering from 1e-13 to 1e-10 is not an explosion."""
    layers = [layer["name"] for layer in grads.get("layers", [])]
    epochs = [e for e in grads.get("epochs", []) if e.get("norm_max")]
    for e in epochs:
        for i, value in enumerate(e["norm_max"]):
            if value is None:
                return finding(
                    "exploding_gradients",
                    e["epoch"],
                    f"the gradient norm of layer {layers[i]} became infinite or NaN in epoch {e['epoch']}",
                    layer=layers[i],
                )
    scale = [max(e["norm_mean"]) for e in epochs]  # per epoch: the largest layer's mean norm
    for j, e in enumerate(epochs):
        high = max(e["norm_max"])
        layer = layers[e["norm_max"].index(high)]
        # Compare with the epochs just before: gradients shrink a lot as a run converges, so a
        # run-wide median would make the first epochs of every healthy run look like spikes.
        recent = scale[max(0, j - 5) : j]
        reference = statistics.median(recent) if recent else 0.0
        if reference > 0 and high > SPIKE_RATIO * reference:
            return finding(
                "exploding_gradients",
                e["epoch"],
                (f"the gradient norm of layer {layer} spiked to {high:.3g} in epoch {e['epoch']}, {high / reference:.0f}x the "
                 f"typical norm of the epochs before ({reference:.3g})"),
                layer=layer,
            )
        if scale[0] > 0 and scale[j] > GROWTH_RATIO * scale[0]:
            return finding(
                "exploding_gradients",
                e["epoch"],
                (f"the mean gradient norm grew from {scale[0]:.3g} in epoch {epochs[0]['epoch']} to {scale[j]:.3g} in epoch "
                 f"{e['epoch']} (layer {layer})"),
                layer=layer,
            )
    return None


def lr_too_high(history: list[dict], no_skill: float | None) -> list[dict]:
    """Without a NaN: the loss blew up far past an untrained model's, climbed back up after its
    minimum, or swung up and down in big jumps."""
    losses = [row["train_loss"] for row in history]
    if not losses:
        return []
    scale = no_skill or losses[0]  # the loss level of a model that learned nothing
    peak_index = max(range(len(losses)), key=losses.__getitem__)
    peak, after = losses[peak_index], min(losses[peak_index:])
    if no_skill and peak > BLOWUP * no_skill and after > 0.5 * no_skill:
        epoch = history[peak_index]["epoch"]
        return [
            finding(
                "lr_too_high",
                epoch,
                (f"the training loss reached {peak:.4g} in epoch {epoch}, {peak / no_skill:.0f}x the {no_skill:.3g} of a "
                 f"model that learned nothing, and never got below {after:.4g} afterwards (learning rate "
                 f"{history[peak_index]['lr']:g}): the steps overshoot"),
            )
        ]
    if len(losses) < 3:
        return []
    jumps = [
        i
        for i in range(1, len(losses))
        if losses[i] > (1 + JUMP) * losses[i - 1] and losses[i] - losses[i - 1] > RISE_MIN_ABS * scale
    ]
    if len(jumps) >= OSCILLATIONS:
        epoch = history[jumps[0]]["epoch"]
        return [
            finding(
                "lr_too_high",
                epoch,
                (f"the training loss oscillates: it jumped up by more than {JUMP:.0%} in {len(jumps)} epochs (first in epoch "
                 f"{epoch}) at learning rate {history[jumps[0]]['lr']:g}"),
            )
        ]
    low = min(losses)
    at_low = losses.index(low)
    for i in range(at_low + 1, len(losses)):
        if losses[i] > RISE_RATIO * low and losses[i] - low > RISE_MIN_ABS * scale:
            epoch = history[i]["epoch"]
            return [
                finding(
                    "lr_too_high",
                    epoch,
                    (f"the training loss rose from its minimum {low:.4g} (epoch {history[at_low]['epoch']}) to {losses[i]:.4g} "
                     f"in epoch {epoch} at learning rate {history[i]['lr']:g}: it diverges"),
                )
            ]
    return []


def lr_too_low(history: list[dict], no_skill: float | None) -> list[dict]:
    """The loss creeps down epoch after epoch and is still far from good: the steps are too small.

    Judged on the validation loss, which is measured without dropout on fixed rows, so it is
    free of the epoch-to-epoch noise of the training loss. A loss that has flattened out is not
    this (more steps would not help); neither is one that fell fast but ran out of epochs."""
    losses = [row["val_loss"] for row in history]
    if len(losses) < LOW_LR_MIN_EPOCHS or not losses[0] > 0:
        return []
    first, last = losses[0], losses[-1]
    rate = (first - last) / first / (len(losses) - 1)  # share of the first loss shed per epoch
    tail = losses[-max(LOW_LR_MIN_EPOCHS, len(losses) // 4) :]
    falling = sum(b < a for a, b in itertools.pairwise(tail)) / (len(tail) - 1)
    far = last > LOW_LR_FAR * no_skill if no_skill else (first - last) / first < LOW_LR_FAR
    if 0 <= rate < LOW_LR_RATE and falling >= LOW_LR_STILL_FALLING and far:
        reference = f", still {last / no_skill:.0%} of the {no_skill:.3g} of a model that learned nothing" if no_skill else ""
        return [
            finding(
                "lr_too_low",
                history[-1]["epoch"],
                (f"the validation loss crept from {first:.4g} to {last:.4g} in {len(losses)} epochs ({rate:.2%} of its first "
                 f"value per epoch){reference}, and it was still falling in {falling:.0%} of the last {len(tail) - 1} epochs "
                 f"at learning rate {history[-1]['lr']:g}: the steps are too small"),
            )
        ]
    return []


# ── gradient health ────────────────────────────────────────────────────────────────────
def vanishing(grads: dict, near_zero: bool = True) -> list[dict]:
    """Early layers' gradients orders of magnitude below the later ones', or (``near_zero``) all near zero."""
    layers = [layer["name"] for layer in grads.get("layers", [])]
    for index, e in enumerate(grads.get("epochs", [])):
        norms = e.get("norm_mean") or []
        if not norms or any(v is None for v in norms):
            continue
        top = max(norms)
        # Only at the start: a run that has converged has tiny gradients too, and rightly so.
        if near_zero and index == 0 and top < NEAR_ZERO_NORM:
            return [
                finding(
                    "vanishing_gradients",
                    e["epoch"],
                    (f"every layer's gradient norm is below {NEAR_ZERO_NORM:g} in epoch {e['epoch']} (largest {top:.2g}): "
                     "nothing learns"),
                    layer=layers[0],
                )
            ]
        if len(norms) >= 2 and norms[0] < VANISHING_RATIO * top:
            return [
                finding(
                    "vanishing_gradients",
                    e["epoch"],
                    (f"in epoch {e['epoch']} the gradient norm of the first layer ({layers[0]}: {norms[0]:.2g}) is "
                     f"{norms[0] / top:.1g} of the largest ({layers[norms.index(top)]}: {top:.2g}): early layers barely learn"),
                    layer=layers[0],
                )
            ]
    return []


def dead_units(grads: dict) -> list[dict]:
    """ReLU layers where most units output 0 for every validation row, judged at the last epoch."""
    epochs = [e for e in grads.get("epochs", []) if e.get("dead_share")]
    if not epochs:
        return []
    last = epochs[-1]
    names = [a["name"] for a in grads.get("activations", [])]
    worst = max(range(len(last["dead_share"])), key=lambda i: last["dead_share"][i])
    share = last["dead_share"][worst]
    if share < DEAD_SHARE:
        return []
    became = next(e["epoch"] for e in epochs if e["dead_share"][worst] >= DEAD_SHARE)
    return [
        finding(
            "dead_units",
            became,
            (f"{share:.0%} of the units of ReLU layer {names[worst]} output 0 for every validation row at epoch "
             f"{last['epoch']} (from epoch {became}): they no longer learn"),
            layer=names[worst],
        )
    ]


# ── fit ────────────────────────────────────────────────────────────────────────────────
def underfitting(metrics: dict, task: str, majority_share: float | None, rows: dict) -> list[dict]:
    """The training score falls short of what a classical baseline reaches on unseen rows, or of chance.

    Classifiers are compared on balanced accuracy where it was measured: with a rare class, accuracy
    rewards a baseline that never predicts it over a network that weighs the classes."""
    key = "r2" if task == "regression" else "accuracy"
    if task != "regression" and "balanced_accuracy" in (metrics.get("train") or {}):
        key = "balanced_accuracy"
        majority_share = 1 / len(metrics["confusion_matrix"]["labels"]) if metrics.get("confusion_matrix") else None
    train = (metrics.get("train") or {}).get(key)
    if train is None:
        return []
    epoch = metrics.get("best_epoch")
    baselines = {name: scores[key] for name, scores in (metrics.get("baselines") or {}).items() if scores.get(key) is not None}
    if baselines:
        name, best = max(baselines.items(), key=lambda item: item[1])
        # The baseline's test accuracy is itself an estimate from a few rows: allow for its noise.
        margin = UNDERFIT_R2 if task == "regression" else max(UNDERFIT_ACCURACY, 2 * _standard_error(best, rows.get("test")))
        if train < best - margin:
            return [
                finding(
                    "underfitting",
                    epoch,
                    (f"the network's training {key.replace('_', ' ')} is {train:.3f}, below the {best:.3f} that {name} reaches "
                     "on the test rows: "
                     "it does not even fit the training rows as well as a classical model predicts unseen ones"),
                )
            ]
    chance = 0.0 if task == "regression" else majority_share
    if chance is not None and train < chance + CHANCE_MARGIN:
        what = ("predicting the mean" if task == "regression" else f"always guessing the most frequent class ({chance:.3f})"
                if key == "accuracy" else f"guessing one class for every row ({chance:.3f})")
        evidence = f"the network's training {key.replace('_', ' ')} is {train:.3f}, no better than {what}"
        return [finding("underfitting", epoch, evidence)]
    return []


def overfitting(history: list[dict], metrics: dict, task: str, restored_best: bool, rows: dict) -> list[dict]:
    """Validation loss rising while training loss falls, at the kept weights; or a wide train/validation gap."""
    if not metrics.get("held_out", True) or len(history) < 2:
        return []
    val = [row["val_loss"] for row in history]
    train = [row["train_loss"] for row in history]
    best_index = min(range(len(val)), key=val.__getitem__)
    kept_index = best_index if restored_best else len(history) - 1
    if not restored_best:
        best, kept = val[best_index], val[kept_index]
        if kept > best * (1 + OVERFIT_VAL_RISE) and kept - best > OVERFIT_VAL_RISE_ABS and train[kept_index] < train[best_index]:
            a, b = history[best_index]["epoch"], history[kept_index]["epoch"]
            return [
                finding(
                    "overfitting",
                    a,
                    (f"validation loss rose from {best:.4g} at epoch {a} to {kept:.4g} at epoch {b} while training loss fell "
                     f"from {train[best_index]:.4g} to {train[kept_index]:.4g}; the gap (validation - training loss) grew "
                     f"from {best - train[best_index]:.4g} to {kept - train[kept_index]:.4g}, and the final weights are the "
                     "overfit ones"),
                )
            ]
    key = "r2" if task == "regression" else "accuracy"
    fit_score, held = (metrics.get("train") or {}).get(key), (metrics.get("val") or {}).get(key)
    if fit_score is None or held is None:
        return []
    # A few validation rows make a noisy accuracy: the gap must also exceed 3 standard errors.
    limit = OVERFIT_R2_GAP if task == "regression" else max(OVERFIT_ACCURACY_GAP, 3 * _standard_error(held, rows.get("val")))
    if fit_score - held > limit:
        epoch = history[kept_index]["epoch"]
        return [
            finding(
                "overfitting",
                epoch,
                (f"the kept weights (epoch {epoch}) score {key} {fit_score:.3f} on the training rows but {held:.3f} on the "
                 f"validation rows, a gap of {fit_score - held:.3f}; validation loss {val[kept_index]:.4g} against training "
                 f"loss {train[kept_index]:.4g}"),
            )
        ]
    return []


def _standard_error(accuracy: float, n: int | None) -> float:
    """Of an accuracy measured on ``n`` rows (binomial); a perfect score counts as one error in 2n."""
    if not n:
        return 0.0
    p = min(max(accuracy, 0.5 / n), 1 - 0.5 / n)
    return math.sqrt(p * (1 - p) / n)


def _lr_of(history: list[dict], epoch: int) -> float | None:
    rows = [row for row in history if row["epoch"] < epoch]
    return rows[-1]["lr"] if rows else None


def no_skill_loss(task: str, loss: str, class_shares: list[float], scaled_target: bool) -> float | None:
    """The loss of a model that learned nothing: cross-entropy of predicting the training class
    frequencies (their entropy), or the MSE of predicting the mean of a standardized target (1).
    ``None`` where there is no such simple number (MAE, Huber, an unscaled target)."""
    if task != "regression":
        return -sum(p * math.log(p) for p in class_shares) if class_shares else None
    return 1.0 if loss == "mse" and scaled_target else None


def read_history(path: Path) -> list[dict]:
    """``history.csv`` as a list of dicts of numbers (empty when no epoch finished). A file cut short
    (a copy that stopped half-way) gives its whole rows before the cut: a last line without its
    newline, or a row with a missing or unreadable value, ends it."""
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines.pop()  # cut mid-row: "0.1234" might read as "0.12"
    rows = []
    for row in csv.DictReader(lines):
        if None in row:  # more cells than the header has
            break
        try:
            rows.append({k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()})
        except (TypeError, ValueError):  # None (fewer cells than the header) or text that is not a number
            break
    return rows


def print_findings(console: Console, findings: list[dict]) -> None:
    """The diagnosis at the end of ``train``: one paragraph per finding, or one healthy line."""
    if not findings:
        console.print("diagnosis: no training problems found", highlight=False)
        return
    console.print(f"diagnosis: {len(findings)} finding{'s' if len(findings) > 1 else ''}", highlight=False)
    for f in findings:
        where = (
            f" (epoch {f['epoch']}" + (f", layer {f['layer']}" if "layer" in f else "") + ")" if f["epoch"] is not None else ""
        )
        console.print(f"- {f['kind'].replace('_', ' ')}{where}: {f['evidence']}", highlight=False, soft_wrap=True, markup=False)
        console.print("  try: " + "; ".join(f["remedies"]), highlight=False, soft_wrap=True, markup=False)
