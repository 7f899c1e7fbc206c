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
        return frame.assign(load=frame["load"].astype(object).where(frame.index != 7, "n/a"))
    return frame.iloc[:20]


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [("gap", "the series has gaps"), ("duplicate", "duplicate times"), ("unsorted", "is not sorted"),
     ("text", "non-numeric values"), ("short", "too few rows for one window")],
)
def test_bad_series_input_is_one_clear_error(tmp_path, kind, fragment):
    with pytest.raises(TrainwrightError, match=fragment) as error:
        prepare_data(DataConfig(source=write(tmp_path, broken(kind)), time_column="timestamp", target="load",
                                window={"lookback": 8, "horizon": 4}))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(("key", "value"), [("classes", [0, 1]), ("train_fraction", 0.5)])
def test_class_subsets_are_refused_for_a_series(tmp_path, key, value):
    with pytest.raises(TrainwrightError, match=f"data.{key} keeps rows of classes; a series is split by time only"):
        prepare_data(DataConfig(source=write(tmp_path, sensor()), time_column="timestamp", target="load", **{key: value}))
