import numpy as np
import pytest

from trainwright.config import SplitConfig
from trainwright.data.split import split_rows
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
