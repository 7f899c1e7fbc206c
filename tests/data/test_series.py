"""Time series: checks, a chronological split, scaling fitted on train, sliding windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from trainwright.config import DataConfig
from trainwright.data.prepare import load_preprocessor, prepare_data
from trainwright.data.series import windows
from trainwright.errors import TrainwrightError
from trainwright.rundir import RunDir


def sensor(n: int = 200) -> pd.DataFrame:
    t = np.arange(n)
    return pd.DataFrame({"timestamp": pd.date_range("2025-01-01", periods=n, freq="15min").astype(str),
                         "load": 10 + np.sin(t / 4) + 0.01 * t, "temp": np.cos(t / 4)})


def write(tmp_path, frame):
    path = tmp_path / "sensor.csv"
    frame.to_csv(path, index=False)
    return str(path)


def test_windows_follow_time_and_never_share_targets():
    values = np.arange(20, dtype=float)[:, None]  # row i holds the value i
    x, y = windows(values, lookback=3, horizon=2, stride=1, first=0, end=10)
    assert x[0, :, 0].tolist() == [0, 1, 2] and y[0].tolist() == [3, 4] and y[-1].tolist() == [8, 9]
    x, y = windows(values, lookback=3, horizon=2, stride=2, first=10, end=20)
    assert x[0, :, 0].tolist() == [7, 8, 9] and y[0].tolist() == [10, 11]  # history may reach back, targets may not
    assert y.min() >= 10 and (np.diff(y[:, 0]) == 2).all()


def test_chronological_split_and_scaling_on_train(tmp_path):
    data = prepare_data(DataConfig(source=write(tmp_path, sensor()), time_column="timestamp", target="load",
                                   window={"lookback": 8, "horizon": 4}))
    pre = data.preprocessor
    assert pre.columns == ["load", "temp"] and data.x_train.shape[1:] == (8, 2) and data.y_train.shape[1] == 4
    raw = sensor()["load"].to_numpy()
    assert pre.mean[0] == pytest.approx(raw[:140].mean())  # 70% of 200 rows: the training rows only
    last_train_target = torch.from_numpy(pre.decode_target(data.y_train[-1].numpy()))
    first_val_target = torch.from_numpy(pre.decode_target(data.y_val[0].numpy()))
    assert last_train_target[-1] == pytest.approx(raw[139]) and first_val_target[0] == pytest.approx(raw[140])
    assert pre.step == 15 * 60 * 1e9 and data.season is not None


def test_predict_from_the_tail_of_a_new_series(tmp_path):
    data = prepare_data(DataConfig(source=write(tmp_path, sensor()), time_column="timestamp", target="load",
                                   window={"lookback": 8, "horizon": 3}))
    RunDir(tmp_path).write_files(data.preprocessor.files())
    pre = load_preprocessor(tmp_path)
    tail, x = pre.inputs(sensor(300).iloc[250:])
    assert x.shape == (1, 8, 2) and len(tail) == 8
    forecast = pre.prediction_frame(tail, np.zeros((1, 3)))
    assert list(forecast["timestamp"].astype(str)) == ["2025-01-04 03:00:00", "2025-01-04 03:15:00", "2025-01-04 03:30:00"]
    assert forecast["prediction"].tolist() == pytest.approx([pre.mean[0]] * 3)


def broken(kind: str) -> pd.DataFrame:
    frame = sensor(60)
    if kind == "gap":
        return frame.drop(index=[30, 31])
    if kind == "duplicate":
        return pd.concat([frame.iloc[:20], frame.iloc[19:]])
    if kind == "unsorted":
        return frame.iloc[[1, 0, *range(2, 60)]]
    if kind == "text":
        return frame.assign(load=frame["load"].astype(object).where(frame.index != 7, "abc"))
    if kind == "missing":
        return frame.assign(load=frame["load"].where(frame.index != 7))
    return frame.iloc[:20]


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [("gap", "the series has gaps"), ("duplicate", "duplicate times"), ("unsorted", "is not sorted"),
     ("text", "non-numeric values"), ("short", "too few rows for one window"),
     ("missing", r"value column 'load' has 1 missing value \(first at row 8\); set data.series.fill: interpolate")],
)
def test_bad_series_input_is_one_clear_error(tmp_path, kind, fragment):
    with pytest.raises(TrainwrightError, match=fragment) as error:
        prepare_data(DataConfig(source=write(tmp_path, broken(kind)), time_column="timestamp", target="load",
                                window={"lookback": 8, "horizon": 4}))
    assert "\n" not in str(error.value) and "np." not in str(error.value)  # no np.float64(nan) in a message


@pytest.mark.parametrize(("key", "value"), [("classes", [0, 1]), ("train_fraction", 0.5)])
def test_class_subsets_are_refused_for_a_series(tmp_path, key, value):
    with pytest.raises(TrainwrightError, match=f"data.{key} keeps rows of classes; a series is split by time only"):
        prepare_data(DataConfig(source=write(tmp_path, sensor()), time_column="timestamp", target="load", **{key: value}))



# ── series on a calendar ───────────────────────────────────────────────────────────────
def calendar_series(freq: str, periods: int, season: int, seed: int = 0, zeros: bool = False) -> pd.DataFrame:
    """A trend, a season of ``season`` rows and noise, on pandas' calendar ``freq`` (MS, QE, W-SUN, ...)."""
    rng = np.random.default_rng(seed)
    t = np.arange(periods)
    value = 100 + 0.05 * t + 8 * np.sin(2 * np.pi * t / season) + rng.normal(0, 1.0, periods)
    if zeros:  # counts that are zero in the off season
        value = np.maximum(0, np.round(10 * np.sin(2 * np.pi * t / season) + rng.normal(0, 1, periods)))
    return pd.DataFrame({"date": pd.date_range("2000-01-01", periods=periods, freq=freq).strftime("%Y-%m-%d"), "value": value})


