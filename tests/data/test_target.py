import numpy as np
import pandas as pd
import pytest

from trainwright.data.target import infer_task, resolve_task
from trainwright.errors import TrainwrightError


@pytest.mark.parametrize(
    "values, task",
    [
        (["cat", "dog", "cat"], "binary"),
        (["a", "b", "c", "a"], "multiclass"),
        ([True, False, True], "binary"),
        ([0, 1, 1, 0], "binary"),
        ([0.0, 1.0, 1.0, np.nan], "binary"),  # integers stored as floats (a missing value made them float)
        ([1, 2, 3] * 10, "multiclass"),
        ([0.5, 1.25, 3.0], "regression"),
        ([-3, -1, 1, 3, 5, 7], "regression"),  # all distinct: a quantity, not classes
        (list(range(30)) * 3, "regression"),  # more than 20 distinct integers
    ],
)
def test_infer_task(values, task):
    assert infer_task(pd.Series(values, name="y")) == task


def test_infer_task_on_categories():
    assert infer_task(pd.Series(["a", "b", "c"], dtype="category")) == "multiclass"


def test_requested_task_overrides_inference():
    assert resolve_task(pd.Series([1, 2, 3] * 10), "regression", "y") == "regression"
    assert resolve_task(pd.Series([-3, -1, 1, 3, 5, 7]), "multiclass", "y") == "multiclass"


def test_single_class():
    with pytest.raises(TrainwrightError, match="target 'y' has a single value 'a'; a classifier needs at least two classes"):
        resolve_task(pd.Series(["a", "a", "a"]), "auto", "y")


def test_regression_on_text():
    with pytest.raises(TrainwrightError, match="target 'y' holds text .*regression needs numbers"):
        resolve_task(pd.Series(["a", "b", "a"]), "regression", "y")


def test_classification_on_fractional_numbers():
    with pytest.raises(TrainwrightError, match="target 'y' has non-integer values such as 0.5"):
        resolve_task(pd.Series([0.5, 1.0, 2.0]), "multiclass", "y")


def test_binary_with_three_classes():
    with pytest.raises(TrainwrightError, match="has 3 classes; set data.task: multiclass"):
        resolve_task(pd.Series(["a", "b", "c"]), "binary", "y")
