"""Time series, from a table to sliding windows: check, split by time, scale on train, window.

The table has a time column and one or more numeric value columns; the target is the column to
forecast (always the first model input). Rows must be sorted by time, without duplicates, one
step of their frequency apart (a calendar frequency counts: months, quarters, weeks,
``data/calendar.py``), and complete: anything else is a one-line error, never silently repaired,
unless ``data.series.fill`` asks to add the missing times and fill missing values (counted and
printed). The season is searched over the training part, independently of the lookback. The
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
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from trainwright.config import DataConfig, WindowConfig
from trainwright.data.calendar import SEASON_TEXT, Frequency, dominant_frequency, grid, infer_frequency, parse_times
from trainwright.data.sources import load_sequence_table, read_table
from trainwright.data.split import Split, SplitData, fractions_text
from trainwright.errors import TrainwrightError, quote

if TYPE_CHECKING:  # torch loads lazily: predicting from an export uses this module without it
    import torch

__all__ = ["SeriesData", "SeriesPreprocessor", "SeriesRows", "load_series", "parse_times", "prepare_series"]

FORMAT = 1  # version of preprocessor.json for series
SEASON_ACF = 0.3  # a season is a peak of the training part's autocorrelation above this


def _shown(value: object) -> str:
    """A cell for a message: ``empty`` for a missing value, plain Python for numpy scalars."""
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return "empty"
    return quote(value.item() if isinstance(value, np.generic) else value)  # a 50 MB cell: its first characters


def value_matrix(frame: pd.DataFrame, columns: list[str], fill: str = "none", training: bool = True) -> tuple[np.ndarray, dict]:
    """The value columns as float64 (T, F) and the missing values filled per column (``fill``:
    interpolate | ffill); non-numeric values, and missing ones without ``fill``, are errors naming a row."""
    out, filled = np.empty((len(frame), len(columns))), {}
    for j, column in enumerate(columns):
        raw = frame[column]
        values = pd.to_numeric(raw, errors="coerce")
        junk = values.isna() & raw.notna() & ~raw.astype(str).str.strip().str.lower().isin(["", "nan", "na", "n/a", "null"])
        bad = junk | ~np.isfinite(values.fillna(0))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise TrainwrightError(
                f"value column {column!r} has {int(bad.sum())} non-numeric values (first at row {row + 1}: "
                f"{_shown(raw.iloc[row])}); a series needs a number in every row"
            )
        missing = values.isna()
        if missing.any() and fill == "none":
            row = int(np.flatnonzero(missing.to_numpy())[0])
            fix = ("set data.series.fill: interpolate (straight lines between neighbours) or ffill (repeat the last value), "
                   "or fill them yourself") if training else "fill them"
            raise TrainwrightError(
                f"value column {column!r} has {int(missing.sum())} missing value{'s' if missing.sum() > 1 else ''} "
                f"(first at row {row + 1}); {fix}"
            )
        if missing.any():
            filled[column] = int(missing.sum())
            values = values.interpolate(limit_direction="both") if fill == "interpolate" else values.ffill().bfill()
        out[:, j] = values.to_numpy(dtype=np.float64)
    return out, filled


def windows(values: np.ndarray, lookback: int, horizon: int, stride: int, first: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows whose forecast lies in rows [first, end): inputs (N, lookback, F), targets (N, horizon) of column 0."""
    starts = window_starts(lookback, horizon, stride, first, end)
    idx = starts[:, None] + np.arange(lookback)[None, :]  # (N, lookback)
    out = starts[:, None] + lookback + np.arange(horizon)[None, :]  # (N, horizon)
    return values[idx], values[out, 0]


def window_starts(lookback: int, horizon: int, stride: int, first: int, end: int) -> np.ndarray:
    """The first input row of each window whose forecast lies in rows [first, end)."""
    starts = np.arange(max(first - lookback, 0), end - lookback - horizon + 1, stride)
    return starts[starts + lookback >= first]