@pytest.mark.parametrize(("freq", "periods", "season", "text"), [
    ("MS", 240, 12, "monthly (month start)"), ("ME", 240, 12, "monthly (month end)"),
    ("QS", 120, 4, "quarterly (quarter start)"), ("QE", 120, 4, "quarterly (quarter end)"),
    ("D", 400, 7, "daily"),
])
def test_calendar_frequencies_are_regular_and_suggest_their_season(tmp_path, freq, periods, season, text):
    data = prepare_data(DataConfig(source=write(tmp_path, calendar_series(freq, periods, season)), time_column="date",
                                   target="value", window={"lookback": 2 * season, "horizon": 2}))
    assert data.summary["frequency"] == text and data.season == season
    first = data.report_lines()[0]
    assert f" to {data.summary['end']}, {text}; forecasting 'value'" in first and "744h" not in first
    assert data.report_lines()[1].startswith(f"season: {season} rows")


def test_weekly_series_finds_its_yearly_season_beyond_the_lookback(tmp_path):
    data = prepare_data(DataConfig(source=write(tmp_path, calendar_series("W-SUN", 400, 52)), time_column="date",
                                   target="value", window={"lookback": 48, "horizon": 4}))
    assert data.summary["frequency"] == "weekly (Sundays)" and data.season == 52
    assert data.report_lines()[1].startswith("season: 52 rows, a year of weekly rows (autocorrelation 0.")
    assert any("the season (52 rows) is longer than the lookback (48)" in line for line in data.report_lines())
    from trainwright.evaluate.baselines import fit_baselines

    baselines = fit_baselines(data)  # seasonal naive looks 52 rows back, past the window
    assert set(baselines) == {"naive_last_value", "seasonal_naive", "ridge_autoregression"}
    rows, target = data.forecast_rows["test"], data.target
    actual = target[rows[:, None] + np.arange(4)]  # (N, 4): the test windows' forecasts
    expected = np.abs(target[rows[:, None] + np.arange(4) - 52] - actual).mean()  # the value a year (52 rows) earlier
    assert baselines["seasonal_naive"]["mae"] == pytest.approx(expected)


