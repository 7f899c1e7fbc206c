"""The time axis of a series: parsing times, their frequency (on the calendar, as pandas infers it),
gaps, the times ahead, and the season a frequency suggests.

Months, quarters and years are regular steps of unequal length: a monthly series steps 28 to 31
days at a time. pandas' frequency inference (``pd.infer_freq``) recognises them, at the start or
the end of the period, beside fixed steps (daily, hourly, every 15 minutes) and business days, so
a monthly series is "monthly", not "a step of 744h with gaps". Numeric time columns step by one
fixed number.

Example:
    >>> times, kind = parse_times(pd.Series(["2024-01-01", "2024-02-01", "2024-03-01"]), "month")
    >>> frequency = infer_frequency(times, kind, "month", pd.Series(["2024-01-01", "2024-02-01", "2024-03-01"]))
    >>> frequency.alias, frequency.text, frequency.season
    ('MS', 'monthly (month start)', 12)
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from trainwright.errors import TrainwrightError

# Offset class -> (the word for one step, its anchor, the season in steps: a year, or a week for days and a day for hours).
_CALENDAR = {
    "Day": ("daily", "", 7),
    "BusinessDay": ("business daily", "", 5),
    "Week": ("weekly", "", 52),
    "MonthBegin": ("monthly", "month start", 12),
    "MonthEnd": ("monthly", "month end", 12),
    "BusinessMonthBegin": ("monthly", "first business day", 12),
    "BusinessMonthEnd": ("monthly", "last business day", 12),
    "SemiMonthBegin": ("twice monthly", "", 24),
    "SemiMonthEnd": ("twice monthly", "", 24),
    "QuarterBegin": ("quarterly", "quarter start", 4),
    "QuarterEnd": ("quarterly", "quarter end", 4),
    "BusinessQuarterBegin": ("quarterly", "first business day", 4),
    "BusinessQuarterEnd": ("quarterly", "last business day", 4),
    "YearBegin": ("yearly", "year start", None),
    "YearEnd": ("yearly", "year end", None),
    "BusinessYearBegin": ("yearly", "first business day", None),
    "BusinessYearEnd": ("yearly", "last business day", None),
    "Hour": ("hourly", "", 24),
    "Minute": ("every minute", "", None),
    "Second": ("every second", "", None),
}
_UNITS = {"Day": "days", "BusinessDay": "business days", "Week": "weeks", "MonthBegin": "months", "MonthEnd": "months",
          "QuarterBegin": "quarters", "QuarterEnd": "quarters", "YearBegin": "years", "YearEnd": "years", "Hour": "hours",
          "Minute": "minutes", "Second": "seconds"}
_WEEKDAYS = {"MON": "Mondays", "TUE": "Tuesdays", "WED": "Wednesdays", "THU": "Thursdays", "FRI": "Fridays",
             "SAT": "Saturdays", "SUN": "Sundays"}
# The season a calendar frequency suggests, in words.
SEASON_TEXT = {7: "a week of daily rows", 5: "a week of business days", 52: "a year of weekly rows",
               12: "a year of monthly rows", 24: "a day of hourly rows", 4: "a year of quarterly rows"}


@dataclass(frozen=True)
class Frequency:
    """How far apart the rows are: a pandas offset alias for datetimes (``MS``, ``QE-DEC``, ``W-SUN``,
    ``D``, ``h``, ``15min``), or a fixed numeric ``step`` for numeric times."""

    alias: str | None
    step: float = 0.0  # numeric times: the step; datetimes: nanoseconds of a fixed step (0 for months and longer)

    @property
    def offset(self):
        return to_offset(self.alias) if self.alias else None

    @property
    def text(self) -> str:
        """``monthly (month start)``, ``weekly (Sundays)``, ``every 15 minutes``, ``every 0.5`` (numeric times)."""
        if self.alias is None:
            return f"every {self.step:g}"
        offset = self.offset
        kind = type(offset).__name__
        word, anchor, _ = _CALENDAR.get(kind, (None, "", None))
        if word is None:  # an offset without a word of its own: its alias
            return f"every {self.alias}"
        if kind == "Week" and getattr(offset, "weekday", None) is not None:
            anchor = _WEEKDAYS[self.alias.split("-")[-1]] if "-" in self.alias else ""
        if offset.n != 1:
            word = f"every {offset.n} {_UNITS.get(kind, kind.lower())}"
        return f"{word} ({anchor})" if anchor else word

    @property
    def season(self) -> int | None:
        """The season the calendar suggests, in rows: 12 for monthly, 4 quarterly, 52 weekly, 7 daily, 24 hourly."""
        if self.alias is None:
            return None
        offset = self.offset
        season = _CALENDAR.get(type(offset).__name__, (None, "", None))[2]
        if season and offset.n == 1:
            return season
        day = 86_400e9
        if 0 < self.step < day and day % self.step == 0:  # under a day: a day of rows (96 for every 15 minutes)
            return int(day // self.step)
        return None

    def ahead(self, last: float, horizon: int) -> np.ndarray:
        """The ``horizon`` times after ``last`` (int64 nanoseconds, or numbers)."""
        if self.alias is None:
            return last + self.step * np.arange(1, horizon + 1)
        times = pd.date_range(pd.Timestamp(int(last)), periods=horizon + 1, freq=self.alias)[1:]
        return times.to_numpy(dtype="datetime64[ns]").astype(np.int64)


def parse_times(values: pd.Series, column: str) -> tuple[np.ndarray, str]:
    """(times as int64 nanoseconds or float steps, "datetime" | "numeric"); unparsable is an error."""
    if values.isna().any():
        raise TrainwrightError(f"time column {column!r} has {int(values.isna().sum())} missing values; every row needs a time")
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=np.float64), "numeric"
    try:
        times = pd.to_datetime(values, format="mixed")
    except (ValueError, TypeError) as error:
        raise TrainwrightError(f"time column {column!r} does not hold times ({' '.join(str(error).split())[:120]})") from None
    return times.to_numpy(dtype="datetime64[ns]").astype(np.int64), "datetime"


def _order(times: np.ndarray, column: str, shown: pd.Series) -> None:
    """Duplicate or unsorted times are errors naming the rows."""
    steps = np.diff(times)
    if (steps == 0).any():
        row = int(np.flatnonzero(steps == 0)[0]) + 1
        raise TrainwrightError(f"time column {column!r} has duplicate times ({shown.iloc[row]} at rows {row} and {row + 1}); "
                               f"keep one row per time (aggregate or drop the duplicates)")
    if (steps < 0).any():
        row = int(np.flatnonzero(steps < 0)[0]) + 1
        raise TrainwrightError(f"time column {column!r} is not sorted ({shown.iloc[row]} at row {row + 1} comes after "
                               f"{shown.iloc[row - 1]}); sort the table by time first")


def _fixed_alias(step_ns: float) -> str:
    return to_offset(pd.Timedelta(int(step_ns), unit="ns")).freqstr


def dominant_frequency(times: np.ndarray, kind: str) -> Frequency:
    """The frequency most consecutive rows follow (gaps and odd rows aside)."""
    if kind == "numeric":
        values, counts = np.unique(np.diff(times), return_counts=True)
        return Frequency(None, float(values[counts.argmax()]))
    index = pd.DatetimeIndex(times.astype("datetime64[ns]"))
    alias = _infer(index) if len(index) >= 3 else None
    if alias is None:
        # Each run of three rows votes for the frequency it shows; a gap spoils only the runs around it.
        votes = Counter(_infer(index[i : i + 3]) for i in range(0, max(len(index) - 2, 0), max(1, len(index) // 500)))
        votes.pop(None, None)
        if votes:
            alias = votes.most_common(1)[0][0]
        else:
            values, counts = np.unique(np.diff(times), return_counts=True)
            alias = _fixed_alias(values[counts.argmax()])
    offset = to_offset(alias)
    fixed = pd.Timedelta(offset).value if _is_fixed(offset) else 0
    return Frequency(offset.freqstr, float(fixed))


def _infer(index: pd.DatetimeIndex) -> str | None:
    """pandas' inferred frequency as an alias (pandas 4 returns an offset; 2 and 3 a string)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*infer_freq.*")
        freq = pd.infer_freq(index)
    return freq if freq is None or isinstance(freq, str) else freq.freqstr


