"""Offline measures of a generator's quality, with no downloaded feature network.

- 2-D mixtures (``mode_coverage``): PacGAN's protocol (fjxmlzn/PacGAN: synthetic_data_experiments/PacGAN/pacgan/
  extensions.py, ``MetricLogger``): each sample goes to its nearest mode; it is high quality when within
  ``threshold`` standard deviations of it; a mode is covered when it has at least one high-quality sample;
  the reverse KL compares the histogram of high-quality samples over modes with the uniform one.
- Images: a classifier trained on the real images judges the samples (``class_shares``, ``asked_class_rate``),
  and its penultimate features give the Fréchet distance (torchmetrics' FID with that classifier as
  ``feature=``) and precision/recall/density/coverage (``prdc``, Naeem et al. 2020, k-NN manifolds).
- Tables: per-column Wasserstein-1 and Kolmogorov-Smirnov distances (scipy), the difference of the
  correlation matrices, and a scikit-learn model trained on synthetic rows and scored on real test rows
  beside the same model trained on real rows (``synthetic_utility``).

Example:
    >>> from trainwright.data.mixtures import MIXTURES
    >>> ring = MIXTURES["ring"]
    >>> mode_coverage(ring.sample(2500, seed=0), ring.means, ring.std).modes
    8
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.stats import entropy, ks_2samp, wasserstein_distance
from torch import nn


# ── 2-D mixtures ─────────────────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class ModeCoverage:
    """PacGAN's measures of samples against a mixture's modes."""

    modes: int  # modes with at least ``min_samples`` high-quality samples
    high_quality: float  # share of samples within ``threshold`` stds of their nearest mode
    reverse_kl: float  # KL(high-quality histogram over modes || uniform); inf when no sample is high quality
    counts: tuple[int, ...]  # high-quality samples per mode


def mode_coverage(
    samples: torch.Tensor, means: torch.Tensor, std: float, threshold: float = 3.0, min_samples: int = 1
) -> ModeCoverage:
    """How many of the modes ``means`` (K, D) the ``samples`` (N, D) cover, and how many samples are near any.

    Example:
        >>> means = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
        >>> q = mode_coverage(torch.tensor([[0.0, 0.001], [0.5, 0.5]]), means, std=0.01)
        >>> q.modes, q.high_quality, q.counts
        (1, 0.5, (1, 0))
    """
    distances = torch.cdist(samples.double().cpu(), means.double().cpu()) / std  # (N, K), in standard deviations
    nearest, mode = distances.min(dim=1)  # (N,), (N,)
    good = nearest < threshold
    counts = torch.bincount(mode[good], minlength=len(means))  # (K,)
    total = int(counts.sum())
    reverse_kl = float(entropy(counts.numpy() / total, np.full(len(means), 1 / len(means)))) if total else float("inf")
    return ModeCoverage(int((counts >= min_samples).sum()), float(good.double().mean()), reverse_kl, tuple(counts.tolist()))


# ── images, judged by a classifier trained on the real images ───────────────────────────
class PenultimateFeatures(nn.Module):
    """A classifier's penultimate features: the input of its last ``nn.Linear``, (B, num_features).

    Always the trained network's features: the classifier runs in eval mode (no dropout, BatchNorm's running
    statistics, which a pass never updates) whatever mode it or this wrapper is in, and is left in the mode it
    was in. torchmetrics' FID reads ``num_features`` to size its statistics.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> PenultimateFeatures(net)(torch.zeros(5, 1, 2, 2)).shape
        torch.Size([5, 3])
    """

    def __init__(self, classifier: nn.Module):
        super().__init__()
        linears = [module for module in classifier.modules() if isinstance(module, nn.Linear)]
        if not linears:
            raise ValueError("the classifier has no nn.Linear head whose input could serve as features")
        self.classifier, self.head = classifier, linears[-1]
        self.num_features = self.head.in_features
        # A new module is in training mode: a caller that restores this one's mode restores the classifier's.
        self.train(classifier.training)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        captured: list[torch.Tensor] = []
        handle = self.head.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0]))
        was_training = self.classifier.training
        self.classifier.eval()
        try:
            self.classifier(images)
        finally:
            handle.remove()
            self.classifier.train(was_training)
        return captured[0].flatten(1)


@torch.no_grad()
def _batched(module: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    was_training = module.training
    module.eval()
    try:
        return torch.cat([module(images[start : start + batch_size]) for start in range(0, len(images), batch_size)])
    finally:
        module.train(was_training)


def predict_classes(classifier: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """The classifier's predicted class of each image (N,), in eval mode."""
    return _batched(classifier, images, batch_size).argmax(dim=1)


