"""Time series, from a table to sliding windows: check, split by time, scale on train, window.

The table has a time column and one or more numeric value columns; the target is the column to
forecast (always the first model input). Rows must be sorted by time, evenly spaced, without
duplicates or missing values: anything else is a one-line error, never silently repaired. The
rows are split chronologically (train, then validation, then test: never shuffled across
time); the per-column mean and standard deviation are fitted on the training rows only.

A window is ``lookback`` rows of every value column (the input) followed by the next ``horizon``
values of the target (the forecast); windows start every ``stride`` rows. A window belongs to the
part its forecast lies in, and its input may reach back into the part before: that history is
known at forecast time, and no target is ever seen by two parts.

Example:
    >>> data = prepare_series(DataConfig(source="seasonal", window={"lookback": 48, "horizon": 12}))
    >>> data.x_train.shape[1:], data.y_train.shape[1:]
    (torch.Size([48, 1]), torch.Size([12]))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from trainwright.config import DataConfig, WindowConfig
from trainwright.data.sources import load_sequence_table, read_table
from trainwright.data.split import Split, SplitData, fractions_text
from trainwright.errors import TrainwrightError, quote

__all__ = ["SeriesData", "SeriesPreprocessor", "SeriesRows", "load_series", "prepare_series"]

FORMAT = 1  # version of preprocessor.json for series


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


def check_times(times: np.ndarray, column: str, shown: pd.Series) -> float:
    """The one time step between rows; duplicate, unsorted or unevenly spaced times are errors."""
    if len(times) < 2:
        raise TrainwrightError(f"a series needs at least 2 rows to have a time step; it has {len(times)}")
    steps = np.diff(times)
    if (steps == 0).any():
        row = int(np.flatnonzero(steps == 0)[0]) + 1
        raise TrainwrightError(f"time column {column!r} has duplicate times ({shown.iloc[row]} at rows {row} and {row + 1}); "
                               f"keep one row per time (aggregate or drop the duplicates)")
    if (steps < 0).any():
        row = int(np.flatnonzero(steps < 0)[0]) + 1
        raise TrainwrightError(f"time column {column!r} is not sorted ({shown.iloc[row]} at row {row + 1} comes after "
                               f"{shown.iloc[row - 1]}); sort the table by time first")
    values, counts = np.unique(steps, return_counts=True)
    step = values[counts.argmax()]
    if len(values) > 1:
        row = int(np.flatnonzero(steps != step)[0]) + 1
        raise TrainwrightError(
            f"the series has gaps: the step between rows is {_step_text(step, shown)} but {shown.iloc[row - 1]} "
            f"-> {shown.iloc[row]} (rows {row}-{row + 1}) differs; fill or resample the series to an even step"
        )
    return float(step)


def _step_text(step: float, shown: pd.Series) -> str:
    """'1h', '15min', '2D' for times; the number for numeric time steps."""
    if pd.api.types.is_numeric_dtype(shown):
        return f"{step:g}"
    text = pd.tseries.frequencies.to_offset(pd.Timedelta(int(step), unit="ns")).freqstr
    return text if text[0].isdigit() else f"1{text}"


def value_matrix(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The value columns as float64 (T, F); non-numeric or missing values are errors naming a row."""
    out = np.empty((len(frame), len(columns)))
    for j, column in enumerate(columns):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.fillna(0))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise TrainwrightError(
                f"value column {column!r} has {int(bad.sum())} missing or non-numeric values (first at row {row + 1}: "
                f"{quote(frame[column].iloc[row])}); a series needs a number in every row"
            )
        out[:, j] = values.to_numpy(dtype=np.float64)
    return out


