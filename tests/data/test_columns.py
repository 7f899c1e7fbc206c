import numpy as np
import pandas as pd
import pytest

from trainwright.data.columns import category_values, column_kind, numeric_values
from trainwright.errors import TrainwrightError


@pytest.mark.parametrize(
    "values, kind",
    [
        ([1, 2, 3], "numeric"),
        ([1.5, None, 3.0], "numeric"),
        (["1", " 2.5", "3e2", None], "numeric"),  # numbers stored as text
        (["a", "b", "a"], "categorical"),
        ([True, False, True], "categorical"),  # bools are categories, not 0/1
        (["1", "2", "x", "y", "z"], "categorical"),  # 40% numbers: a text column
    ],
)
def test_column_kind(values, kind):
    assert column_kind(pd.Series(values)) == kind


def test_pandas_string_dtype_is_categorical():
    series = pd.Series(["a", None, "b"], dtype="str")
    assert column_kind(series) == "categorical"
    values = category_values(series)
    assert values[0] == "a" and values[2] == "b" and pd.isna(values[1])


def test_mostly_numeric_column_with_junk_names_column_count_values_and_rows():
    series = pd.Series(["1", "2", "?", "4", "5", "abc", "7", "8", "9", "10"])
    assert column_kind(series) == "numeric"
    with pytest.raises(TrainwrightError) as error:
        numeric_values(series, "rooms")
    message = str(error.value)
    assert "'rooms'" in message and "2 values are not a number" in message
    assert "'?' (row 3)" in message and "'abc' (row 6)" in message


def test_infinities_are_named_with_count():
    with pytest.raises(TrainwrightError, match=r"column 'area' has 2 infinite values \(first at row 2\)"):
        numeric_values(pd.Series([1.0, np.inf, -np.inf]), "area")


def test_blank_and_null_text_are_missing_not_junk():
    values = numeric_values(pd.Series(["1", "", " ", "null", "NaN", "6"]), "a")
    assert values[0] == 1 and values[-1] == 6 and np.isnan(values[1:5]).all()


def test_nullable_integers():
    values = numeric_values(pd.Series([1, None, 3], dtype="Int64"), "a")
    assert values.dtype == np.float64 and np.isnan(values[1]) and values[2] == 3


def test_a_huge_bad_value_is_quoted_by_its_first_characters():
    series = pd.Series(["1.5", "x" * 5_000_000, "2.5"])
    with pytest.raises(TrainwrightError) as error:
        numeric_values(series, "price")
    message = str(error.value)
    assert len(message) < 400 and "'xxxxxxxxxx" in message and "(5,000,000 characters) (row 2)" in message
