import numpy as np
import pandas as pd
import pytest
from helpers import hospital_like, titanic_like

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
    cleaned = clean_table(dirty, "y", CleanConfig(duplicates="drop", missing_indicator=1.0))
    assert _counts(cleaned) == {
        "missing_target": 1,
        "constant_columns": 1,
        "identifier_columns": 0,
        "missing_columns": 0,
        "duplicates": 2,
        "missing_values": 3,  # a: 1, b: 2 (row 3's copy was dropped with the duplicates)
    }
    assert len(cleaned.frame) == 10 - 1 - 2
    assert cleaned.dropped == {"k": "constant: always 7"}
    assert cleaned.kinds == {"a": "numeric", "b": "categorical"}
    assert cleaned.missing == {"a": 1, "b": 2} and cleaned.indicated == ()


def test_missing_drop_removes_incomplete_rows(dirty):
    cleaned = clean_table(dirty, "y", CleanConfig(duplicates="drop", missing="drop", max_dropped=1))
    assert _counts(cleaned)["missing_rows"] == 3
    assert len(cleaned.frame) == 10 - 1 - 2 - 3
    assert not cleaned.frame.isna().any().any()


def test_switches_off(dirty):
    cleaned = clean_table(dirty, "y", CleanConfig(duplicates="keep", drop_constant=False))
    assert "k" in cleaned.kinds and len(cleaned.frame) == 9


def test_old_drop_duplicates_key_still_reads():
    assert CleanConfig(drop_duplicates=True).duplicates == "drop"
    assert CleanConfig(drop_duplicates=False).duplicates == "auto"


def test_identifier_like_text_column_is_dropped():
    n = 40
    frame = pd.DataFrame({"name": [f"user{i}" for i in range(n)], "a": np.arange(n) % 7, "y": np.arange(n) % 2})
    cleaned = clean_table(frame, "y", CleanConfig())
    assert cleaned.dropped == {"name": "identifier-like text: 40 distinct values in 40 rows"}
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
        clean_table(frame, "y", CleanConfig(missing="drop", max_dropped=1))


# ── real tables as they come: categorical repeats, numeric ids, sparse columns, dates ──
def test_identical_rows_of_a_categorical_table_are_kept_and_counted():
    cleaned = clean_table(titanic_like(), "survived", CleanConfig())
    action = next(a for a in cleaned.actions if a.name == "duplicates")
    assert len(cleaned.frame) == 1316 and cleaned.duplicates == "keep"
    assert action.count > 1250 and action.detail["policy"] == "keep"
    assert action.message.startswith(f"{action.count} of 1316 rows repeat an earlier row exactly")
    assert "repeated observations: kept and split as usual" in action.message


def test_dropping_most_of_the_rows_is_refused_with_the_fix():
    with pytest.raises(TrainwrightError, match=r"cleaning would remove 12\d\d of 1316 rows \(9\d%\): .* as exact duplicates "
                       r".*data.clean.duplicates: auto .* data.clean.max_dropped: 1"):
        clean_table(titanic_like(), "survived", CleanConfig(duplicates="drop"))
    assert len(clean_table(titanic_like(), "survived", CleanConfig(duplicates="drop", max_dropped=1)).frame) < 40


def test_copies_in_a_table_with_measurements_are_grouped():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=50), "b": rng.choice(["x", "y"], 50), "y": rng.choice([0, 1], 50)})
    frame = pd.concat([frame, frame.iloc[:5]], ignore_index=True)
    cleaned = clean_table(frame, "y", CleanConfig())
    assert cleaned.duplicates == "group" and len(cleaned.frame) == 55
    assert "5 rows repeat an earlier row exactly (5 sets of identical rows): kept, each set on one side" in next(
        a.message for a in cleaned.actions if a.name == "duplicates")


def test_integer_ids_mostly_missing_columns_and_dates():
    cleaned = clean_table(hospital_like(), "y", CleanConfig())
    assert cleaned.dropped["case_id"] == "identifier: integers unique to each row, increasing"
    assert cleaned.dropped["patient"] == "identifier of groups of rows: 60 values, each on one block of consecutive rows"
    assert cleaned.dropped["lab"].endswith("missing: 282 of 300 rows") and cleaned.dropped["lab"].startswith("94%")
    assert cleaned.kinds == {"age": "numeric", "dose": "numeric", "ward": "categorical", "admitted": "date"}
    assert cleaned.indicated == ("dose", "ward")
    assert cleaned.dates == {"admitted": ["year", "month", "weekday", "days", "hour"]}


@pytest.mark.parametrize(
    ("values", "name", "dropped"),
    [
        (np.arange(40)[::-1], "row", True),  # unique, decreasing
        (np.random.default_rng(0).permutation(40) + 7, "rank", True),  # unique, consecutive
        (np.random.default_rng(0).choice(10**6, 40, replace=False), "income", False),  # unique, spread out: a quantity
        (np.random.default_rng(0).choice(10**6, 40, replace=False), "PatientId", True),  # ... unless named as an id
        (np.repeat(np.arange(1990, 2010), 2), "year", False),  # sorted blocks: a table sorted by a quantity
        (np.repeat(np.arange(1990, 2010), 2), "site_id", True),
    ],
)
def test_integer_identifier_rules(values, name, dropped):
    frame = pd.DataFrame({name: values, "a": np.arange(40) % 3, "y": np.arange(40) % 2})
    assert (name in clean_table(frame, "y", CleanConfig()).dropped) is dropped
    assert name in clean_table(frame, "y", CleanConfig(drop_identifiers=False)).kinds
