import numpy as np
import pytest
import torch

from trainwright.config import DataConfig, SplitConfig
from trainwright.data.prepare import load_data
from trainwright.data.split import Split, quantile_strata, split_rows, train_subset
from trainwright.errors import TrainwrightError


def test_stratified_split_keeps_proportions_without_overlap():
    labels = np.array(["a"] * 600 + ["b"] * 300 + ["c"] * 100)
    split = split_rows(len(labels), labels, SplitConfig())
    assert split.held_out and split.stratified
    assert (len(split.train), len(split.val), len(split.test)) == (700, 150, 150)
    assert len(np.union1d(np.union1d(split.train, split.val), split.test)) == 1000  # disjoint and complete
    for part in (split.train, split.val, split.test):
        shares = [np.mean(labels[part] == label) for label in "abc"]
        assert shares == pytest.approx([0.6, 0.3, 0.1], abs=0.01)


def test_same_seed_same_split_other_seed_other_split():
    first, again = split_rows(100, None, SplitConfig()), split_rows(100, None, SplitConfig())
    other = split_rows(100, None, SplitConfig(seed=1))
    assert np.array_equal(first.test, again.test) and not np.array_equal(first.test, other.test)


def test_too_small_to_split_trains_on_everything():
    split = split_rows(6, None, SplitConfig())  # 6 * 0.15 = 0.9 rows for val and test
    assert not split.held_out
    assert split.train.tolist() == split.val.tolist() == split.test.tolist() == list(range(6))
    assert split.notes == ("6 rows are too few to split 70/15/15: training on all rows; the metrics below are training metrics",)


def test_smallest_splittable_set():
    split = split_rows(14, None, SplitConfig())  # 14 * 0.15 = 2.1 rows
    assert split.held_out and len(split.val) >= 2 and len(split.test) >= 2


def test_val_zero_validates_on_training_rows():
    split = split_rows(100, None, SplitConfig(train=0.8, val=0.0, test=0.2))
    assert split.held_out and len(split.test) == 20
    assert split.val is split.train and "val is 0" in split.notes[0]


def test_test_zero_tests_on_validation_rows():
    split = split_rows(100, None, SplitConfig(train=0.8, val=0.2, test=0.0))
    assert split.held_out and len(split.val) == 20
    assert split.test is split.val and "optimistic" in split.notes[0]


def test_val_and_test_zero():
    split = split_rows(100, None, SplitConfig(train=0.999, val=0.0, test=0.001))
    assert not split.held_out  # 100 * 0.001 < 2: too small
    # SplitConfig itself requires train < 1; a config built around that check still gets a sane split.
    split = split_rows(10, None, SplitConfig.model_construct(train=1.0, val=0.0, test=0.0, stratify=True, seed=0))
    assert not split.held_out and len(split.train) == 10


def test_class_too_small_to_stratify():
    labels = np.array(["a"] * 20 + ["b"] * 20 + ["rare"] * 2)
    with pytest.raises(TrainwrightError) as error:
        split_rows(len(labels), labels, SplitConfig())
    message = str(error.value)
    assert "class 'rare' has only 2 rows" in message and "stratify: false" in message


def test_unstratified_split_accepts_a_rare_class():
    labels = np.array(["a"] * 20 + ["b"] * 20 + ["rare"] * 2)
    split = split_rows(len(labels), labels, SplitConfig(stratify=False))
    assert split.held_out and not split.stratified


def test_more_classes_than_test_rows():
    labels = np.repeat(np.arange(10), 3)  # 30 rows: the test split would get 5 rows for 10 classes
    with pytest.raises(TrainwrightError, match="leaves 5 rows for test, fewer than the 10 classes"):
        split_rows(len(labels), labels, SplitConfig())


def test_train_fraction_keeps_a_stratified_share_of_the_training_rows_only():
    labels = np.repeat(np.array(["a", "b", "c", "d"]), 50)
    full = split_rows(len(labels), labels, SplitConfig())
    part = train_subset(full, labels, 0.1, seed=0)
    assert len(part.train) == round(0.1 * len(full.train)) and set(part.train) <= set(full.train)
    assert part.val is full.val and part.test is full.test  # validation and test stay whole
    assert sorted(np.unique(labels[part.train], return_counts=True)[1]) == [3, 3, 4, 4]
    assert "training on 14 of the 139 training rows (stratified)" in part.notes[-1]
    assert train_subset(full, labels, 1.0, seed=0) is full
    with pytest.raises(TrainwrightError, match="keeps 1 of 139 training rows, fewer than the 4 classes"):
        train_subset(full, labels, 0.005, seed=0)