def autocorrelation(values: np.ndarray) -> np.ndarray:
    """The autocorrelation of ``values`` at lags 0..len-1 (FFT, O(n log n))."""
    x = values - values.mean()
    spectrum = np.fft.rfft(x, 2 * len(x))
    acf = np.fft.irfft(spectrum * np.conj(spectrum))[: len(x)]
    return acf / acf[0] if acf[0] > 0 else np.zeros(len(x))


def seasonal_period(target: np.ndarray, suggested: int | None = None) -> tuple[int | None, float | None]:
    """(season in rows, its autocorrelation) of a training part, or (None, None) when there is no clear one.

    The series, less a quadratic trend, is autocorrelated with itself; a season is a peak (a local
    maximum) of that autocorrelation above 0.3, at most half the rows long (two seasons must fit).
    The calendar's ``suggested`` season wins when it is such a peak; otherwise the shortest lag within
    10% of the highest peak (its multiples peak too). Differencing instead of the trend fit would
    drown a slow season (52 weekly rows) in noise.

    Example:
        >>> seasonal_period(np.sin(2 * np.pi * np.arange(240) / 12), suggested=12)[0]
        12
    """
    n = len(target)
    if n < 8 or np.ptp(target) == 0:
        return None, None
    t = np.arange(n, dtype=np.float64)
    acf = autocorrelation(target - np.polyval(np.polyfit(t, target, 2), t))
    longest = n // 2
    peaks = [k for k in range(2, longest) if acf[k] > SEASON_ACF and acf[k] >= acf[k - 1] and acf[k] >= acf[k + 1]]
    if not peaks:
        return None, None
    if suggested in peaks:
        return suggested, float(acf[suggested])
    best = max(acf[k] for k in peaks)
    season = min(k for k in peaks if acf[k] >= 0.9 * best)
    return season, float(acf[season])


