import collections
import json
import pickle

import numpy as np
import pandas as pd
import pytest
import skops.io
import torch

from trainwright.config import DataConfig
from trainwright.data.tabular import TabularPreprocessor, prepare_tabular
from trainwright.errors import TrainwrightError
from trainwright.rundir import RunDir


def _message(prepare, frame, **config) -> str:
    with pytest.raises(TrainwrightError) as error:
        prepare(frame, **config)
    return str(error.value)


# ── columns and target ─────────────────────────────────────────────────────────────────
def test_target_absent_lists_columns(prepare, mixed):
    message = _message(prepare, mixed, target="price")
    assert "target column 'price' is not in table" in message and "size, color, used, y" in message


def test_file_without_target_asks_for_one(write_csv, mixed):
    with pytest.raises(TrainwrightError, match="data.target is not set"):
        prepare_tabular(DataConfig(source=write_csv(mixed)))


def test_builtin_target_is_the_default():
    assert prepare_tabular(DataConfig(source="wine")).preprocessor.target == "cultivar"


def test_features_and_drop_columns(prepare, mixed):
    assert prepare(mixed, features=["size", "color"]).preprocessor.feature_columns == ["size", "color"]
    data = prepare(mixed, drop_columns=["used"])
    assert data.preprocessor.feature_columns == ["size", "color"]
    assert data.summary["columns"]["used"] == {"dtype": "bool", "kind": "dropped", "reason": "data.drop_columns"}


@pytest.mark.parametrize("key", ["features", "drop_columns"])
def test_absent_listed_columns(prepare, mixed, key):
    message = _message(prepare, mixed, **{key: ["size", "weight"]})
    assert f"data.{key} names column 'weight' not in table" in message


def test_task_override_checked_against_target(prepare, mixed):
    assert "regression needs numbers" in _message(prepare, mixed, task="regression")


# ── bad values ─────────────────────────────────────────────────────────────────────────
def test_single_class(prepare, mixed):
    message = _message(prepare, mixed.assign(y="a"))
    assert message == "target 'y' has a single value 'a'; a classifier needs at least two classes"


def test_class_too_small_to_stratify(prepare, mixed):
    frame = mixed.copy()
    frame.loc[[0, 1], "y"] = "rare"
    message = _message(prepare, frame)
    assert "class 'rare' has only 2 rows" in message and "data.split.stratify: false" in message
    assert prepare(frame, split={"stratify": False}).held_out


def test_junk_in_numeric_column_names_rows_of_the_file(prepare, mixed):
    frame = mixed.astype({"size": object})
    frame.loc[5, "size"], frame.loc[11, "size"] = "?", "abc"
    message = _message(prepare, frame)
    assert "column 'size' holds numbers but 2 values are not a number: '?' (row 6), 'abc' (row 12)" in message


def test_infinities(prepare, mixed):
    frame = mixed.copy()
    frame.loc[[1, 3], "size"] = np.inf
    assert "column 'size' has 2 infinite values" in _message(prepare, frame)


def test_all_missing_column(prepare, mixed):
    message = _message(prepare, mixed.assign(empty=np.nan))
    assert "column 'empty' has no values" in message and "data.drop_columns: [empty]" in message


def test_no_features_left(prepare):
    frame = pd.DataFrame({"k": [1] * 30, "y": [0, 1, 2] * 10})
    assert "no feature columns are left" in _message(prepare, frame)


# ── the prepared tensors ───────────────────────────────────────────────────────────────
def test_tensors_report_and_summary(prepare, mixed):
    frame = pd.concat([mixed, mixed.iloc[[0, 1, 2]]], ignore_index=True)  # 3 duplicates
    frame.loc[7, "y"] = None
    data = prepare(frame, clean={"duplicates": "drop"})
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (41, 9, 9)  # 63 - 3 - 1 rows
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert data.x_train.shape[1] == data.preprocessor.n_features == 6  # size + 3 colors + 2 used
    for x in (data.x_train, data.x_val, data.x_test):
        assert torch.isfinite(x).all()
    lines = data.report_lines()
    assert "dropped 3 duplicate rows (exact copies of earlier rows)" in lines
    assert "dropped 1 row whose target 'y' is missing" in lines
    assert any(line.startswith("3 missing values to impute") for line in lines)
    assert any(line.startswith("split 70/15/15 (stratified, seed 0): train 41, val 9, test 9") for line in lines)
    summary = json.loads(json.dumps(data.summary))  # JSON-able
    assert summary["rows"] == {"raw": 63, "after_cleaning": 59}
    assert summary["columns"]["color"]["kind"] == "categorical" and summary["columns"]["used"]["kind"] == "categorical"
    balance = summary["class_balance"]
    assert sum(balance["train"].values()) == 41 and balance["all"] == {
        k: balance["train"][k] + balance["val"][k] + balance["test"][k] for k in balance["all"]
    }


