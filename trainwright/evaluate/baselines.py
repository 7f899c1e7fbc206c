"""Classical baselines on the same split: is deep learning worth it here?

A linear model (logistic regression, or ridge regression) and scikit-learn's
HistGradientBoosting are fitted on exactly the preprocessed training tensors the network
saw, and scored on the same test rows with the same metric functions (``runs.score``), so
the numbers sit beside the network's and compare like for like.

Classifiers also get the majority class (always predict the most frequent training class).
Text: TF-IDF (words and word pairs) + logistic regression, and a plain bag of words (word
counts, order lost) + logistic regression, fitted on the cleaned training texts. Series: the
naive last-value forecast, the seasonal-naive forecast (the value one season earlier) and a ridge
autoregression on the lookback window, on the same test windows, in original units.

Example:
    >>> data = prepare_tabular(DataConfig(source="iris"))
    >>> fit_baselines(data)["logistic_regression"]["accuracy"]
    0.9565...
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from trainwright.data.tabular import TabularData
from trainwright.evaluate.intervals import MIN_ROWS, compare, key_metric, metric_intervals
from trainwright.evaluate.metrics import classification_metrics, forecast_metrics, regression_metrics


def baseline_models(task: str) -> dict:
    """Unfitted scikit-learn estimators for ``task``, by the name they are reported under."""
    # Loaded when baselines are fitted, not when a run imports this module (verdict, scoring).
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge

    if task == "regression":
        return {"ridge": Ridge(alpha=1.0), "hist_gradient_boosting": HistGradientBoostingRegressor(random_state=0)}
    return {
        "majority_class": DummyClassifier(strategy="most_frequent"),
        "logistic_regression": LogisticRegression(max_iter=2000),
        "hist_gradient_boosting": HistGradientBoostingClassifier(random_state=0),
    }


def fit_baselines(data) -> dict[str, dict[str, float]]:
    """``{name: {metric: value}}`` on the test split, for each baseline of the task (and modality)."""
    return score_baselines(baseline_predictions(data), data)


def baseline_predictions(data) -> dict[str, np.ndarray]:
    """Each baseline's test predictions: class probabilities (N, C), values (N,) or forecasts (N, horizon),
    in original units."""
    modality = getattr(data.preprocessor, "modality", "tabular")
    if modality == "text":
        return text_baselines(data)
    if modality == "series":
        return series_baselines(data)
    return table_baselines(data)


def score_baselines(predictions: dict[str, np.ndarray], data) -> dict[str, dict[str, float]]:
    """The same metric functions as the network's, on the same test rows."""
    pre = data.preprocessor
    if data.task != "regression":
        return {name: classification_metrics(torch.from_numpy(p), data.y_test) for name, p in predictions.items()}
    true = torch.from_numpy(np.asarray(pre.decode_target(data.y_test.numpy()), dtype=np.float64))
    if getattr(pre, "modality", "") == "series":
        return {name: forecast_metrics(torch.from_numpy(f), true, pre.mase_scale) for name, f in predictions.items()}
    return {name: regression_metrics(torch.from_numpy(p), true) for name, p in predictions.items()}


def text_baselines(data) -> dict[str, np.ndarray]:
    """TF-IDF + logistic regression, bag-of-words + logistic regression, and the majority class, on the raw texts."""
    from sklearn.dummy import DummyClassifier
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    models = {
        "majority_class": DummyClassifier(strategy="most_frequent"),
        "tfidf_logistic_regression": make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(max_iter=2000, C=10.0)
        ),
        "bag_of_words_logistic_regression": make_pipeline(CountVectorizer(), LogisticRegression(max_iter=2000)),
    }
    results = {}
    for name, model in models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(data.texts["train"], data.y_train.numpy())
        results[name] = _full_probabilities(model.predict_proba(data.texts["test"]), model.classes_, data)
    return results