class SeriesPreprocessor:
    """Columns, scaling (fitted on the training rows), window size and frequency of a forecasting model.

    ``inputs(data)`` takes a table of the same columns and forecasts from its last ``lookback``
    rows (``prediction_frame`` gives the next ``horizon`` times and values); ``labelled_windows(data)``
    cuts a labelled table into windows to score the model on (``trainwright evaluate``).

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
        freq: str | None = None,
        fill: str = "none",
        season: int | None = None,
        mase_scale: float | None = None,
    ) -> None:
        self.target, self.time_column, self.columns = target, time_column, list(columns)  # columns[0] is the target
        self.mean, self.std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
        self.lookback, self.horizon, self.step, self.time_kind = lookback, horizon, step, time_kind
        if freq is None and time_kind == "datetime":  # a run from before calendar frequencies: a fixed step
            freq = dominant_frequency(np.array([0, step, 2 * step], dtype=np.int64), "datetime").alias
        self.frequency = Frequency(freq, step)
        self.fill, self.season, self.mase_scale = fill, season, mase_scale

    @property
    def n_outputs(self) -> int:
        return self.horizon

    @property
    def input_shape(self) -> tuple[int, int]:
        return (self.lookback, len(self.columns))

    def scale(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.std).astype(np.float32)

    def decode_target(self, values: np.ndarray) -> np.ndarray:
        """Scaled target values (any shape) -> original units, flattened (N * horizon,)."""
        return np.asarray(values, dtype=np.float64).reshape(-1) * self.std[0] + self.mean[0]

    def _checked(self, data: pd.DataFrame | str | Path, rows: int) -> tuple[pd.DataFrame, np.ndarray]:
        """The table (at least ``rows`` rows; its times on the trained frequency) and its values (T, F), filled as in training."""
        frame = data.reset_index(drop=True) if isinstance(data, pd.DataFrame) else read_table(data)
        absent = [c for c in (self.time_column, *self.columns) if c not in frame.columns]
        if absent:
            raise TrainwrightError(
                f"the data lack column{'s' if len(absent) > 1 else ''} {', '.join(map(repr, absent))} that the model was "
                f"trained on; it needs {self.time_column!r} and {', '.join(map(repr, self.columns))}"
            )
        if len(frame) < rows:
            raise TrainwrightError(f"the model needs at least {rows} rows here (lookback {self.lookback}), but the data have "
                                   f"{len(frame)}; give more rows")
        times, kind = parse_times(frame[self.time_column], self.time_column)
        if len(times) >= 3:
            found = dominant_frequency(times, kind)
            if found.offset != self.frequency.offset or (kind == "numeric" and found.step != self.frequency.step):
                raise TrainwrightError(f"the rows are {found.text}, but the model was trained on rows {self.frequency.text}; "
                                       "resample the series")
            infer_frequency(times, kind, self.time_column, frame[self.time_column])  # gaps, duplicates, order
        values, _ = value_matrix(frame, self.columns, self.fill, training=False)
        return frame, values

    def inputs(self, data: pd.DataFrame | str | Path) -> tuple[pd.DataFrame, np.ndarray]:
        """(the last ``lookback`` rows, their window float32 (1, lookback, F)), checked as in training."""
        frame = data.reset_index(drop=True) if isinstance(data, pd.DataFrame) else read_table(data)
        tail, values = self._checked(frame.iloc[-self.lookback :], self.lookback)
        return tail, self.scale(values)[None]  # (1, lookback, F), numpy: an export predicts without torch

    def labelled_windows(self, data: pd.DataFrame | str | Path) -> tuple[torch.Tensor, torch.Tensor]:
        """Every window of a labelled table (stride 1): inputs float32 (N, lookback, F), the target ahead (N, horizon) scaled."""
        import torch  # lazy, a heavy dependency: predicting from an export uses this module without torch

        _, values = self._checked(data, self.lookback + self.horizon)
        x, y = windows(self.scale(values), self.lookback, self.horizon, 1, 0, len(values))
        return torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))

    def prediction_frame(self, tail: pd.DataFrame, outputs: np.ndarray) -> pd.DataFrame:
        """The next ``horizon`` times after the tail and the forecast of the target at each."""
        times, _ = parse_times(tail[self.time_column], self.time_column)
        ahead = self.frequency.ahead(times[-1], self.horizon)
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
            "freq": self.frequency.alias,
            "time_kind": self.time_kind,
            "fill": self.fill,
            "season": self.season,
            "mase_scale": self.mase_scale,
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
                freq=f.get("freq"),
                fill=f.get("fill", "none"),
                season=f.get("season"),
                mase_scale=f.get("mase_scale"),
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise TrainwrightError(
                f"{directory} is not a trainwright run (or is damaged): preprocessor.json is unreadable "
                f"({type(error).__name__}: {error})"
            ) from None


@dataclass(frozen=True)
class SeriesData(SplitData):
    """x: float32 (N, lookback, F) windows, scaled, column 0 the target; y: float32 (N, horizon), the scaled target ahead.

    ``target`` is the whole target series in original units and ``forecast_rows[part]`` each window's
    first forecast row, so baselines may look further back than the lookback (a season of 52 rows
    behind a lookback of 48)."""

    preprocessor: SeriesPreprocessor
    season: int | None  # the seasonal-naive baseline's period in rows, or None
    target: np.ndarray  # (T,) float64
    forecast_rows: dict  # part -> (N,) int64

    def report_lines(self) -> list[str]:
        s, w = self.summary, self.summary["window"]
        lines = [
            (
                f"{self.name}: {s['rows']} rows, time {s['time_column']!r} from {s['start']} to {s['end']}, {s['frequency']}; "
                f"forecasting {s['target']!r} from {len(s['columns'])} value column{'s' if len(s['columns']) > 1 else ''}"
            ),
            *_filled_lines(s.get("filled") or {}),
            season_line(s["season"]),
            (
                f"windows: {w['lookback']} rows in -> {w['horizon']} ahead, stride {w['stride']}; chronological split "
                f"{s['split']['fractions']}: "
                f"train {s['split']['train']}, val {s['split']['val']}, test {s['split']['test']} windows; scaled on the "
                "training rows only"
            ),
        ]
        return lines + s["notes"]


def season_line(season: dict) -> str:
    """One console line: the season found (or set), why, and what the calendar suggested."""
    rows, suggested, acf = season.get("rows"), season.get("suggested"), season.get("autocorrelation")
    hint = f", {SEASON_TEXT[suggested]}" if suggested in SEASON_TEXT and rows == suggested else ""
    if season.get("from") == "data.window.season":
        return f"season: {rows} rows (data.window.season)"
    if rows is None:
        tried = f"; the calendar suggests {suggested} rows" if suggested else ""
        return (f"season: none found in the training part (no autocorrelation peak above {SEASON_ACF}{tried}): the "
                "seasonal-naive baseline is left out (set data.window.season)")
    return f"season: {rows} rows{hint} (autocorrelation {acf:.2f} over the training part; data.window.season sets another)"


@dataclass(frozen=True, eq=False)
class SeriesRows:
    """A series loaded and checked, not yet split: ``prepare(split)`` scales on ``split.train``'s rows only.

    A split of a series is by time: each part is a contiguous run of rows, train before validation
    before test (``split()``); forward-chaining folds are splits of the same kind.
    """

    cfg: DataConfig
    frame: pd.DataFrame  # with the rows of missing times added (``data.series.fill``)
    name: str
    target: str
    time_column: str
    columns: list[str]
    times: np.ndarray
    time_kind: str
    frequency: Frequency
    values: np.ndarray  # (T, F) float64, the target first
    filled: dict  # {"times": rows added, "values": {column: cells filled}}

    @property
    def step(self) -> float:
        return self.frequency.step

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
        season = _season(w, self.values[:train_end, 0], self.frequency)
        target = self.values[:, 0]
        lag = season["rows"] or 1  # MASE's yardstick: the in-sample (seasonal) naive forecast's MAE on the training part
        naive_error = np.abs(target[lag:train_end] - target[: train_end - lag]).mean() if train_end > lag else 0.0
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
            freq=self.frequency.alias,
            fill=cfg.series.fill,
            season=season["rows"],
            mase_scale=float(naive_error) if naive_error > 0 else None,
        )
        scaled = pre.scale(self.values)
        parts = {part: windows(scaled, w.lookback, w.horizon, w.stride, *bounds[part]) for part in bounds}
        forecast_rows = {part: window_starts(w.lookback, w.horizon, w.stride, *bounds[part]) + w.lookback for part in bounds}
        if split.val is split.train:
            parts["val"], forecast_rows["val"] = parts["train"], forecast_rows["train"]
        if split.test is split.val:
            parts["test"], forecast_rows["test"] = parts["val"], forecast_rows["val"]
        for part, (x, _) in parts.items():
            if len(x) == 0:
                first, end = bounds[part]
                raise TrainwrightError(
                    f"too few rows for one window: the {part} part has rows {first + 1}-{end} of {n}, but a window needs "
                    f"lookback {w.lookback} + horizon {w.horizon} rows (the forecast inside the part); lower "
                    "data.window.lookback/horizon or add rows"
                )
        notes = list(split.notes)
        if season["rows"] and season["rows"] > w.lookback:
            notes.append(
                f"the season ({season['rows']} rows) is longer than the lookback ({w.lookback}): the network never sees the "
                f"value one season back (the seasonal-naive baseline does); consider data.window.lookback: {season['rows']} "
                "or more"
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
            "frequency": self.frequency.text,
            "step": self.frequency.alias or f"{self.step:g}",
            "filled": {**self.filled, "fill": cfg.series.fill},
            "season": season,
            "window": {"lookback": w.lookback, "horizon": w.horizon, "stride": w.stride, "season": season["rows"]},
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
            *tensors["train"], *tensors["val"], *tensors["test"], pre, "regression", self.name, split.held_out, summary,
            season["rows"], target, forecast_rows,
        )


def _filled_lines(filled: dict) -> list[str]:
    fill = filled.get("fill")
    how = {"interpolate": "interpolated between their neighbours", "ffill": "the last known value repeated"}.get(fill, "")
    lines = []
    if filled.get("times"):
        added = filled["times"]
        lines.append(f"added {added} missing time{'s' if added > 1 else ''} as rows (data.series.fill: {fill})")
    if filled.get("values"):
        cells = ", ".join(f"{column} {count}" for column, count in filled["values"].items())
        lines.append(f"filled {sum(filled['values'].values())} missing values ({how}, data.series.fill): {cells}")
    return lines


def _bounds(rows: np.ndarray) -> tuple[int, int]:
    """(first, end) of a contiguous run of row positions."""
    if len(rows) and not np.array_equal(rows, np.arange(rows[0], rows[0] + len(rows))):
        raise ValueError("a part of a series split must be a contiguous run of rows")
    return (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, 0)


def load_series(cfg: DataConfig) -> SeriesRows:
    """Load ``cfg.source`` and check its times and values (sorted, evenly spaced on its calendar, complete or filled)."""
    if cfg.classes is not None or cfg.train_fraction < 1:
        key = "classes" if cfg.classes is not None else "train_fraction"
        raise TrainwrightError(
            f"data.{key} keeps rows of classes; a series is split by time only: remove data.{key} "
            "(set data.split.train to train on a shorter history)"
        )
    frame, default_target, time_column, name = load_sequence_table(
        cfg.source, cfg.time_column, "time", cfg.encoding, cfg.delimiter
    )
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
    frequency = infer_frequency(times, time_kind, time_column, frame[time_column], fill=cfg.series.fill != "none")
    frame, times, added = _with_missing_times(frame, time_column, times, time_kind, frequency)
    values, filled = value_matrix(frame, columns, cfg.series.fill)
    return SeriesRows(cfg, frame, name, target, time_column, columns, times, time_kind, frequency, values,
                      {"times": added, "values": filled})


def _with_missing_times(frame: pd.DataFrame, column: str, times: np.ndarray, kind: str, frequency: Frequency):
    """The table with a row (empty values) for every time its frequency skips, the times, and how many were added."""
    full = grid(times, frequency)
    if len(full) == len(times):
        return frame, times, 0
    position = pd.Index(times).get_indexer(full)  # -1 where a time is missing
    rows = frame.reindex(position).reset_index(drop=True)  # index -1 is absent from the table: an empty row
    rows[column] = pd.to_datetime(full) if kind == "datetime" else full
    return rows, full, int((position < 0).sum())


def prepare_series(cfg: DataConfig) -> SeriesData:
    """Load, check, split by time, scale on train and window ``cfg.source``."""
    rows = load_series(cfg)
    return rows.prepare(rows.split())


def _season(w: WindowConfig, train_target: np.ndarray, frequency: Frequency) -> dict:
    """The seasonal period (``data.window.season``, or searched over the training part) with how it was found."""
    suggested = frequency.season
    if w.season != "auto":
        if w.season >= len(train_target):
            raise TrainwrightError(
                f"data.window.season = {w.season} is not shorter than the {len(train_target)} training rows; "
                "the seasonal-naive forecast needs one season of history"
            )
        return {"rows": int(w.season), "from": "data.window.season", "suggested": suggested, "autocorrelation": None}
    rows, acf = seasonal_period(train_target, suggested)
    return {"rows": rows, "from": "auto", "suggested": suggested, "autocorrelation": acf}
