"""Column kinds and the coercion of raw values to them, the same at fit time and at predict time.

A feature column is *numeric* (float64, NaN for missing), *categorical* (Python strings, NaN for
missing) or a *date* (datetime64, NaT for missing; ``data/dates.py`` turns it into numbers). The rules:

- numbers are numeric; bools, strings and pandas categories are categorical; datetimes are dates;
- a text column is numeric when at least 80% of its non-missing values parse as numbers
  (``" 3.5"``, ``"1e3"``); the rest are then junk (``"?"``, ``"abc"``) and an error names them
  with their rows, rather than silently turning the column into a 1000-way category;
- a text column is a date when at least 80% of its non-missing values look like dates and parse
  (``2024-03-01``, ``01/03/2024``); the rest are junk, named the same way;
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

from trainwright.data.dates import looks_like_dates, parse_dates
from trainwright.errors import TrainwrightError, quote

Kind = Literal["numeric", "categorical", "date"]

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
    """``numeric``, ``categorical`` or ``date``, by the rules in the module docstring."""
    if pd.api.types.is_bool_dtype(series):
        return "categorical"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "date"
    if isinstance(series.dtype, pd.CategoricalDtype):
        return "categorical"
    values = series.dropna()
    if values.empty or values.map(lambda value: isinstance(value, bool)).any():
        return "categorical"
    numbers, junk = _parse_text(values)
    parsed = int(numbers.notna().sum())
    if parsed and parsed >= NUMERIC_SHARE * (parsed + int(junk.sum())):
        return "numeric"
    return "date" if looks_like_dates(values) else "categorical"


def _plain(value: object) -> object:
    """A cell as plain Python, so a message says 3.5, not np.float64(3.5)."""
    return value.item() if isinstance(value, np.generic) else value


def _examples(series: pd.Series, mask: pd.Series, limit: int = 3) -> str:
    rows = series.index[mask.to_numpy()]
    shown = ", ".join(f"{quote(_plain(series[row]))} (row {row + 1})" for row in rows[:limit])
    return shown + (", ..." if len(rows) > limit else "")


def numeric_values(series: pd.Series, column: str, training: bool = True) -> np.ndarray:
    """The column as float64 with NaN for missing values; junk text or infinities are errors
    (``training``: the message may suggest a training option; at prediction it speaks of the data only)."""
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
                f"(empty cells are imputed)" + (", or drop the column with data.drop_columns" if training else "")
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


def date_values(series: pd.Series, column: str) -> pd.Series:
    """The column as datetimes with NaT for missing values; text that is not a date is an error."""
    times = parse_dates(series)
    if not pd.api.types.is_datetime64_any_dtype(series):
        present = series.notna() & ~series.astype(str).str.strip().str.lower().isin(_MISSING_TEXT)
        junk = present & times.isna()
        if junk.any():
            count = int(junk.sum())
            raise TrainwrightError(
                f"column {column!r} holds dates but {count} value{'s are' if count > 1 else ' is'} not a date: "
                f"{_examples(series, junk)}; fix {'them' if count > 1 else 'it'} or leave the cells empty"
            )
    return times


def coerce_column(series: pd.Series, column: str, kind: Kind, training: bool = True) -> np.ndarray | pd.Series:
    if kind == "numeric":
        return numeric_values(series, column, training)
    return date_values(series, column) if kind == "date" else category_values(series)


def coerce_frame(frame: pd.DataFrame, kinds: dict[str, Kind], training: bool = True) -> pd.DataFrame:
    """A new frame of exactly the ``kinds`` columns, each coerced to its kind."""
    return pd.DataFrame(
        {column: coerce_column(frame[column], column, kind, training) for column, kind in kinds.items()},
        index=frame.index,
    )