def _is_fixed(offset) -> bool:
    try:
        pd.Timedelta(offset)
    except (ValueError, TypeError):
        return False
    return True


def grid(times: np.ndarray, frequency: Frequency) -> np.ndarray:
    """Every time from the first to the last row on the frequency (int64 ns or numbers)."""
    if frequency.alias is None:
        count = int(np.rint((times[-1] - times[0]) / frequency.step)) + 1
        return times[0] + frequency.step * np.arange(count)
    dates = pd.date_range(pd.Timestamp(int(times[0])), pd.Timestamp(int(times[-1])), freq=frequency.alias)
    return dates.to_numpy(dtype="datetime64[ns]").astype(np.int64)


def infer_frequency(times: np.ndarray, kind: str, column: str, shown: pd.Series, fill: bool = False) -> Frequency:
    """The rows' frequency; duplicate or unsorted times, and gaps (unless ``fill``: the caller adds the
    missing times), are one-line errors. Rows off the frequency's grid are errors either way."""
    if len(times) < 2:
        raise TrainwrightError(f"a series needs at least 2 rows to have a time step; it has {len(times)}")
    _order(times, column, shown)
    frequency = dominant_frequency(times, kind)
    full = grid(times, frequency)
    on_grid = np.isin(times, full) if frequency.alias else np.isclose((times - times[0]) / frequency.step,
                                                                      np.round((times - times[0]) / frequency.step))
    if len(full) == len(times) and on_grid.all():
        return frequency
    if on_grid.all() and fill:
        return frequency
    expected = pd.Series(full).isin(times) if on_grid.all() else None
    if not on_grid.all():
        row = max(int(np.flatnonzero(~on_grid)[0]), 1)
    else:
        jumps = np.diff(np.searchsorted(full, times))
        row = int(np.flatnonzero(jumps > 1)[0]) + 1
    where = f"{shown.iloc[row - 1]} -> {shown.iloc[row]} (rows {row}-{row + 1})"
    if expected is not None:
        missing, skipped = int((~expected).sum()), int(jumps[row - 1]) - 1
        raise TrainwrightError(
            f"the series has gaps: its rows are {frequency.text}, but {where} skips {skipped} time{'s' if skipped > 1 else ''} "
            f"({missing} missing in all); set data.series.fill: interpolate (or ffill) to add the missing times and fill "
            "their values, or resample the series yourself"
        )
    raise TrainwrightError(
        f"the rows are not evenly spaced: most are {frequency.text}, but {where} is off that step; "
        "resample the series to one step"
    )