def windows(values: np.ndarray, lookback: int, horizon: int, stride: int, first: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows whose forecast lies in rows [first, end): inputs (N, lookback, F), targets (N, horizon) of column 0."""
    starts = np.arange(max(first - lookback, 0), end - lookback - horizon + 1, stride)
    starts = starts[starts + lookback >= first]
    idx = starts[:, None] + np.arange(lookback)[None, :]  # (N, lookback)
    out = starts[:, None] + lookback + np.arange(horizon)[None, :]  # (N, horizon)
    return values[idx], values[out, 0]


def seasonal_period(target: np.ndarray, longest: int) -> int | None:
    """The lag (2..longest) with the strongest autocorrelation of the differenced series, if clear (> 0.3)."""
    diffs = np.diff(target)
    diffs = diffs - diffs.mean()
    if len(diffs) < 4 or diffs.std() == 0 or longest < 2:
        return None
    denom = (diffs**2).sum()
    acf = [float((diffs[lag:] * diffs[:-lag]).sum() / denom) for lag in range(2, min(longest, len(diffs) // 2) + 1)]
    if not acf or max(acf) <= 0.3:
        return None
    return int(np.argmax(acf)) + 2


class SeriesPreprocessor:
    """Columns, scaling (fitted on the training rows) and window size of a forecasting model.

    ``inputs(data)`` takes a table of the same columns and forecasts from its last ``lookback``
    rows (``prediction_frame`` gives the next ``horizon`` times and values).

    Example:
        >>> pre = SeriesPreprocessor.load(Path("runs/sensor-gru-20260101-120000"))
        >>> tail, x = pre.inputs("latest.csv")
        >>> x.shape
        (1, 48, 2)
    """

    modality = "series"
    task = "regression"
    classes: ClassVar[list] = []

    def __init__(
        self,
        *,
        target: str,
        time_column: str,
        columns: list[str],
        mean: list[float],
        std: list[float],
        lookback: int,
        horizon: int,
        step: float,
        time_kind: str,
    ) -> None:
        self.target, self.time_column, self.columns = target, time_column, list(columns)  # columns[0] is the target
        self.mean, self.std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
        self.lookback, self.horizon, self.step, self.time_kind = lookback, horizon, step, time_kind

    @property
    def n_outputs(self) -> int:
        return self.horizon

    @property
    def input_shape(self) -> tuple[int, int]:
        return (self.lookback, len(self.columns))

    def scale(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.std).astype(np.float32)

    def encode_target(self, y: pd.Series) -> np.ndarray:
        raise TrainwrightError(
            "evaluate scores tables, images and texts; a forecaster's test metrics (MAE, RMSE, MAPE on the "
            "test windows, beside the naive forecasts) are in its metrics.json"
        )

    def decode_target(self, values: np.ndarray) -> np.ndarray:
        """Scaled target values (any shape) -> original units, flattened (N * horizon,)."""
        return np.asarray(values, dtype=np.float64).reshape(-1) * self.std[0] + self.mean[0]

    def inputs(self, data: pd.DataFrame | str | Path) -> tuple[pd.DataFrame, np.ndarray]:
        """(the last ``lookback`` rows, their window float32 (1, lookback, F)), checked as in training."""
        frame = data.reset_index(drop=True) if isinstance(data, pd.DataFrame) else read_table(data)
        absent = [c for c in (self.time_column, *self.columns) if c not in frame.columns]
        if absent:
            raise TrainwrightError(
                f"the data lack column{'s' if len(absent) > 1 else ''} {', '.join(map(repr, absent))} that the model was "
                f"trained on; it needs {self.time_column!r} and {', '.join(map(repr, self.columns))}"
            )
        if len(frame) < self.lookback:
            raise TrainwrightError(
                f"the model forecasts from the last {self.lookback} rows, but the data have {len(frame)}; give at least "
                f"{self.lookback}"
            )
        tail = frame.iloc[-self.lookback :].reset_index(drop=True)
        times, _ = parse_times(tail[self.time_column], self.time_column)
        if self.lookback > 1 and check_times(times, self.time_column, tail[self.time_column]) != self.step:
            raise TrainwrightError(
                f"the rows are {_step_text(np.diff(times)[0], tail[self.time_column])} apart, but the model was trained on "
                f"a step of {_step_text(self.step, tail[self.time_column])}; resample the series"
            )
        return tail, self.scale(value_matrix(tail, self.columns))[None]  # (1, lookback, F)

    def prediction_frame(self, tail: pd.DataFrame, outputs: np.ndarray) -> pd.DataFrame:
        """The next ``horizon`` times after the tail and the forecast of the target at each."""
        times, _ = parse_times(tail[self.time_column], self.time_column)
        ahead = times[-1] + self.step * np.arange(1, self.horizon + 1)
        if self.time_kind == "datetime":
            ahead = pd.to_datetime(ahead.astype(np.int64))
        return pd.DataFrame(
            {self.time_column: ahead, "step": np.arange(1, self.horizon + 1), "prediction": self.decode_target(outputs[-1])}
        )

    def facts(self) -> dict:
        return {
            "format": FORMAT,
            "modality": "series",
            "target": self.target,
            "task": self.task,
            "time_column": self.time_column,
            "columns": self.columns,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "lookback": self.lookback,
            "horizon": self.horizon,
            "step": self.step,
            "time_kind": self.time_kind,
        }

    def files(self) -> dict[str, str | bytes]:
        """What a run directory keeps: ``preprocessor.json`` (the scaler is plain JSON numbers)."""
        return {"preprocessor.json": json.dumps(self.facts(), indent=2) + "\n"}

    @classmethod
    def load(cls, directory: Path) -> SeriesPreprocessor:
        try:
            f = json.loads((Path(directory) / "preprocessor.json").read_text(encoding="utf-8"))
            return cls(
                target=f["target"],
                time_column=f["time_column"],
                columns=f["columns"],
                mean=f["mean"],
                std=f["std"],
                lookback=int(f["lookback"]),
                horizon=int(f["horizon"]),
                step=float(f["step"]),
                time_kind=f["time_kind"],
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise TrainwrightError(
                f"{directory} is not a trainwright run (or is damaged): preprocessor.json is unreadable "
                f"({type(error).__name__}: {error})"
            ) from None


@dataclass(frozen=True)
class SeriesData(SplitData):
    """x: float32 (N, lookback, F) windows, scaled, column 0 the target; y: float32 (N, horizon), the scaled target ahead."""

    preprocessor: SeriesPreprocessor
    season: int | None  # the seasonal-naive baseline's period in rows, or None

    def report_lines(self) -> list[str]:
        s, w = self.summary, self.summary["window"]
        lines = [
            (
                f"{self.name}: {s['rows']} rows, time {s['time_column']!r} from {s['start']} to {s['end']} (step {s['step']}); "
                f"forecasting {s['target']!r} from {len(s['columns'])} value column{'s' if len(s['columns']) > 1 else ''}"
            ),
            (
                f"windows: {w['lookback']} rows in -> {w['horizon']} ahead, stride {w['stride']}; chronological split "
                f"{s['split']['fractions']}: "
                f"train {s['split']['train']}, val {s['split']['val']}, test {s['split']['test']} windows; scaled on the "
                "training rows only"
            ),
        ]
        return lines + s["notes"]


@dataclass(frozen=True, eq=False)
class SeriesRows:
    """A series loaded and checked, not yet split: ``prepare(split)`` scales on ``split.train``'s rows only.

    A split of a series is by time: each part is a contiguous run of rows, train before validation
    before test (``split()``); forward-chaining folds are splits of the same kind.
    """

    cfg: DataConfig
    frame: pd.DataFrame
    name: str
    target: str
    time_column: str
    columns: list[str]
    times: np.ndarray
    time_kind: str
    step: float
    values: np.ndarray  # (T, F) float64, the target first

    def __len__(self) -> int:
        return len(self.values)

    strata = None  # a series is never stratified

    def split(self) -> Split:
        """Chronological: the first ``data.split.train`` share of the rows, then validation, then test."""
        cfg, n = self.cfg, len(self.values)
        train_end = round(n * cfg.split.train)
        val_end = train_end + round(n * cfg.split.val)
        train, val, test = np.arange(0, train_end), np.arange(train_end, val_end), np.arange(val_end, n)
        notes = []
        if cfg.split.val == 0:
            val = train
            notes.append("data.split.val is 0: validation and early stopping use the training windows")
        if cfg.split.test == 0:
            test = val
            notes.append("data.split.test is 0: test metrics use the validation windows")
        held_out = bool(cfg.split.val or cfg.split.test)  # both 0: the metrics are on the training windows
        return Split(train, val, test, held_out=held_out, stratified=False, notes=tuple(notes))

    def prepare(self, split: Split) -> SeriesData:
        import torch  # lazy, a heavy dependency: predicting from an export uses this module without torch

        cfg, w, n = self.cfg, self.cfg.window, len(self.values)
        bounds = {"train": _bounds(split.train)}
        bounds["val"] = (bounds["train"][1],) * 2 if split.val is split.train else _bounds(split.val)
        bounds["test"] = (bounds["val"][1],) * 2 if split.test is split.val else _bounds(split.test)
        train_end = bounds["train"][1]
        mean, std = self.values[:train_end].mean(0), self.values[:train_end].std(0)
        std = np.where(std > 0, std, 1.0)  # a constant training column keeps unit scale
        pre = SeriesPreprocessor(
            target=self.target,
            time_column=self.time_column,
            columns=self.columns,
            mean=mean.tolist(),
            std=std.tolist(),
            lookback=w.lookback,
            horizon=w.horizon,
            step=self.step,
            time_kind=self.time_kind,
        )
        scaled = pre.scale(self.values)
        parts = {part: windows(scaled, w.lookback, w.horizon, w.stride, *bounds[part]) for part in bounds}
        if split.val is split.train:
            parts["val"] = parts["train"]
        if split.test is split.val:
            parts["test"] = parts["val"]
        for part, (x, _) in parts.items():
            if len(x) == 0:
                first, end = bounds[part]
                raise TrainwrightError(
                    f"too few rows for one window: the {part} part has rows {first + 1}-{end} of {n}, but a window needs "
                    f"lookback {w.lookback} + horizon {w.horizon} rows (the forecast inside the part); lower "
                    "data.window.lookback/horizon or add rows"
                )
        notes = list(split.notes)
        season = _season(w, self.values[:train_end, 0])
        if season is None:
            notes.append(
                "no clear seasonal period within the lookback: the seasonal-naive baseline is left out (set data.window.season)"
            )
        shown = self.frame[self.time_column]
        summary = {
            "source": cfg.source,
            "name": self.name,
            "modality": "series",
            "target": self.target,
            "task": "regression",
            "time_column": self.time_column,
            "columns": self.columns,
            "rows": n,
            "start": str(shown.iloc[0]),
            "end": str(shown.iloc[-1]),
            "step": _step_text(self.step, shown),
            "window": {"lookback": w.lookback, "horizon": w.horizon, "stride": w.stride, "season": season},
            "split": {
                "fractions": fractions_text(cfg.split),
                "chronological": True,
                "held_out": split.held_out,
                "rows": {part: list(b) for part, b in bounds.items()},
                **{part: len(parts[part][0]) for part in parts},
            },
            "scaling": {"mean": pre.mean.tolist(), "std": pre.std.tolist()},
            "notes": notes,
        }
        tensors = {part: (torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))) for part, (x, y) in parts.items()}
        return SeriesData(
            *tensors["train"], *tensors["val"], *tensors["test"], pre, "regression", self.name, split.held_out, summary, season
        )


def _bounds(rows: np.ndarray) -> tuple[int, int]:
    """(first, end) of a contiguous run of row positions."""
    if len(rows) and not np.array_equal(rows, np.arange(rows[0], rows[0] + len(rows))):
        raise ValueError("a part of a series split must be a contiguous run of rows")
    return (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, 0)


def load_series(cfg: DataConfig) -> SeriesRows:
    """Load ``cfg.source`` and check its times and values (sorted, evenly spaced, complete)."""
    if cfg.classes is not None or cfg.train_fraction < 1:
        key = "classes" if cfg.classes is not None else "train_fraction"
        raise TrainwrightError(
            f"data.{key} keeps rows of classes; a series is split by time only: remove data.{key} "
            "(set data.split.train to train on a shorter history)"
        )
    frame, default_target, time_column, name = load_sequence_table(cfg.source, cfg.time_column, "time", cfg.encoding)
    target = cfg.target or default_target
    listed = ", ".join(map(str, frame.columns))
    if target is None or target not in frame.columns or target == time_column:
        raise TrainwrightError(
            f"data.target {target!r} is not a value column of {name}; name the column to forecast; columns are: {listed}"
        )
    others = cfg.features if cfg.features is not None else [c for c in frame.columns if c not in (time_column, target)]
    absent = [c for c in others if c not in frame.columns]
    if absent:
        raise TrainwrightError(f"data.features names {', '.join(map(repr, absent))}, not in {name}; columns are: {listed}")
    columns = [target, *(c for c in others if c not in (time_column, target) and c not in cfg.drop_columns)]
    times, time_kind = parse_times(frame[time_column], time_column)
    step = check_times(times, time_column, frame[time_column])
    return SeriesRows(cfg, frame, name, target, time_column, columns, times, time_kind, step, value_matrix(frame, columns))


def prepare_series(cfg: DataConfig) -> SeriesData:
    """Load, check, split by time, scale on train and window ``cfg.source``."""
    rows = load_series(cfg)
    return rows.prepare(rows.split())


def _season(w: WindowConfig, train_target: np.ndarray) -> int | None:
    if w.season != "auto":
        if w.season > w.lookback:
            raise TrainwrightError(
                f"data.window.season = {w.season} is longer than the lookback {w.lookback}; the seasonal-naive "
                f"forecast needs one season of history in the window"
            )
        return int(w.season)
    return seasonal_period(train_target, w.lookback)
