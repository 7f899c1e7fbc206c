"""Probability calibration, fitted on the validation split and judged on the test split.

A network trained to low loss is often over-confident: its 0.99s are right far less than 99% of
the time. Three remedies, each fitted on held-out validation logits (never the test split):

- ``temperature`` (Guo et al. 2017, "On Calibration of Modern Neural Networks"): divide the
  logits by one learned T > 0. The argmax, and so the accuracy, cannot change.
- ``vector``: a learned scale and bias per class on the logits (may change some argmaxes).
- ``isotonic``: a monotone map per class (one-vs-rest) from probability to frequency, then the
  rows renormalized (scikit-learn's IsotonicRegression; stored as its breakpoints, no pickle).

Example:
    >>> calibrator = fit_calibrator(val_logits, val_y, "multiclass", "temperature")
    >>> probs = calibrator.probabilities(test_logits)

Fitting a finished run's calibration (rebuilding its split, writing calibration.json) is the
``calibrate`` recipe's (``recipes/calibrate.py``); loading it back is ``predict.py``'s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
from torch.nn import functional as F

from trainwright.errors import TrainwrightError
from trainwright.evaluate.figures import new_figure, png_bytes
from trainwright.training.losses import probabilities

Method = Literal["temperature", "vector", "isotonic"]
N_BINS = 15


@dataclass
class Calibrator:
    """A fitted calibration map from raw model outputs to class probabilities (N, C)."""

    method: Method
    task: str
    temperature: float | None = None
    scale: list[float] | None = None  # vector scaling, one per logit
    bias: list[float] | None = None
    isotonic: list[dict] | None = None  # per class: {"x": breakpoints, "y": values}

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        outputs = outputs.float()
        if self.method == "temperature":
            return probabilities(outputs / self.temperature, self.task)
        if self.method == "vector":
            return probabilities(outputs * torch.tensor(self.scale) + torch.tensor(self.bias), self.task)
        raw = probabilities(outputs, self.task).numpy()
        if self.task == "binary":  # one map on p(positive); the negative class is its complement
            p = np.interp(raw[:, 1], self.isotonic[0]["x"], self.isotonic[0]["y"])
            return torch.from_numpy(np.stack([1 - p, p], axis=1)).float()
        mapped = np.stack([np.interp(raw[:, c], part["x"], part["y"]) for c, part in enumerate(self.isotonic)], axis=1)
        mapped = np.clip(mapped, 1e-6, None)  # a row all mapped to 0 would not renormalize
        return torch.from_numpy(mapped / mapped.sum(axis=1, keepdims=True)).float()

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict) -> Calibrator:
        return cls(**{k: data.get(k) for k in ("method", "task", "temperature", "scale", "bias", "isotonic")})


def fit_calibrator(outputs: torch.Tensor, y: torch.Tensor, task: str, method: Method) -> Calibrator:
    """Fit ``method`` on validation outputs (N, C) or (N, 1) for binary, and labels (N,)."""
    if task == "regression":
        raise TrainwrightError("calibration applies to classifiers; this run does regression")
    if len(torch.unique(y)) < 2:
        raise TrainwrightError(
            "the validation split holds a single class; calibration needs several (use a larger data.split.val)"
        )
    outputs = outputs.float().detach()
    if method == "isotonic":
        return Calibrator("isotonic", task, isotonic=_fit_isotonic(probabilities(outputs, task), y, task))
    width = outputs.shape[1]
    if method == "temperature":
        log_t = torch.zeros(1, requires_grad=True)  # T = exp(log_t) stays positive
        params, transform = [log_t], lambda z: z / log_t.exp()
    else:
        scale, bias = torch.ones(width, requires_grad=True), torch.zeros(width, requires_grad=True)
        params, transform = [scale, bias], lambda z: z * scale + bias
    optimizer = torch.optim.LBFGS(params, lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = _nll(transform(outputs), y, task)
        loss.backward()
        return loss

    optimizer.step(closure)
    if method == "temperature":
        return Calibrator("temperature", task, temperature=float(log_t.detach().exp()))
    return Calibrator("vector", task, scale=scale.detach().tolist(), bias=bias.detach().tolist())


def _nll(logits: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    if task == "binary":
        return F.binary_cross_entropy_with_logits(logits.squeeze(1), y.float())
    return F.cross_entropy(logits, y)


def _fit_isotonic(probs: torch.Tensor, y: torch.Tensor, task: str) -> list[dict]:
    from sklearn.isotonic import IsotonicRegression  # scikit-learn's isotonic module: loaded only for this method

    columns = [1] if task == "binary" else range(probs.shape[1])
    parts = []
    for c in columns:
        fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
            probs[:, c].numpy(), (y == c).numpy().astype(float)
        )
        parts.append({"x": fitted.X_thresholds_.tolist(), "y": fitted.y_thresholds_.tolist()})
    return parts


def expected_calibration_error(probs: torch.Tensor, y: torch.Tensor) -> float:
    """ECE: over 15 equal-width bins of the top-class probability, the row-weighted mean gap between
    confidence and accuracy. The one definition: the report and ``calibrate`` both use it.

    Example:
        >>> expected_calibration_error(torch.tensor([[0.9, 0.1], [0.4, 0.6]]), torch.tensor([0, 0]))
        0.35
    """
    from torchmetrics.functional.classification import multiclass_calibration_error  # heavy: see calibration_metrics

    return float(multiclass_calibration_error(probs, y, probs.shape[1], n_bins=N_BINS, norm="l1"))


def calibration_metrics(probs: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """ECE and MCE (15 equal-width confidence bins, confidence = top probability), NLL, Brier, accuracy."""
    # torchmetrics loads every metric it has (and matplotlib) on import: loaded when a run is calibrated.
    from torchmetrics.functional.classification import multiclass_calibration_error

    n_classes = probs.shape[1]
    onehot = F.one_hot(y, n_classes).float()
    return {
        "ece": expected_calibration_error(probs, y),
        "mce": float(multiclass_calibration_error(probs, y, n_classes, n_bins=N_BINS, norm="max")),
        "nll": float(F.nll_loss(probs.clamp_min(1e-12).log(), y)),
        "brier": float((probs - onehot).pow(2).sum(dim=1).mean()),  # multiclass Brier score
        "accuracy": float((probs.argmax(1) == y).float().mean()),
    }


def reliability_png(before: torch.Tensor, after: torch.Tensor, y: torch.Tensor, method: str) -> bytes:
    """Both reliability curves (accuracy per confidence bin) and the diagonal, as PNG bytes."""
    figure = new_figure(5, 5, dpi=110)
    ax = figure.add_subplot()
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
    for probs, label in ((before, "before"), (after, f"after ({method})")):
        confidence, correct = probs.max(dim=1).values.numpy(), (probs.argmax(1) == y).numpy()
        bins = np.clip((confidence * N_BINS).astype(int), 0, N_BINS - 1)
        filled = [b for b in range(N_BINS) if (bins == b).any()]
        ax.plot(
            [confidence[bins == b].mean() for b in filled], [correct[bins == b].mean() for b in filled], marker="o", label=label
        )
    ax.set(
        xlabel="confidence (top probability)", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title="reliability on the test split"
    )
    ax.legend(loc="upper left")
    return png_bytes(figure, bbox_inches="tight")


def calibrate_outputs(
    method: Method, task: str, val: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor]
) -> tuple[dict, bytes]:
    """Fit on the validation outputs, judge on the test outputs: calibration.json's content and reliability.png.

    ``val`` and ``test`` are (raw model outputs, labels).
    """
    calibrator = fit_calibrator(*val, task, method)
    outputs, y = test
    before, after = probabilities(outputs.float(), task), calibrator.probabilities(outputs)
    result: dict = {"method": method}
    if calibrator.temperature is not None:
        result["temperature"] = calibrator.temperature
    result |= {
        "before": calibration_metrics(before, y),
        "after": calibration_metrics(after, y),
        "parameters": calibrator.to_dict(),
    }
    return result, reliability_png(before, after, y, method)
