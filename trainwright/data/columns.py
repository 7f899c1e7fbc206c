"""Column kinds and the coercion of raw values to them, the same at fit time and at predict time.

A feature column is either *numeric* (float64, NaN for missing) or *categorical* (Python
strings, NaN for missing). The rules:

- numbers are numeric; bools, strings, pandas categories and dates are categorical (a date column
  is usually all distinct and so dropped as identifier-like: derive numeric features from it);
- a text column is numeric when at least 80% of its non-missing values parse as numbers
  (``" 3.5"``, ``"1e3"``); the rest are then junk (``"?"``, ``"abc"``) and an error names them
  with their rows, rather than silently turning the column into a 1000-way category;
- infinities are errors: no scaler or model handles them;
- blank strings and ``nan``/``null``/``none``/``n/a`` (any case) count as missing.

Row numbers in messages are ``index + 1``: callers pass frames numbered 0..N-1 from the file.

Example:
    >>> column_kind(pd.Series(["1", "2", "?", "4", "5"]))
    'numeric'
    >>> numeric_values(pd.Series(["1", "2", "?", "4", "5"]), "rooms")
    Traceback (most recent call last):
    TrainwrightError: column 'rooms' holds numbers but 1 value is not a number: '?' (row 3); ...
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from trainwright.errors import TrainwrightError, quote

Kind = Literal["numeric", "categorical"]

NUMERIC_SHARE = 0.8  # share of parseable values above which a text column is numeric
_MISSING_TEXT = {"", "nan", "na", "n/a", "null", "none"}


def _is_text(series: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _parse_text(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(numbers with NaN where missing or junk, mask of junk) for a text/object column."""
    present = series.notna()
    text = series[present].astype(str).str.strip()
    blank = text.str.lower().isin(_MISSING_TEXT)
    parsed = pd.to_numeric(text.where(~blank), errors="coerce")
    numbers = pd.Series(np.nan, index=series.index, dtype="float64")
    numbers[present] = parsed.astype("float64")
    junk = pd.Series(False, index=series.index)
    junk[present] = parsed.isna() & ~blank
    return numbers, junk


def column_kind(series: pd.Series) -> Kind:
    """``numeric`` or ``categorical``, by the rules in the module docstring."""
    if pd.api.types.is_bool_dtype(series):
        return "categorical"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    if isinstance(series.dtype, pd.CategoricalDtype) or pd.api.types.is_datetime64_any_dtype(series):
        return "categorical"
    values = series.dropna()
    if values.empty or values.map(lambda value: isinstance(value, bool)).any():
        return "categorical"
    numbers, junk = _parse_text(values)
    parsed = int(numbers.notna().sum())
    return "numeric" if parsed and parsed >= NUMERIC_SHARE * (parsed + int(junk.sum())) else "categorical"


def _examples(series: pd.Series, mask: pd.Series, limit: int = 3) -> str:
    rows = series.index[mask.to_numpy()]
    shown = ", ".join(f"{quote(series[row])} (row {row + 1})" for row in rows[:limit])  # a 50 MB cell: its first characters
    return shown + (", ..." if len(rows) > limit else "")


def numeric_values(series: pd.Series, column: str) -> np.ndarray:
    """The column as float64 with NaN for missing values; junk text or infinities are errors."""
    if pd.api.types.is_bool_dtype(series):
        raise TrainwrightError(f"column {column!r} holds true/false values where numbers were expected")
    if pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
    else:
        numbers, junk = _parse_text(series)
        if junk.any():
            count = int(junk.sum())
            raise TrainwrightError(
                f"column {column!r} holds numbers but {count} value{'s are' if count > 1 else ' is'} not a number: "
                f"{_examples(series, junk)}; fix {'them' if count > 1 else 'it'} or leave the cells empty "
                f"(empty cells are imputed), or drop the column with data.drop_columns"
            )
        values = numbers.to_numpy()
    infinite = np.isinf(values)
    if infinite.any():
        count = int(infinite.sum())
        first = int(series.index[infinite][0]) + 1
        raise TrainwrightError(
            f"column {column!r} has {count} infinite value{'s' if count > 1 else ''} (first at row {first}); "
            f"replace {'them' if count > 1 else 'it'} with finite numbers or empty cells"
        )
    return values


def category_values(series: pd.Series) -> np.ndarray:
    """The column as an object array of strings with NaN for missing values.

    Strings make every category comparable (a JSON column may mix 1 and "a") and make a value
    read back from a CSV at predict time (``"True"``) match the one seen at fit time (``True``).
    """
    missing = series.isna().to_numpy()
    values = series.astype(object).to_numpy().copy()
    values[~missing] = [str(value) for value in values[~missing]]
    values[missing] = np.nan
    return values


def coerce_column(series: pd.Series, column: str, kind: Kind) -> np.ndarray:
    return numeric_values(series, column) if kind == "numeric" else category_values(series)


def coerce_frame(frame: pd.DataFrame, kinds: dict[str, Kind]) -> pd.DataFrame:
    """A new frame of exactly the ``kinds`` columns, each coerced to its kind."""
    return pd.DataFrame(
        {column: coerce_column(frame[column], column, kind) for column, kind in kinds.items()},
        index=frame.index,
    )