def class_shares(classifier: nn.Module, images: torch.Tensor, n_classes: int, batch_size: int = 512) -> torch.Tensor:
    """Share of each class among the images as the classifier sees them, (n_classes,) summing to 1.

    Example: ``class_shares(cnn, gan.sample(1000), 10).min() >= 0.04`` checks that no digit is starved.
    """
    predicted = predict_classes(classifier, images, batch_size)
    return torch.bincount(predicted, minlength=n_classes).double() / len(predicted)


def asked_class_rate(classifier: nn.Module, images: torch.Tensor, asked: torch.Tensor, batch_size: int = 512) -> float:
    """How often a conditional sample is classified as the class it was asked for.

    Example: ``asked_class_rate(cnn, gan.sample(1000, labels=y), y)``.
    """
    return float((predict_classes(classifier, images, batch_size) == asked.to(images.device)).double().mean())


def frechet_distance(
    features: PenultimateFeatures, images_a: torch.Tensor, images_b: torch.Tensor, batch_size: int = 512
) -> float:
    """Fréchet distance between two image sets in ``features`` (torchmetrics' FID with a custom extractor).

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> x = torch.randn(200, 1, 2, 2)
        >>> abs(frechet_distance(PenultimateFeatures(net), x, x)) < 1e-3
        True
    """
    # torchmetrics sums the features and their products in float64, so the covariances keep their digits
    # sync_on_compute off: one process computes it (a data-parallel GAN's rank 0), the others are not waiting to join
    # torchmetrics loads every metric it has (and matplotlib) on import: loaded when a GAN is judged, not by
    # every process that imports this module (``trainwright`` itself does).
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=features, reset_real_features=True, sync_on_compute=False).to(images_a.device)
    with torch.no_grad():
        for images, real in ((images_a, True), (images_b, False)):
            for start in range(0, len(images), batch_size):
                metric.update(images[start : start + batch_size], real=real)
        return float(metric.compute())


@dataclass(frozen=True)
class ImageQuality:
    """Fréchet distance and k-NN manifold measures of generated images in a classifier's features."""

    fid: float  # real training images vs generated
    fid_floor: float  # real training vs real test images: what a perfect generator would score
    precision: float  # share of generated samples inside the real manifold
    recall: float  # share of real samples inside the generated manifold
    density: float  # ~1 when generated samples are spread like real ones
    coverage: float  # share of real samples with a generated neighbour; ~0.97 for identical sets


def image_quality(
    classifier: nn.Module, real_train: torch.Tensor, real_test: torch.Tensor, generated: torch.Tensor, k: int = 5
) -> ImageQuality:
    """FID (and its floor) and precision/recall/density/coverage against ``real_train`` in the classifier's features.

    The manifold measures compare ``generated`` with as many real training images, the smaller count of the two.

    Example: ``image_quality(cnn, x_train, x_test, gan.sample(1000)).fid``.
    """
    return ImageJudge(classifier, real_train, real_test, len(generated), k).quality(generated)


