"""The report's figures: matplotlib (Agg, no pyplot, so no global backend state) -> PNG data URIs.

Each function takes plain data read from the run directory and returns a ``data:image/png;base64``
URI, so the report is one self-contained file that opens offline.

Example:
    >>> uri = loss_curves(history, best_epoch=12, stopped_epoch=32)
    >>> uri[:22]
    'data:image/png;base64,'
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from trainwright.evaluate.figures import new_figure, plain, png_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure  # matplotlib itself loads with the first figure (evaluate/figures.py)

TRAIN, VAL, MARK = "#1f77b4", "#ff7f0e", "#6c757d"


def _figure(width: float = 6.4, height: float = 3.4, fit_labels: bool = False) -> tuple[Figure, object]:
    """A figure with one axes. Fixed margins draw twice as fast as a layout engine; figures with
    the user's labels on an axis (of any length) use constrained layout so nothing is cut off."""
    fig = new_figure(width, height, layout="constrained" if fit_labels else None)
    if not fit_labels:
        # Margins in inches (ticks and axis labels), whatever the figure's size.
        fig.subplots_adjust(left=1.0 / width, right=1 - 0.15 / width, bottom=0.55 / height, top=1 - 0.35 / height)
    return fig, fig.add_subplot()


def _uri(fig: Figure) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(fig)).decode("ascii")


