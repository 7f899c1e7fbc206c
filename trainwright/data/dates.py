"""Dates in a table: recognising a date column, and the numeric features a model can use from it.

A column is a date when its dtype is a datetime, or when at least 80% of its non-missing text
values look like dates (``2024-03-01``, ``2024-03-01 12:30``, ``01/03/2024``, ``2024/03/01``) and
parse. A date becomes numbers: the year, the month and the day of the week as points on a circle
(sine and cosine, so December sits next to January and Sunday next to Monday), the elapsed time in
days since 1970-01-01, and, when the training rows have a time of day, the hour on a circle too.
Which parts a column gets is decided on the training rows and saved, so prediction makes the same.

Example:
    >>> date_features(pd.Series(pd.to_datetime(["2024-01-01", "2024-07-01"])), "day", ["year", "month", "weekday", "days"])
       day.year  day.month_sin  day.month_cos  day.weekday_sin  day.weekday_cos  day.days
    0    2024.0            0.0            1.0              0.0              1.0   19723.0
    1    2024.0           ...
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

DATE_SHARE = 0.8  # share of non-missing values that must look like dates and parse
_DATE = re.compile(
    r"^\s*(\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?"
    r"|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}( \d{1,2}:\d{2}(:\d{2})?)?"
    r"|\d{4}/\d{1,2}/\d{1,2}( \d{1,2}:\d{2}(:\d{2})?)?)\s*$"
)
PARTS = ("year", "month", "weekday", "days", "hour")
# What each part becomes, for console lines and data.json.
PART_TEXT = {"year": "year", "month": "month", "weekday": "day of week", "days": "days since 1970-01-01", "hour": "hour"}
_CYCLES = {"month": 12, "weekday": 7, "hour": 24}


def looks_like_dates(values: pd.Series) -> bool:
    """Text values (non-missing) of which at least 80% look like dates and parse."""
    text = values.astype(str)
    shaped = text.str.match(_DATE)
    if shaped.sum() < DATE_SHARE * len(text) or not shaped.any():
        return False
    parsed = parse_dates(text[shaped])
    return bool(parsed.notna().sum() >= DATE_SHARE * len(text))


def parse_dates(values: pd.Series) -> pd.Series:
    """Datetimes (naive, UTC for values with a zone); NaT where a value is missing or not a date."""
    if pd.api.types.is_datetime64_any_dtype(values):
        times = values
    else:
        present = values.notna()
        text = values.where(present).astype(object)
        text[present] = values[present].astype(str).str.strip()
        times = pd.to_datetime(text, format="mixed", errors="coerce", utc=True)
    if getattr(times.dt, "tz", None) is not None:
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return times


def date_parts(times: pd.Series) -> list[str]:
    """The parts a date column gets: year, month, day of week, days; the hour when any time has one."""
    present = times.dropna()
    timed = bool(len(present)) and bool((present != present.dt.normalize()).any())
    return ["year", "month", "weekday", "days", *(["hour"] if timed else [])]


def feature_names(column: str, parts: list[str]) -> list[str]:
    """The numeric columns a date column becomes: ``column.year``, ``column.month_sin``, ..."""
    names = []
    for part in parts:
        names += [f"{column}.{part}_sin", f"{column}.{part}_cos"] if part in _CYCLES else [f"{column}.{part}"]
    return names


def date_features(times: pd.Series, column: str, parts: list[str]) -> pd.DataFrame:
    """The date column as float64 numbers (NaN where the date is missing), named by ``feature_names``."""
    values: dict[str, np.ndarray] = {}
    for part in parts:
        if part == "year":
            values[f"{column}.year"] = times.dt.year.to_numpy(dtype="float64", na_value=np.nan)
        elif part == "days":
            # Days since 1970-01-01 as a float: the elapsed time, with the time of day as a fraction.
            ns = times.to_numpy(dtype="datetime64[ns]").astype("int64").astype("float64")
            values[f"{column}.days"] = np.where(times.isna().to_numpy(), np.nan, ns / 86_400e9)
        else:
            position = {
                "month": times.dt.month - 1,
                "weekday": times.dt.day_of_week,
                "hour": times.dt.hour + times.dt.minute / 60,
            }[part].to_numpy(dtype="float64", na_value=np.nan)
            angle = 2 * np.pi * position / _CYCLES[part]
            values[f"{column}.{part}_sin"], values[f"{column}.{part}_cos"] = np.sin(angle), np.cos(angle)
    return pd.DataFrame(values, index=times.index)
