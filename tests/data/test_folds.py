"""Cross-validation folds: complete, disjoint, stratified, grouped, forward-chaining, and leak-free preparation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import penguins_like

from trainwright.config import DataConfig, SplitConfig
from trainwright.data.folds import cv_folds
from trainwright.data.prepare import load_data
from trainwright.errors import TrainwrightError


def test_folds_cover_every_row_once_stratified_with_an_inner_validation_part():
    rows = load_data(DataConfig(source="iris"))
    folds = cv_folds(rows, rows.cfg, 5)
    tests = np.concatenate([f.split.test for f in folds])
    assert sorted(tests.tolist()) == list(range(len(rows)))  # every row held out exactly once
    labels = np.asarray(rows.labels)
    for f in folds:
        parts = f.split.train, f.split.val, f.split.test
        assert sum(len(p) for p in parts) == len(rows) and len(np.unique(np.concatenate(parts))) == len(rows)
        for part in parts:  # every class in every part (stratified)
            assert set(labels[part]) == set(labels)
        # The inner validation part is data.split.val / (train + val) of the fold's training rows.
        assert len(f.split.val) == pytest.approx(0.15 / 0.85 * (len(f.split.train) + len(f.split.val)), abs=1)


def test_no_fold_preprocessing_sees_its_held_out_rows(tmp_path):
    """Change the held-out rows beyond recognition: the fold's training and validation tensors, and
    the fitted vocabulary, must not move (imputation, scaling and one-hot encoding fitted on train only)."""
    path = tmp_path / "penguins.csv"
    penguins_like().to_csv(path, index=False)
    rows = load_data(DataConfig(source=str(path), target="species"))
    for fold in cv_folds(rows, rows.cfg, 4):
        data = rows.prepare(fold.split)
        poisoned = rows.rows.copy()
        held = poisoned.index[fold.split.test]
        poisoned.loc[held, ["bill_length_mm", "body_mass_g"]] = 1e6
        poisoned.loc[held, "island"] = "Atlantis"
        other = dataclasses.replace(rows, rows=poisoned).prepare(fold.split)
        assert torch.equal(data.x_train, other.x_train) and torch.equal(data.x_val, other.x_val)
        assert not torch.equal(data.x_test, other.x_test)  # the change did reach the held-out rows
        assert not any("Atlantis" in name for name in other.preprocessor.feature_names)
        # And the fitted statistics are the training rows' own.
        scaler = data.preprocessor._transformer.named_transformers_["numeric"].named_steps["scale"]
        train_mass = pd.to_numeric(rows.rows["body_mass_g"].iloc[fold.split.train])
        column = [c for c, kind in data.preprocessor.kinds.items() if kind == "numeric"].index("body_mass_g")
        assert scaler.mean_[column] == pytest.approx(train_mass.fillna(train_mass.median()).mean())


def test_series_folds_never_train_on_later_times():
    rows = load_data(DataConfig(source="seasonal"))
    folds = cv_folds(rows, rows.cfg, 4)
    assert folds[-1].split.test[-1] == len(rows) - 1
    for fold in folds:
        s = fold.split
        assert s.train.max() < s.val.min() and s.val.max() < s.test.min()  # train, then validate, then score
        assert np.array_equal(s.train, np.arange(len(s.train)))  # history from the first row, contiguous
        data = rows.prepare(s)
        # The scaling is the training rows' own: changing every later row leaves it (and the training windows) alone.
        later = dataclasses.replace(rows, values=np.where(np.arange(len(rows))[:, None] > s.train.max(), 1e6, rows.values))
        other = later.prepare(s)
        assert data.preprocessor.mean.tolist() == other.preprocessor.mean.tolist()
        assert torch.equal(data.x_train, other.x_train) and torch.equal(data.y_train, other.y_train)
    with pytest.raises(TrainwrightError, match="--repeats"):
        cv_folds(rows, rows.cfg, 4, repeats=2)


def test_grouped_folds_keep_each_group_on_one_side(tmp_path):
    frame = penguins_like(n=200)
    frame["colony"] = [f"c{i % 23}" for i in range(len(frame))]
    path = tmp_path / "colonies.csv"
    frame.to_csv(path, index=False)
    cfg = DataConfig(source=str(path), target="species", split=SplitConfig(groups="colony"))
    rows = load_data(cfg)
    colony = rows.frame.loc[rows.rows.index, "colony"].to_numpy()
    for fold in cv_folds(rows, cfg, 5):
        held = set(colony[fold.split.test])
        assert held.isdisjoint(colony[fold.split.train]) and held.isdisjoint(colony[fold.split.val])
        assert set(colony[fold.split.train]).isdisjoint(colony[fold.split.val])
    split = rows.split()  # the plain split is grouped too
    parts = [set(colony[p]) for p in (split.train, split.val, split.test)]
    assert parts[0].isdisjoint(parts[1]) and parts[0].isdisjoint(parts[2]) and parts[1].isdisjoint(parts[2])
    assert "grouped by colony" in split.notes[0]
    with pytest.raises(TrainwrightError, match="23 distinct groups, fewer than --folds 30"):
        cv_folds(rows, cfg, 30)
    with pytest.raises(TrainwrightError, match="not a column"):
        cv_folds(rows, cfg.model_copy(update={"split": SplitConfig(groups="nest")}), 5)


def test_folds_larger_than_a_class_say_how_to_fix_it():
    rows = load_data(DataConfig(source="iris"))  # its repeated row kept (identical rows are): 50 rows per class
    with pytest.raises(TrainwrightError, match=r"class .setosa. has only 50 rows, too few for 60 stratified folds"):
        cv_folds(rows, rows.cfg, 60)


def test_within_folds_only_those_rows():
    rows = load_data(DataConfig(source="iris"))
    split = rows.split()
    pool = np.sort(np.concatenate([split.train, split.val]))
    folds = cv_folds(rows, rows.cfg, 3, within=pool)
    used = np.concatenate([np.concatenate([f.split.train, f.split.val, f.split.test]) for f in folds])
    assert set(used.tolist()) == set(pool.tolist()) and set(used.tolist()).isdisjoint(split.test.tolist())