class ImageJudge:
    """A classifier trained on the real images, judging generated ones again and again: the real images'
    features, their Fréchet statistics and the train-vs-test floor are computed once.

    ``judge`` gives every image measure of one set of samples: FID beside its floor, precision, recall,
    density and coverage (k-NN manifolds of ``n`` real training images), the share of each class, and with
    ``asked`` labels the share classified as asked. Images are floats in [0, 1] (what the classifier's input
    stage takes), (N, C, H, W).

    Example:
        >>> judge = ImageJudge(cnn, x_train, x_test, n=1000)
        >>> judge.judge(samples, asked=labels)["asked_rate"]
    """

    def __init__(
        self, classifier: nn.Module, real_train: torch.Tensor, real_test: torch.Tensor, n: int, k: int = 5, batch_size: int = 512
    ):
        self.classifier, self.k, self.batch_size = classifier, k, batch_size
        self.features = PenultimateFeatures(classifier)
        self.n_classes = self.classifier_outputs(real_train[:2])
        self.floor = frechet_distance(self.features, real_train, real_test, batch_size)
        # torchmetrics keeps the real statistics across resets when reset_real_features is off
        # sync_on_compute off: one process judges (a data-parallel GAN's rank 0), the others are not waiting to join
        from torchmetrics.image.fid import FrechetInceptionDistance  # heavy: see frechet_distance

        self.fid = FrechetInceptionDistance(feature=self.features, reset_real_features=False,
                                            sync_on_compute=False).to(real_train.device)
        with torch.no_grad():
            for start in range(0, len(real_train), batch_size):
                self.fid.update(real_train[start : start + batch_size], real=True)
        self.n = min(n, len(real_train))
        self.real_features = _batched(self.features, real_train[: self.n], batch_size).double().cpu().numpy()

    def classifier_outputs(self, images: torch.Tensor) -> int:
        return int(_batched(self.classifier, images, self.batch_size).shape[1])

    def quality(self, generated: torch.Tensor) -> ImageQuality:
        """FID beside its floor and the k-NN manifold measures of ``generated``."""
        self.fid.reset()
        with torch.no_grad():
            for start in range(0, len(generated), self.batch_size):
                self.fid.update(generated[start : start + self.batch_size], real=False)
            fid = float(self.fid.compute())
        n = min(self.n, len(generated))
        fake_features = _batched(self.features, generated[:n], self.batch_size).double().cpu().numpy()
        from prdc import compute_prdc  # lazy: k-NN manifolds (scipy) only for a GAN's image quality, not every CLI call

        with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
            prdc = compute_prdc(self.real_features[:n], fake_features, nearest_k=self.k)
        return ImageQuality(fid, self.floor, **{name: float(value) for name, value in prdc.items()})

    def judge(self, generated: torch.Tensor, asked: torch.Tensor | None = None) -> dict[str, float | list[float]]:
        """Every measure of ``generated`` as plain numbers: fid, fid_floor, precision, recall, density, coverage,
        class_shares (one per class), min_class_share, and asked_rate when ``asked`` labels are given."""
        predicted = predict_classes(self.classifier, generated, self.batch_size)
        shares = torch.bincount(predicted, minlength=self.n_classes).double() / len(predicted)
        out: dict[str, float | list[float]] = {**vars(self.quality(generated))}
        out.update(class_shares=shares.tolist(), min_class_share=float(shares.min()))
        if asked is not None:
            out["asked_rate"] = float((predicted == asked.to(predicted.device)).double().mean())
        return out


# ── tables ───────────────────────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class TableQuality:
    """Column-by-column and joint distances between real and synthetic rows (numeric columns)."""

    wasserstein: tuple[float, ...]  # per column, in units of the real column's standard deviation
    ks: tuple[float, ...]  # per column, Kolmogorov-Smirnov statistic in [0, 1]
    correlation_gap: float  # mean absolute difference of the off-diagonal Pearson correlations