def series_baselines(data) -> dict[str, np.ndarray]:
    """Forecasts of the test windows a practitioner would try first, in original units: naive (repeat the
    last value), seasonal naive (the value one season earlier, from the whole series: the season may be
    longer than the lookback) and a linear autoregression (ridge regression, its penalty chosen by
    leave-one-out, on the lookback window of every value column, fitted on the training windows)."""
    from sklearn.linear_model import RidgeCV

    pre, target, rows = data.preprocessor, data.target, data.forecast_rows["test"]  # (T,), (N,) first forecast row
    horizon = data.y_test.shape[1]
    steps = np.arange(horizon)
    forecasts = {"naive_last_value": np.repeat(target[rows - 1][:, None], horizon, axis=1)}  # (N, horizon)
    if data.season and rows.min() >= data.season:
        m = data.season
        forecasts["seasonal_naive"] = target[rows[:, None] + steps - m * (steps // m + 1)]
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(data.x_train.flatten(1).numpy(), data.y_train.numpy())
    forecasts["ridge_autoregression"] = pre.decode_target(ridge.predict(data.x_test.flatten(1).numpy())).reshape(-1, horizon)
    return {name: np.asarray(f, dtype=np.float64) for name, f in forecasts.items()}


def table_baselines(data: TabularData) -> dict[str, np.ndarray]:
    """Classical models on the preprocessed table."""
    x_train, x_test = data.x_train.numpy(), data.x_test.numpy()  # (N, F) float32, as the network saw them
    results = {}
    for name, model in baseline_models(data.task).items():
        with warnings.catch_warnings():
            # A baseline that stops at its iteration cap is still a fair reference point.
            warnings.simplefilter("ignore", ConvergenceWarning)
            if data.task == "regression":
                model.fit(x_train, data.y_train.numpy().ravel())
                # In the target's original units, as the network's are.
                results[name] = data.preprocessor.decode_target(model.predict(x_test).reshape(-1, 1))
            else:
                model.fit(x_train, data.y_train.numpy())
                results[name] = _full_probabilities(model.predict_proba(x_test), model.classes_, data)
    return results


def _full_probabilities(proba: np.ndarray, fitted_classes: np.ndarray, data) -> np.ndarray:
    # A class absent from the training rows gets no column from scikit-learn; give it probability 0.
    n_classes = len(data.preprocessor.classes)
    full = np.zeros((len(proba), n_classes), dtype=np.float32)  # (N, C)
    full[:, fitted_classes.astype(np.int64)] = proba
    return full


# ── how sure: intervals, and the network against the best baseline ─────────────────────
def comparable(predictions: np.ndarray, task: str) -> np.ndarray:
    """Predictions as the comparison reads them: class indices for classifiers, values or forecasts otherwise."""
    return predictions.argmax(1) if task != "regression" else predictions


def judge(network: np.ndarray, baselines: dict[str, np.ndarray], scores: dict[str, dict], y: np.ndarray, task: str,
          n_classes: int = 0, scale: float | None = None) -> tuple[dict, dict | None]:
    """The baselines' key-metric intervals, and the paired comparison of the network with the best baseline.

    ``network`` and each baseline: comparable predictions (``comparable``); ``scores``: the baselines' metrics.
    """
    forecast = np.asarray(y).ndim == 2
    key, higher = key_metric(task, forecast)
    intervals = {name: {key: metric_intervals(p, y, task, n_classes, scale)[key]} for name, p in baselines.items()}
    scored = {name: s[key] for name, s in scores.items() if s.get(key) is not None and np.isfinite(s[key])}
    if not scored:
        return intervals, None
    best = (max if higher else min)(scored, key=scored.get)
    return intervals, {"baseline": best, **compare(network, baselines[best], y, task, n_classes, scale)}


def verdict(metrics: dict) -> str | None:
    """One line answering "is deep learning worth it here?": a winner only when the paired bootstrap
    interval of the difference (``metrics["comparison"]``) excludes 0, otherwise the two are level.

    Example:
        >>> verdict(metrics)   # 270 test rows, accuracy .9815 vs .9593
        'On the 270 test rows the network (accuracy 0.9815) beats the best baseline, logistic_regression (0.9593), by 0.0222 ...'
    """
    c = metrics.get("comparison")
    if not metrics.get("baselines"):
        return None
    if c is None:
        return "this run recorded no comparison with an interval, so no winner is called (train it again to get one)"
    key, name, ours, theirs = c["metric"], c["baseline"], c["ours"], c["theirs"]
    low, high = c["interval"]
    noise = f"paired bootstrap {c['confidence']:.0%} interval of the difference {low:+.4f} to {high:+.4f}"
    unit = c.get("unit", "rows")
    where = f"On the {c['rows']} test {unit}" if metrics.get("held_out", True) else (
        f"On the {c['rows']} training {unit} (too few rows to hold any out)")
    if c["rows"] < MIN_ROWS:
        return (f"{where} the network ({key} {ours:.4f}) and the best baseline, {name} ({theirs:.4f}), cannot be told apart: "
                f"{c['rows']} {unit} are too few to call a winner")
    if c["level"]:
        return (f"{where} the network ({key} {ours:.4f}) and the best baseline, {name} ({theirs:.4f}), are level: the "
                f"difference is within the noise ({noise})")
    if c["difference"] > 0:
        return (f"{where} the network ({key} {ours:.4f}) beats the best baseline, {name} ({theirs:.4f}), by "
                f"{c['difference']:.4f} ({noise})")
    return (f"{where} the best baseline, {name} ({key} {theirs:.4f}), beats the network ({ours:.4f}) by {-c['difference']:.4f} "
            f"({noise}): a classical model is the better choice here")