def test_a_series_without_a_season_says_so(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"date": pd.date_range("2000-01-01", periods=300, freq="D").astype(str),
                          "value": np.cumsum(rng.normal(size=300))})
    data = prepare_data(DataConfig(source=write(tmp_path, frame), time_column="date", target="value",
                                   window={"lookback": 10}))
    assert data.season is None and data.report_lines()[1].startswith("season: none found in the training part")


def test_monthly_forecast_times_are_month_starts(tmp_path):
    data = prepare_data(DataConfig(source=write(tmp_path, calendar_series("MS", 120, 12)), time_column="date",
                                   target="value", window={"lookback": 12, "horizon": 3}))
    RunDir(tmp_path).write_files(data.preprocessor.files())
    pre = load_preprocessor(tmp_path)
    tail, _ = pre.inputs(calendar_series("MS", 130, 12).iloc[-20:])
    forecast = pre.prediction_frame(tail, np.zeros((1, 3)))
    assert list(forecast["date"].astype(str)) == ["2010-11-01", "2010-12-01", "2011-01-01"]
    with pytest.raises(TrainwrightError, match="the rows are quarterly .* trained on rows monthly"):
        pre.inputs(calendar_series("QS", 40, 4))


@pytest.mark.parametrize("fill", ["interpolate", "ffill"])
def test_missing_values_and_missing_months_are_filled_when_asked(tmp_path, fill):
    frame = calendar_series("MS", 120, 12)
    frame.loc[[10, 11], "value"] = np.nan
    frame = frame.drop(index=[40, 41, 42])  # three months skipped
    path = write(tmp_path, frame)
    with pytest.raises(TrainwrightError, match=r"the series has gaps: its rows are monthly \(month start\), but 2003-04-01 "
                       r"-> 2003-08-01 \(rows 40-41\) skips 3 times .*data.series.fill: interpolate"):
        prepare_data(DataConfig(source=path, time_column="date", target="value", window={"lookback": 12}))
    data = prepare_data(DataConfig(source=path, time_column="date", target="value", window={"lookback": 12},
                                   series={"fill": fill}))
    assert data.summary["rows"] == 120 and data.summary["filled"]["times"] == 3
    assert data.summary["filled"]["values"] == {"value": 5}  # 2 missing + the 3 added months
    lines = data.report_lines()
    assert "added 3 missing times as rows (data.series.fill: " + fill + ")" in lines
    assert any(line.startswith("filled 5 missing values") for line in lines)
    if fill == "ffill":
        assert data.target[40] == data.target[39]
    else:
        assert data.target[39] < data.target[40] < data.target[43] or data.target[39] > data.target[40] > data.target[43]


def test_mape_only_where_defined_beside_smape_and_mase():
    from trainwright.evaluate.metrics import forecast_metrics

    with_zero = forecast_metrics(torch.tensor([1.0, 2.0, 0.5]), torch.tensor([0.0, 2.0, 1.0]), scale=0.5)
    assert "mape" not in with_zero and with_zero["smape"] == pytest.approx((2 + 0 + 2 * 0.5 / 1.5) / 3)
    assert with_zero["mase"] == pytest.approx(with_zero["mae"] / 0.5)
    assert forecast_metrics(torch.tensor([11.0, 19.0]), torch.tensor([10.0, 20.0]))["mape"] == pytest.approx(0.075)


def test_counts_with_zeros_report_no_mape(tmp_path):
    data = prepare_data(DataConfig(source=write(tmp_path, calendar_series("MS", 240, 12, zeros=True)), time_column="date",
                                   target="value", window={"lookback": 12}))
    from trainwright.evaluate.baselines import fit_baselines

    for scores in fit_baselines(data).values():
        assert "mape" not in scores and {"mae", "smape", "mase"} <= set(scores)