def table_quality(real: np.ndarray, synthetic: np.ndarray) -> TableQuality:
    """Per-column distribution distances and the correlation difference of two (N, F) numeric tables.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> q = table_quality(rng.normal(size=(500, 3)), rng.normal(size=(500, 3)))
        >>> max(q.ks) < 0.1 and q.correlation_gap < 0.1
        True
    """
    real, synthetic = np.asarray(real, dtype=np.float64), np.asarray(synthetic, dtype=np.float64)
    scale = real.std(axis=0) + 1e-12
    wasserstein = tuple(float(wasserstein_distance(real[:, j], synthetic[:, j]) / scale[j]) for j in range(real.shape[1]))
    ks = tuple(float(ks_2samp(real[:, j], synthetic[:, j]).statistic) for j in range(real.shape[1]))
    off_diagonal = ~np.eye(real.shape[1], dtype=bool)
    gap = np.abs(np.corrcoef(real, rowvar=False) - np.corrcoef(synthetic, rowvar=False))[off_diagonal]
    return TableQuality(wasserstein, ks, float(np.nan_to_num(gap, nan=1.0).mean()) if gap.size else 0.0)


def column_distances(real: pd.DataFrame, synthetic: pd.DataFrame, kinds: dict[str, str]) -> dict[str, dict[str, float]]:
    """Per column of two tables in original units: numeric columns the Kolmogorov-Smirnov statistic and the
    Wasserstein-1 distance in units of the real column's standard deviation; categorical columns the total
    variation distance between the category shares. Each column's ``distance`` is its KS or TV, in [0, 1].

    Example:
        >>> real = pd.DataFrame({"a": [1.0, 2.0, 3.0], "c": ["x", "y", "y"]})
        >>> column_distances(real, real, {"a": "numeric", "c": "categorical"})["c"]
        {'total_variation': 0.0, 'distance': 0.0}
    """
    out: dict[str, dict[str, float]] = {}
    for column, kind in kinds.items():
        if kind == "numeric":
            a = pd.to_numeric(real[column], errors="coerce").dropna().to_numpy(np.float64)
            b = pd.to_numeric(synthetic[column], errors="coerce").dropna().to_numpy(np.float64)
            ks = float(ks_2samp(a, b).statistic)
            out[column] = {"ks": ks, "wasserstein": float(wasserstein_distance(a, b) / (a.std() + 1e-12)), "distance": ks}
        else:
            p = real[column].astype(str).value_counts(normalize=True)
            q = synthetic[column].astype(str).value_counts(normalize=True)
            tv = float(0.5 * p.subtract(q, fill_value=0.0).abs().sum())
            out[column] = {"total_variation": tv, "distance": tv}
    return out


@dataclass(frozen=True)
class SyntheticUtility:
    """Train on synthetic, test on real (TSTR) beside train on real, test on real (TRTR)."""

    synthetic: float  # score on the real test rows of a model fitted to the synthetic rows
    real: float  # score on the same rows of the same model fitted to the real training rows
    metric: str  # "accuracy" or "r2"


def synthetic_utility(
    synthetic_x: np.ndarray,
    synthetic_y: np.ndarray,
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    task: str = "classification",
    seed: int = 0,
) -> SyntheticUtility:
    """Score a gradient-boosting model (scikit-learn) fitted on synthetic rows and on real rows, both on real test rows.

    A synthetic table that is as useful as the real one scores close to ``real``.

    Example: ``synthetic_utility(xs, ys, x_train, y_train, x_test, y_test).synthetic``.
    """
    # scikit-learn's ensembles load when a synthetic table is judged, not with this module.
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    if task == "classification":
        model_kind, metric = HistGradientBoostingClassifier, "accuracy"
    else:
        model_kind, metric = HistGradientBoostingRegressor, "r2"
    scores = [
        model_kind(random_state=seed).fit(x, y).score(test_x, test_y) for x, y in ((synthetic_x, synthetic_y), (train_x, train_y))
    ]
    return SyntheticUtility(float(scores[0]), float(scores[1]), metric)