def test_data_classes_keep_the_named_labels_of_a_table_and_of_images():
    from trainwright.data.prepare import prepare_data
    from trainwright.data.target import selected_rows

    assert selected_rows(np.array([1, 5, 7, 5]), [5, "7"], "digit").tolist() == [False, True, True, True]
    with pytest.raises(TrainwrightError, match="data.classes names 'tulip', not a label of 'species'; its labels are: setosa"):
        selected_rows(np.array(["setosa", "virginica"]), ["tulip", "setosa"], "species")
    table = prepare_data(DataConfig(source="iris", classes=["setosa", "virginica"], train_fraction=0.5))
    assert table.task == "binary" and table.preprocessor.classes == ["setosa", "virginica"]
    assert table.summary["subset"] == {
        "classes": ["setosa", "virginica"],
        "rows_before": 150,
        "rows_kept": 100,
        "train_fraction": 0.5,
    }
    # 100 rows in 99 groups (a virginica row repeats): 68 groups and 69 rows train, halved
    assert len(table.y_train) == 35 and len(table.y_test) == 15
    images = prepare_data(DataConfig(source="digits-images", classes=[5, 6, 7, 8, 9], train_fraction=0.1))
    assert images.preprocessor.classes == [5, 6, 7, 8, 9] and len(images.y_train) == 63 and len(images.y_test) == 135
    assert "data.classes: kept the 896 of 1797 rows labelled 5, 6, 7, 8, 9" in images.report_lines()


def test_a_regression_target_is_stratified_on_its_quantiles():
    values = np.random.default_rng(0).lognormal(size=442)  # skewed, like most quantities
    strata = quantile_strata(values, SplitConfig())
    assert strata is not None and np.bincount(strata).tolist() == [45, 44, 44, 44, 44, 44, 44, 44, 44, 45]
    split = split_rows(len(values), strata, SplitConfig())
    whole = np.quantile(values, [0.1, 0.5, 0.9])
    for part in (split.train, split.val, split.test):  # every split spans the target's range
        assert np.quantile(values[part], [0.1, 0.5, 0.9]) == pytest.approx(whole, rel=0.15)
    assert quantile_strata(values, SplitConfig(stratify=False)) is None
    assert quantile_strata(values[:30], SplitConfig()) is None  # too few rows for 2 bins of 20
    assert quantile_strata(np.zeros(400), SplitConfig()) is None  # one value: nothing to stratify on


def test_preparation_takes_any_split_and_fits_on_its_training_part_only():
    rows = load_data(DataConfig(source="diabetes"))
    assert len(rows) == 442 and rows.strata is not None  # quantile bins of the target
    positions = np.arange(len(rows))
    fold = positions % 5 == 0  # a fold: every fifth row held out
    train = positions[~fold]
    split = Split(train, positions[fold], positions[fold], held_out=True, stratified=False)
    data = rows.prepare(split)
    assert len(data.x_train) == len(train) and len(data.x_test) == fold.sum()
    # Every statistic comes from the training part: standardized training features have mean 0, held-out ones do not.
    assert torch.allclose(data.x_train.mean(0), torch.zeros(data.x_train.shape[1]), atol=1e-5)
    assert not torch.allclose(data.x_test.mean(0), torch.zeros(data.x_test.shape[1]), atol=1e-3)
    assert data.summary["split"]["train"] == len(train)


def test_grouped_split_keeps_each_group_on_one_side_and_singletons_split_as_rows():
    groups = np.repeat(np.arange(100), 4)  # 100 groups of 4 rows, each group one label
    labels = np.where(groups % 2 == 0, "a", "b")
    split = split_rows(400, labels, SplitConfig(), groups=groups)
    assert split.groups == 100 and split.stratified
    sides = [set(groups[part]) for part in (split.train, split.val, split.test)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])  # no group on two sides
    assert sum(len(part) for part in (split.train, split.val, split.test)) == 400
    by_group = split_rows(100, labels[::4], SplitConfig())  # the groups split as 100 rows would be, 4 rows each
    sizes = tuple(4 * len(part) for part in (by_group.train, by_group.val, by_group.test))
    assert (len(split.train), len(split.val), len(split.test)) == sizes
    plain, single = split_rows(300, None, SplitConfig()), split_rows(300, None, SplitConfig(), groups=np.arange(300)[::-1])
    assert all(np.array_equal(getattr(plain, p), getattr(single, p)) for p in ("train", "val", "test"))


def test_identical_rows_with_measurements_never_straddle_the_split(write_csv):
    import pandas as pd

    from trainwright.data.prepare import load_data

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200).round(2), "b": rng.normal(size=200), "y": rng.choice(["p", "q"], 200)})
    frame = pd.concat([frame, frame.iloc[:40], frame.iloc[:10]], ignore_index=True)  # 50 copies of 40 rows
    rows = load_data(DataConfig(source=write_csv(frame), target="y"))
    split = rows.split()
    keys = [set(map(tuple, rows.rows.iloc[part].to_numpy().tolist())) for part in (split.train, split.val, split.test)]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    data = rows.prepare(split)
    assert data.summary["split"]["groups"] == 200 and data.summary["rows"]["after_cleaning"] == 250
    assert any("identical rows kept together" in line for line in data.report_lines())