def _log_y(ax, values: Sequence[float]) -> None:
    """A log y axis with plain tick labels; over less than two decades, 2x and 5x ticks are labelled too."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    label = FuncFormatter(lambda v, _: f"{v:.3g}")
    ax.yaxis.set_major_formatter(label)
    positive = [v for v in values if v is not None and v > 0 and np.isfinite(v)]
    if positive and max(positive) / min(positive) < 100:
        ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        ax.yaxis.set_minor_formatter(label)
    else:
        ax.yaxis.set_minor_formatter(NullFormatter())


def _long_labels(labels: Sequence[str]) -> bool:
    """Whether class labels need a layout engine to fit (rotated, or wider than the fixed margins' 1 inch):
    labels of up to 3 characters (digits, codes) fit the fixed margins, which draw in half the time."""
    return max((len(plain(label)) for label in labels), default=0) > 3


def _category_ticks(ax, axis: str, labels: Sequence[str]) -> None:
    """Tick labels for classes: rotated when there are many or they are long."""
    shown = [plain(label) for label in labels]
    longest = max((len(label) for label in shown), default=0)
    turn = longest > 8 or (len(labels) > 6 and longest > 3)
    if axis == "x":
        ax.set_xticks(range(len(shown)), shown, rotation=40 if turn else 0, ha="right" if turn else "center")
    else:
        ax.set_yticks(range(len(shown)), shown)


def _epoch_marks(ax, best_epoch: int | None, stopped_epoch: int | None) -> None:
    if best_epoch:
        ax.axvline(best_epoch, color="#2ca02c", linestyle="--", linewidth=1, label=f"best epoch {best_epoch}")
    if stopped_epoch:
        ax.axvline(stopped_epoch, color=MARK, linestyle=":", linewidth=1, label=f"stopped at {stopped_epoch}")


def loss_curves(history: list[dict], best_epoch: int | None = None, stopped_epoch: int | None = None) -> str:
    """The training and validation losses per epoch, whichever of the two the run recorded."""
    fig, ax = _figure()
    epochs = [row["epoch"] for row in history]
    keys = [
        (key, color, label)
        for key, color, label in (("train_loss", TRAIN, "train"), ("val_loss", VAL, "validation"))
        if key in history[0]
    ]
    for key, color, label in keys:
        ax.plot(epochs, [row[key] for row in history], color=color, label=label)
    losses = [row[key] for row in history for key, _, _ in keys if np.isfinite(row[key])]
    if losses and min(losses) > 0 and max(losses) / min(losses) > 50:
        _log_y(ax, losses)
    _epoch_marks(ax, best_epoch, stopped_epoch)
    ax.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax.legend()
    return _uri(fig)


def metric_curve(history: list[dict], key: str, best_epoch: int | None = None, stopped_epoch: int | None = None) -> str:
    fig, ax = _figure()
    ax.plot(
        [row["epoch"] for row in history],
        [row[key] for row in history],
        color=VAL,
        label=f"validation {key.removeprefix('val_')}",
    )
    _epoch_marks(ax, best_epoch, stopped_epoch)
    ax.set(xlabel="epoch", ylabel=key.removeprefix("val_"), title=f"Validation {key.removeprefix('val_')}")
    ax.legend()
    return _uri(fig)


def learning_rate(history: list[dict]) -> str:
    fig, ax = _figure(6.4, 2.6)
    rates = [row["lr"] for row in history]
    ax.plot([row["epoch"] for row in history], rates, color=TRAIN)
    if rates and min(rates) > 0 and max(rates) / min(rates) > 20:
        _log_y(ax, rates)
    else:
        ax.ticklabel_format(axis="y", useOffset=False)  # a constant 0.001 reads as 0.001, not 1e-3 + 0
    ax.set(xlabel="epoch", ylabel="learning rate", title="Learning-rate schedule (at the end of each epoch)")
    return _uri(fig)


def epoch_seconds(history: list[dict]) -> str:
    fig, ax = _figure(6.4, 2.6)
    ax.bar([row["epoch"] for row in history], [row["seconds"] for row in history], color=TRAIN, width=1.0)
    ax.set(xlabel="epoch", ylabel="seconds", title="Time per epoch (training and validation)")
    return _uri(fig)


def gradient_norms(
    epochs: list[int], names: Sequence[str], means: list[list[float | None]], highs: list[list[float | None]]
) -> str:
    """``means``/``highs``: per epoch, one value per layer (None where a norm was inf or NaN)."""
    fig, ax = _figure(6.4, 3.6)
    colors = [f"C{i % 10}" for i in range(len(names))]
    for i, name in enumerate(names):
        mean = np.array([np.nan if row[i] is None else row[i] for row in means], dtype=float)
        high = np.array([np.nan if row[i] is None else row[i] for row in highs], dtype=float)
        ax.plot(epochs, mean, color=colors[i], label=plain(name))
        ax.fill_between(epochs, mean, high, color=colors[i], alpha=0.15, linewidth=0)
    values = [v for rows in (means, highs) for row in rows for v in row]
    if any(v is not None and v > 0 for v in values):
        _log_y(ax, values)
    ax.set(xlabel="epoch", ylabel="gradient L2 norm", title="Gradient norm per layer")
    ax.legend(fontsize="small", ncol=2 if len(names) > 4 else 1)
    return _uri(fig)


def dead_units(epochs: list[int], names: Sequence[str], shares: list[list[float]]) -> str:
    fig, ax = _figure(6.4, 2.8)
    for i, name in enumerate(names):
        ax.plot(epochs, [100 * row[i] for row in shares], label=plain(name))
    ax.set_ylim(0, 100)
    ax.set(xlabel="epoch", ylabel="% of units", title="Dead ReLU units (0 for every validation row)")
    ax.legend(fontsize="small")
    return _uri(fig)


def class_balance(labels: Sequence[str], parts: dict[str, Sequence[int]]) -> str:
    fig, ax = _figure(6.4, 2.8 + 0.05 * len(labels), fit_labels=_long_labels(labels))
    x = np.arange(len(labels))
    width = 0.8 / max(len(parts), 1)
    for i, (part, counts) in enumerate(parts.items()):
        ax.bar(x + i * width - 0.4 + width / 2, counts, width, label=part)
    _category_ticks(ax, "x", labels)
    ax.set(ylabel="rows", title="Class balance per split")
    ax.legend()
    return _uri(fig)


def confusion(labels: Sequence[str], matrix: list[list[int]]) -> str:
    n = len(labels)
    fig, ax = _figure(6.4, 5.4, fit_labels=_long_labels(labels))
    m = np.asarray(matrix)
    image = ax.imshow(m, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    _category_ticks(ax, "x", labels)
    _category_ticks(ax, "y", labels)
    if n <= 20:
        threshold = m.max() / 2 if m.size else 0
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    str(m[i, j]),
                    ha="center",
                    va="center",
                    fontsize=10 if n <= 10 else 7,
                    color="white" if m[i, j] > threshold else "black",
                )
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix (test)")
    return _uri(fig)


def roc_curves(labels: Sequence[str], y_true: np.ndarray, probs: np.ndarray) -> str:
    """``y_true`` (N,) class indices; ``probs`` (N, C). Binary: one curve; else one-vs-rest per class."""
    from sklearn.metrics import auc, roc_curve

    fig, ax = _figure(5.6, 4.4)
    classes = [1] if probs.shape[1] == 2 else range(probs.shape[1])
    for c in classes:
        positives = y_true == c
        if positives.all() or not positives.any():
            continue  # a curve needs both classes among the test rows
        fpr, tpr, _ = roc_curve(positives, probs[:, c])
        name = plain(labels[c]) if probs.shape[1] > 2 else f"{plain(labels[1])} vs {plain(labels[0])}"
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], color=MARK, linestyle=":", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curves (test)", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(fontsize="small", loc="lower right", ncol=2 if len(classes) > 6 else 1)
    return _uri(fig)


def reliability(confidence: np.ndarray, correct: np.ndarray, ece: float, bins: int) -> str:
    """Reliability diagram of the top-class confidence in ``bins`` equal-width bins, titled with the
    expected calibration error ``ece`` (computed by ``evaluate.calibration``, as ``calibrate`` does)."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    accuracy = np.bincount(which, weights=correct, minlength=bins) / np.maximum(counts, 1)
    fig, ax = _figure(5.6, 4.4)
    filled = counts > 0
    centers = (edges[:-1] + edges[1:]) / 2
    ax.bar(centers[filled], accuracy[filled], width=1 / bins, edgecolor="white", color=TRAIN, label="accuracy in bin")
    ax.plot([0, 1], [0, 1], color=MARK, linestyle=":", linewidth=1, label="perfect calibration")
    ax.set(
        xlabel="confidence (top-class probability)",
        ylabel="accuracy",
        title=f"Reliability diagram (test), ECE {ece:.3f}",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    ax.legend(loc="upper left")
    return _uri(fig)


def predicted_vs_actual(actual: np.ndarray, predicted: np.ndarray, target: str) -> str:
    fig, ax = _figure(5.6, 4.4)
    ax.scatter(actual, predicted, s=12, alpha=0.7, color=TRAIN)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    ax.plot([low, high], [low, high], color=MARK, linestyle=":", linewidth=1)
    ax.set(xlabel=f"actual {plain(target)}", ylabel=f"predicted {plain(target)}", title="Predicted vs actual (test)")
    return _uri(fig)


def residuals(actual: np.ndarray, predicted: np.ndarray, target: str) -> str:
    fig, ax = _figure(5.6, 4.4)
    ax.scatter(predicted, actual - predicted, s=12, alpha=0.7, color=TRAIN)
    ax.axhline(0, color=MARK, linestyle=":", linewidth=1)
    ax.set(xlabel=f"predicted {plain(target)}", ylabel="actual - predicted", title="Residuals (test)")
    return _uri(fig)


def accuracy_matrix(matrix: list[list[float | None]], rows: Sequence[str], columns: Sequence[str],
                    joint: list[float] | None = None) -> str:
    """Continual learning's accuracy matrix R[i][j] (accuracy on task j after training on task i) as a heat
    map, with the joint upper bound's row below a line when the run trained it; a cell not measured is blank."""
    m = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)  # (T_rows, T)
    labels = list(rows)
    if joint is not None:
        m = np.vstack([m, np.array([np.nan if v is None else v for v in joint], dtype=float)])
        labels.append("joint (all at once)")
    fig, ax = _figure(1.6 + 1.1 * m.shape[1], 1.4 + 0.55 * m.shape[0], fit_labels=True)
    image = ax.imshow(np.ma.masked_invalid(m), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    fig.colorbar(image, ax=ax, shrink=0.8, label="accuracy")
    _category_ticks(ax, "x", columns)
    _category_ticks(ax, "y", labels)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if np.isfinite(m[i, j]):
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=9, color="black" if m[i, j] > 0.6 else "white")
    if joint is not None:
        ax.axhline(m.shape[0] - 1.5, color="white", linewidth=3)
    ax.set(xlabel="accuracy on", title="Accuracy matrix (test)")
    return _uri(fig)


def task_curves(matrix: list[list[float | None]], columns: Sequence[str], average: Sequence[float] | None = None,
                joint_average: float | None = None, stages: Sequence[str] | None = None) -> str:
    """Each task's test accuracy after every training stage from its own on (one line per task), the
    average over the tasks seen so far, and the joint upper bound's final average as a dashed line."""
    m = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    fig, ax = _figure(8.0, 3.6, fit_labels=True)
    x = np.arange(len(m))
    for j, name in enumerate(columns):
        ax.plot(x, m[:, j], marker="o", linewidth=1.2, label=plain(name))
    if average is not None:
        ax.plot(x, average, color="black", linewidth=2.5, label="average over tasks seen")
    if joint_average is not None:
        ax.axhline(joint_average, color=MARK, linestyle="--", linewidth=1.2, label=f"joint upper bound {joint_average:.2f}")
    ax.set_xticks(x, [plain(s) for s in (stages or [f"after {i + 1}" for i in x])])
    ax.set(ylim=(-0.03, 1.03), ylabel="test accuracy", title="Accuracy per task as training goes on")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))  # beside: the lines fill the axes
    return _uri(fig)


def gan_curves(history: list[dict], series: Sequence[tuple[str, str]], title: str, ylabel: str,
               best_step: int | None = None, log: bool = False) -> str:
    """A GAN run's recorded values per evaluation, against generator steps: ``series`` is ``[(key, label), ...]``,
    each drawn where the history has it; ``best_step`` marks the kept generator."""
    fig, ax = _figure()
    steps = [row.get("step", row["epoch"]) for row in history]
    values = []
    for (key, label), color in zip(series, (TRAIN, VAL, "#2ca02c", "#d62728", "#9467bd")):
        if key in history[0]:
            column = [row[key] for row in history]
            ax.plot(steps, column, color=color, label=label, marker="." if len(steps) < 30 else None)
            values += [v for v in column if v is not None and np.isfinite(v)]
    if log and values and min(values) > 0:
        _log_y(ax, values)
    if best_step:
        ax.axvline(best_step, color=MARK, linestyle="--", linewidth=1, label=f"kept: step {best_step:,}")
    ax.set(xlabel="generator step", ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return _uri(fig)