def test_split_rows_do_not_overlap():
    data = prepare_tabular(DataConfig(source="wine"))
    rows = [{tuple(row) for row in x.tolist()} for x in (data.x_train, data.x_val, data.x_test)]
    assert sum(map(len, rows)) == 178 and not (rows[0] & rows[1] or rows[0] & rows[2] or rows[1] & rows[2])


def test_scaler_is_fitted_on_training_rows_only():
    data = prepare_tabular(DataConfig(source="diabetes"))
    assert data.x_train.double().mean(0).abs().max() < 1e-5
    assert data.x_train.double().std(0, unbiased=False).sub(1).abs().max() < 1e-4
    assert data.x_test.double().mean(0).abs().max() > 1e-3
    assert data.y_train.double().mean().abs() < 1e-5


def test_same_config_same_tensors(prepare, mixed):
    first, again = prepare(mixed), prepare(mixed)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(first, name), getattr(again, name))
    assert first.summary == again.summary


def test_too_small_to_split_says_so(prepare):
    data = prepare(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [2.0, 4.1, 6.0, 8.2]}))
    assert data.held_out is False and torch.equal(data.x_train, data.x_test)
    assert data.report_lines()[-1] == (
        "4 rows are too few to split 70/15/15: training on all rows; the metrics below are training metrics"
    )


# ── the preprocessor ───────────────────────────────────────────────────────────────────
@pytest.mark.parametrize("numeric", ["standard", "minmax", "robust", "none"])
@pytest.mark.parametrize("categorical", ["onehot", "ordinal"])
def test_save_load_round_trip(prepare, mixed, tmp_path, numeric, categorical):
    data = prepare(mixed, preprocess={"numeric": numeric, "categorical": categorical})
    RunDir(tmp_path).write_files(data.preprocessor.files())
    loaded = TabularPreprocessor.load(tmp_path)
    assert np.array_equal(loaded.transform(mixed), data.preprocessor.transform(mixed))
    assert np.isfinite(loaded.transform(mixed)).all()
    facts = json.loads((tmp_path / "preprocessor.json").read_text())
    assert facts["target"] == "y" and facts["classes"] == ["no", "yes"] and facts["kinds"]["used"] == "categorical"


def test_load_uses_no_pickle(prepare, mixed, tmp_path, monkeypatch):
    RunDir(tmp_path).write_files(prepare(mixed).preprocessor.files())

    def refuse(*args, **kwargs):
        raise AssertionError("pickle was used")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    assert TabularPreprocessor.load(tmp_path).n_features == 6


def test_unseen_category_and_extra_columns(prepare, mixed):
    pre = prepare(mixed).preprocessor
    new = pd.DataFrame({"extra": [1], "used": [True], "color": ["purple"], "size": [10.0]})
    x = pre.transform(new)
    color = [i for i, name in enumerate(pre.feature_names) if "color" in name]
    assert x.shape == (1, 6) and (x[0, color] == 0).all()
    ordinal = prepare(mixed, preprocess={"categorical": "ordinal"}).preprocessor
    assert ordinal.transform(new)[0, ordinal.feature_names.index("categorical__color")] == -1


def test_transform_checks_columns_and_values(prepare, mixed):
    pre = prepare(mixed).preprocessor
    with pytest.raises(TrainwrightError, match="the data lack columns 'color', 'used'"):
        pre.transform(mixed[["size"]])
    with pytest.raises(TrainwrightError, match=r"column 'size' holds numbers but 1 value is not a number: 'big' \(row 2\)"):
        pre.transform(pd.DataFrame({"size": ["1", "big", "3", "4", "5"], "color": "red", "used": True}))
    # Numbers read back as text (a CSV of strings) are coerced exactly as at fit time.
    as_text = mixed.astype({"size": str}).replace({"size": {"nan": ""}})
    assert np.array_equal(pre.transform(as_text), pre.transform(mixed))


def test_string_labels_round_trip_and_unknown_label(prepare, mixed):
    pre = prepare(mixed).preprocessor
    codes = pre.encode_target(mixed["y"])
    assert codes.dtype == np.int64 and set(codes) == {0, 1}
    assert pre.decode_target(codes).tolist() == mixed["y"].tolist()
    with pytest.raises(TrainwrightError, match=r"target 'y' has label 'maybe' not seen in training; known classes: 'no', 'yes'"):
        pre.encode_target(pd.Series(["yes", "maybe"]))


def test_integer_and_bool_labels_round_trip(prepare, mixed):
    labels = np.arange(60) % 3
    pre = prepare(mixed.assign(y=labels)).preprocessor
    assert pre.classes == [0, 1, 2] and pre.n_outputs == 3
    assert pre.decode_target(pre.encode_target(pd.Series(labels.astype(str)))).tolist() == labels.tolist()
    flags = prepare(mixed.assign(y=labels == 0)).preprocessor
    assert flags.classes == [False, True] and flags.task == "binary"
    assert flags.decode_target(flags.encode_target(pd.Series(labels == 0))).tolist() == (labels == 0).tolist()


