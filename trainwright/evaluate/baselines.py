"""Classical baselines on the same split: is deep learning worth it here?

A linear model (logistic regression, or ridge regression) and scikit-learn's
HistGradientBoosting are fitted on exactly the preprocessed training tensors the network
saw, and scored on the same test rows with the same metric functions (``runs.score``), so
the numbers sit beside the network's and compare like for like.

Text: TF-IDF (words and word pairs) + logistic regression, and a plain bag of words (word
counts, order lost) + logistic regression, fitted on the cleaned training texts. Series: the
naive last-value forecast and the seasonal-naive forecast (the value one season earlier) on the
same test windows, in original units.

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
from trainwright.evaluate.metrics import classification_metrics, regression_metrics


def baseline_models(task: str) -> dict:
    """Unfitted scikit-learn estimators for ``task``, by the name they are reported under."""
    # Loaded when baselines are fitted, not when a run imports this module (verdict, scoring).
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge

    if task == "regression":
        return {"ridge": Ridge(alpha=1.0), "hist_gradient_boosting": HistGradientBoostingRegressor(random_state=0)}
    return {
        "logistic_regression": LogisticRegression(max_iter=2000),
        "hist_gradient_boosting": HistGradientBoostingClassifier(random_state=0),
    }


def fit_baselines(data) -> dict[str, dict[str, float]]:
    """``{name: {metric: value}}`` on the test split, for each baseline of the task (and modality)."""
    return score_baselines(data, baseline_predictions(data))


def baseline_predictions(data) -> dict[str, np.ndarray]:
    """Each baseline's predictions for the test rows: class probabilities (N, C) in the order of the
    preprocessor's classes, regression values in the network's scaled units, or forecasts (N, horizon).

    The fitting half of ``fit_baselines``: it needs numpy and scikit-learn only, so a run can fit the
    baselines in another process while the network trains and score them after (``score_baselines``).
    """
    modality = getattr(data.preprocessor, "modality", "tabular")
    if modality == "text":
        return text_predictions(data)
    if modality == "series":
        return series_forecasts(data)
    return table_predictions(data)


def score_baselines(data, predictions: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """The network's metric functions on each baseline's predictions (``baseline_predictions``)."""
    pre = data.preprocessor
    if getattr(pre, "modality", "tabular") == "series":
        from trainwright.evaluate.metrics import forecast_metrics

        true = torch.from_numpy(pre.decode_target(data.y_test.numpy()))
        return {name: forecast_metrics(torch.from_numpy(pre.decode_target(f)), true) for name, f in predictions.items()}
    if data.task == "regression":
        true = torch.from_numpy(pre.decode_target(data.y_test.numpy()))
        # Metrics in the target's original units, as the network's are.
        return {name: regression_metrics(torch.from_numpy(pre.decode_target(p.reshape(-1, 1))), true)
                for name, p in predictions.items()}
    return {name: classification_metrics(torch.from_numpy(p), data.y_test) for name, p in predictions.items()}


def text_predictions(data) -> dict[str, np.ndarray]:
    """TF-IDF + logistic regression and bag-of-words + logistic regression on the raw texts."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    models = {
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
        results[name] = _all_classes(model.predict_proba(data.texts["test"]), model.classes_, data)
    return results


def series_forecasts(data) -> dict[str, np.ndarray]:
    """Naive (repeat the last value) and seasonal-naive (repeat the last season) forecasts of the test windows."""
    x = data.x_test[:, :, 0]  # (N, lookback) scaled target history
    horizon, lookback = data.y_test.shape[1], x.shape[1]
    forecasts = {"naive_last_value": x[:, -1:].expand(-1, horizon)}
    if data.season:
        steps = torch.arange(horizon)
        forecasts["seasonal_naive"] = x[:, lookback - data.season + steps % data.season]  # (N, horizon)
    return {name: f.numpy() for name, f in forecasts.items()}


def table_predictions(data: TabularData) -> dict[str, np.ndarray]:
    """Classical models on the preprocessed table."""
    x_train, x_test = data.x_train.numpy(), data.x_test.numpy()  # (N, F) float32, as the network saw them
    results = {}
    for name, model in baseline_models(data.task).items():
        with warnings.catch_warnings():
            # A baseline that stops at its iteration cap is still a fair reference point.
            warnings.simplefilter("ignore", ConvergenceWarning)
            if data.task == "regression":
                model.fit(x_train, data.y_train.numpy().ravel())
                results[name] = model.predict(x_test)
            else:
                model.fit(x_train, data.y_train.numpy())
                results[name] = _all_classes(model.predict_proba(x_test), model.classes_, data)
    return results


def _all_classes(proba: np.ndarray, fitted_classes: np.ndarray, data) -> np.ndarray:
    # A class absent from the training rows gets no column from scikit-learn; give it probability 0.
    n_classes = len(data.preprocessor.classes)
    full = np.zeros((len(proba), n_classes), dtype=np.float32)  # (N, C)
    full[:, fitted_classes.astype(np.int64)] = proba
    return full


def verdict(metrics: dict) -> str | None:
    """One line answering "is deep learning worth it here?" from ``metrics.json``'s test scores.

    Example:
        >>> verdict({"task": "multiclass", "test": {"accuracy": 0.98}, "baselines": {"logistic_regression": {"accuracy": 0.96}}})
        'On the test rows the network (accuracy 0.9800) beats the best baseline, logistic_regression (0.9600), by 0.0200'
    """
    baselines = metrics.get("baselines") or {}
    key = "r2" if metrics.get("task") == "regression" else "accuracy"
    ours = (metrics.get("test") or {}).get(key)
    scored = {name: scores[key] for name, scores in baselines.items() if scores.get(key) is not None}
    if ours is None or not scored:
        return None
    name, best = max(scored.items(), key=lambda item: item[1])
    if abs(ours - best) < 0.005:
        return (f"On the test rows the network ({key} {ours:.4f}) is level with the best baseline, {name} ({best:.4f}): "
                "a classical model does as well here")
    if ours > best:
        return (
            f"On the test rows the network ({key} {ours:.4f}) beats the best baseline, {name} ({best:.4f}), by {ours - best:.4f}"
        )
    return (f"On the test rows the best baseline, {name} ({key} {best:.4f}), beats the network ({ours:.4f}) "
            f"by {best - ours:.4f}: a classical model is the better choice here")
