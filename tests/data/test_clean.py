import numpy as np
import pandas as pd
import pytest

from trainwright.config import CleanConfig
from trainwright.data.clean import clean_table
from trainwright.errors import TrainwrightError


def _counts(cleaned) -> dict[str, int]:
    return {action.name: action.count for action in cleaned.actions}


@pytest.fixture
def dirty() -> pd.DataFrame:
    """10 rows: 2 exact duplicates (rows 1 and 4 again), 1 missing target, 1 constant column, 3 missing cells."""
    frame = pd.DataFrame(
        {
            "a": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0, 8.0],
            "b": ["x", "y", "x", None, "y", "x", "y", None],
            "k": [7, 7, 7, 7, 7, 7, 7, 7],
            "y": ["p", "q", "p", "q", "p", None, "q", "p"],
        }
    )
    return pd.concat([frame, frame.iloc[[0, 3]]], ignore_index=True)


def test_each_action_is_counted(dirty):
    cleaned = clean_table(dirty, "y", CleanConfig())
    assert _counts(cleaned) == {
        "missing_target": 1,
        "constant_columns": 1,
        "identifier_columns": 0,
        "duplicates": 2,
        "missing_values": 3,  # a: 1, b: 2 (row 3's copy was dropped with the duplicates)
    }
    assert len(cleaned.frame) == 10 - 1 - 2
    assert cleaned.dropped == {"k": "constant (always 7)"}
    assert cleaned.kinds == {"a": "numeric", "b": "categorical"}
    assert cleaned.missing == {"a": 1, "b": 2}


def test_missing_drop_removes_incomplete_rows(dirty):
    cleaned = clean_table(dirty, "y", CleanConfig(missing="drop"))
    assert _counts(cleaned)["missing_rows"] == 3
    assert len(cleaned.frame) == 10 - 1 - 2 - 3
    assert not cleaned.frame.isna().any().any()


def test_switches_off(dirty):
    cleaned = clean_table(dirty, "y", CleanConfig(drop_duplicates=False, drop_constant=False))
    assert "k" in cleaned.kinds and len(cleaned.frame) == 9


def test_identifier_like_text_column_is_dropped():
    n = 40
    frame = pd.DataFrame({"name": [f"user{i}" for i in range(n)], "a": np.arange(n) % 7, "y": np.arange(n) % 2})
    cleaned = clean_table(frame, "y", CleanConfig())
    assert cleaned.dropped == {"name": "identifier-like text (40 distinct values in 40 rows)"}
    assert "name" in next(a.message for a in cleaned.actions if a.name == "identifier_columns")


def test_unique_text_in_a_tiny_table_is_kept():
    frame = pd.DataFrame({"name": ["a", "b", "c", "d"], "a": [1, 2, 3, 4], "y": [0, 1, 0, 1]})
    assert "name" in clean_table(frame, "y", CleanConfig()).kinds


def test_all_missing_columns_are_named():
    frame = pd.DataFrame({"a": [1, 2, 3], "e1": [np.nan] * 3, "e2": [None] * 3, "y": [0, 1, 0]})
    with pytest.raises(TrainwrightError, match=r"columns 'e1', 'e2' have no values .*data.drop_columns: \[e1, e2\]"):
        clean_table(frame, "y", CleanConfig())


def test_no_feature_left():
    frame = pd.DataFrame({"k": [1, 1, 1], "y": [0, 1, 0]})
    with pytest.raises(TrainwrightError, match=r"no feature columns are left after cleaning \(k: constant"):
        clean_table(frame, "y", CleanConfig())


def test_missing_drop_that_leaves_nothing():
    frame = pd.DataFrame({"a": [1, np.nan, 3, np.nan], "b": [np.nan, 2, np.nan, 4], "y": [0, 1, 0, 1]})
    with pytest.raises(TrainwrightError, match="every row has a missing value"):
        clean_table(frame, "y", CleanConfig(missing="drop"))