def test_regression_target_round_trip(prepare, mixed):
    y = np.linspace(100, 300, 60)
    data = prepare(mixed.assign(y=y))
    pre = data.preprocessor
    encoded = pre.encode_target(pd.Series(y))
    assert data.task == "regression" and encoded.shape == (60, 1) and encoded.dtype == np.float32
    assert np.allclose(pre.decode_target(encoded), y, rtol=1e-6)
    # The training tensor (a torch tensor, as the training code holds it) decodes to original values.
    decoded = pre.decode_target(data.y_train)
    assert np.abs(decoded[:, None] - y[None, :]).min(axis=1).max() < 1e-3


def test_load_refuses_untrusted_types(prepare, mixed, tmp_path):
    RunDir(tmp_path).write_files(prepare(mixed).preprocessor.files())
    (tmp_path / "preprocessor.skops").write_bytes(skops.io.dumps(collections.Counter(a=1)))
    with pytest.raises(TrainwrightError, match="refusing to load untrusted type collections.Counter"):
        TabularPreprocessor.load(tmp_path)


def test_load_from_a_directory_that_is_not_a_run(prepare, mixed, tmp_path):
    with pytest.raises(TrainwrightError, match="is not a trainwright run .*preprocessor.json is missing"):
        TabularPreprocessor.load(tmp_path)
    RunDir(tmp_path).write_files(prepare(mixed).preprocessor.files())
    (tmp_path / "preprocessor.skops").write_bytes(b"garbage")
    with pytest.raises(TrainwrightError, match="is not a trainwright run .*preprocessor.skops is unreadable"):
        TabularPreprocessor.load(tmp_path)
    (tmp_path / "preprocessor.json").write_text("{not json")
    with pytest.raises(TrainwrightError, match="preprocessor.json is unreadable"):
        TabularPreprocessor.load(tmp_path)


def test_jsonl_with_mixed_types_and_string_dtype(tmp_path):
    rows = [{"a": i * 0.5, "kind": (i % 3) if i % 2 else "x", "y": "p" if i % 2 else "q"} for i in range(40)]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows))
    data = prepare_tabular(DataConfig(source=str(path), target="y"))
    assert data.preprocessor.kinds == {"a": "numeric", "kind": "categorical"}
    assert torch.isfinite(data.x_train).all()


def test_junk_in_the_target_names_the_row_of_the_file(prepare, mixed):
    frame = mixed.assign(y=np.linspace(0, 1, 60).astype(object))
    frame.loc[0, "y"] = None  # dropped first: row numbers must still be the file's
    frame.loc[30, "y"] = "n/k"
    assert "column 'y' holds numbers but 1 value is not a number: 'n/k' (row 31)" in _message(prepare, frame)


def test_console_lists_each_column_kind_and_the_preprocessor_keeps_dates_and_indicators(write_csv, tmp_path):
    from helpers import hospital_like

    frame = hospital_like()
    data = prepare_tabular(DataConfig(source=write_csv(frame), target="y"))
    lines = data.report_lines()
    assert "numeric (2): age, dose (+ a missing indicator)" in lines
    assert "categorical (1): ward (3 categories + 'missing')" in lines
    assert "date (1): admitted -> year, month, day of week, days since 1970-01-01, hour" in lines
    dropped = next(line for line in lines if line.startswith("dropped (3): "))
    assert "case_id (identifier: integers unique to each row, increasing)" in dropped and "lab (94% missing" in dropped
    assert data.summary["columns"]["admitted"]["kind"] == "date" and data.summary["columns"]["ward"]["categories"] == 3
    names = data.preprocessor.feature_names
    assert "numeric_missing__missingindicator_dose" in names and "categorical_missing__ward_(missing)" in names
    assert "numeric__admitted.month_sin" in names and "numeric__admitted.days" in names
    RunDir(tmp_path).write_files(data.preprocessor.files())  # skops: no type outside the allowlist
    loaded = TabularPreprocessor.load(tmp_path)
    new = frame.iloc[:5].copy()
    assert np.allclose(loaded.transform(new), data.preprocessor.transform(new))
    new.loc[new.index[0], "admitted"] = "not a date"
    with pytest.raises(TrainwrightError, match="column 'admitted' holds dates but 1 value is not a date: 'not a date'"):
        loaded.transform(new)


def test_a_predict_time_junk_message_suggests_no_training_option(prepare, mixed):
    pre = prepare(mixed).preprocessor
    frame = mixed.astype({"size": object})
    frame.loc[0, "size"] = "?"
    with pytest.raises(TrainwrightError) as error:
        pre.transform(frame)
    assert "'?' (row 1)" in str(error.value) and "data." not in str(error.value)
