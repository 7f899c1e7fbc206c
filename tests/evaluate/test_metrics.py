import pytest
import torch

from trainwright.evaluate.metrics import classification_metrics, confusion_matrix, regression_metrics


def test_perfect_and_known_classification():
    probs = torch.tensor([[0.9, 0.1, 0.0], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.6, 0.3, 0.1]])
    y = torch.tensor([0, 1, 2, 1])
    m = classification_metrics(probs, y)
    assert m["accuracy"] == pytest.approx(0.75)
    # Class 1: precision 1/1, recall 1/2; class 0: precision 1/2, recall 1; class 2: 1, 1.
    assert m["precision"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert m["recall"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert confusion_matrix(probs, y) == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]


def test_binary_auroc_and_missing_class():
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    assert classification_metrics(probs, torch.tensor([0, 0, 1, 1]))["auroc"] == pytest.approx(1.0)
    assert (
        classification_metrics(probs, torch.tensor([0, 0, 0, 0]))["auroc"]
        != classification_metrics(probs, torch.tensor([0, 0, 0, 0]))["auroc"]
    )


def test_regression_metrics_in_original_units():
    m = regression_metrics(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([[1.0], [2.0], [5.0]]))
    assert m["mse"] == pytest.approx(4 / 3)
    assert m["rmse"] == pytest.approx((4 / 3) ** 0.5)
    assert m["mae"] == pytest.approx(2 / 3)
    assert m["r2"] == pytest.approx(1 - 4 / (26 / 3))  # SS_res 4, SS_tot 26/3 around the mean 8/3
