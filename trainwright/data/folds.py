"""Cross-validation folds: each fold is a ``Split`` of the loaded rows, so ``rows.prepare(fold.split)``
fits every statistic (imputation, scaling, vocabulary, the target's scale) on that fold's training
part only, exactly as a single run does on its training split.

A fold's three parts:

- ``test``: the held-out fold, scored once at the end (never seen by training or early stopping);
- ``val``: an inner validation part carved from the fold's training part (``data.split.val`` /
  (``train`` + ``val``) of it, stratified like the folds), which early stopping watches;
- ``train``: the rest.

Folds are stratified on the classes (a regression target on its quantile bins, as the split is),
grouped by ``data.split.groups`` (rows sharing that column's value stay on one side), and for a
series forward-chaining: fold i trains on the first i blocks of time and is scored on block i + 1,
so no fold trains on a time later than one it is scored on.

Example:
    >>> rows = load_data(DataConfig(source="iris"))
    >>> folds = cv_folds(rows, rows.cfg, k=5)
    >>> [len(f.split.test) for f in folds]
    [30, 30, 30, 30, 30]
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, GroupShuffleSplit, KFold, StratifiedGroupKFold, StratifiedKFold, train_test_split

from trainwright.config import DataConfig
from trainwright.data.split import Split, train_subset
from trainwright.errors import TrainwrightError


@dataclass(frozen=True)
class Fold:
    number: int  # 1..k within its repeat
    repeat: int  # 1..repeats
    split: Split

    @property
    def name(self) -> str:
        return f"fold-{self.number:02d}" if self.repeat == 1 else f"repeat-{self.repeat}-fold-{self.number:02d}"


def cv_folds(rows, cfg: DataConfig, k: int, repeats: int = 1, within: np.ndarray | None = None) -> list[Fold]:
    """``k`` folds of ``rows`` (any modality's loaded rows), ``repeats`` times with fresh shuffles; ``within``:
    fold only these row positions (a search folds the training and validation rows and leaves the test rows out)."""
    if within is not None:
        folds = cv_folds(Subset(rows, np.asarray(within)), cfg, k, repeats)
        pick = np.asarray(within)
        return [replace(f, split=replace(f.split, train=pick[f.split.train], val=pick[f.split.val], test=pick[f.split.test]))
                for f in folds]
    n = len(rows)
    if k < 2:
        raise TrainwrightError(f"--folds {k}: cross-validation needs at least 2 folds")
    if repeats < 1:
        raise TrainwrightError(f"--repeats {repeats}: give 1 or more")
    if getattr(rows, "time_column", None) is not None:
        if repeats > 1:
            raise TrainwrightError("a series has one order in time, so its folds cannot be reshuffled: drop --repeats")
        if cfg.split.groups:
            raise TrainwrightError("data.split.groups applies to tables; a series is split by time: remove it")
        return series_folds(n, k, inner_share(cfg))
    groups = (rows.groups(cfg.split.groups) if isinstance(rows, Subset) else group_labels(rows, cfg.split.groups)) \
        if cfg.split.groups else None
    strata = rows.strata if cfg.split.stratify else None
    if k > n:
        raise TrainwrightError(f"--folds {k} is more than the {n} rows; use --folds {max(2, n // 2)} or fewer")
    check_foldable(strata, groups, k, is_classes=getattr(rows, "task", "multiclass") != "regression")
    folds = []
    for repeat in range(1, repeats + 1):
        seed = cfg.split.seed + repeat - 1
        for number, (rest, test) in enumerate(outer_splitter(strata, groups, k, seed).split(np.zeros(n), strata, groups), 1):
            train, val = carve_validation(rest, strata, groups, inner_share(cfg), seed)
            regression = getattr(rows, "task", "") == "regression"
            how = ("grouped by " + cfg.split.groups + ", " if groups is not None else "") + (
                ("stratified on target quantiles" if regression else "stratified") if strata is not None else "shuffled"
            )
            note = f"fold {number} of {k}" + (f" (repeat {repeat})" if repeats > 1 else "") + f", {how}"
            if val is None:  # data.split.val is 0: early stopping watches the training rows
                val, note = train, note + "; data.split.val is 0: early stopping uses the fold's training rows"
            split = Split(np.sort(train), np.sort(val), np.sort(test), held_out=True, stratified=strata is not None,
                          notes=(note,))
            if val is train:
                split = replace(split, val=split.train)  # the same array: preparation reuses the training tensors
            split = train_subset(split, strata, cfg.train_fraction, seed)
            folds.append(Fold(number, repeat, split))
    return folds


class Subset:
    """Some of the loaded rows, as fold makers see them: their count, strata, groups and series order."""

    def __init__(self, rows, positions: np.ndarray):
        self.rows_of, self.positions = rows, positions
        self.task = getattr(rows, "task", "")
        self.time_column = getattr(rows, "time_column", None)
        self.name = rows.name
        strata = rows.strata
        self.strata = strata[positions] if strata is not None else None
        if self.time_column is not None and not np.array_equal(positions, np.arange(len(positions))):
            raise ValueError("a series is folded over its first rows only")

    def __len__(self) -> int:
        return len(self.positions)

    def groups(self, column: str) -> np.ndarray:
        return group_labels(self.rows_of, column)[self.positions]


def inner_share(cfg: DataConfig) -> float:
    """The share of a fold's training part held out for early stopping: val / (train + val), as a single run has."""
    return cfg.split.val / (cfg.split.train + cfg.split.val)


def outer_splitter(strata: np.ndarray | None, groups: np.ndarray | None, k: int, seed: int):
    if groups is not None:
        if strata is not None:
            return StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        return GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    if strata is not None:
        return StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return KFold(n_splits=k, shuffle=True, random_state=seed)


def carve_validation(
    rest: np.ndarray, strata: np.ndarray | None, groups: np.ndarray | None, share: float, seed: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """(train, val) positions out of a fold's training part ``rest``; val None when ``share`` is 0."""
    if share <= 0:
        return rest, None
    if groups is not None:
        inner = GroupShuffleSplit(n_splits=1, test_size=share, random_state=seed)
        train, val = next(inner.split(rest, groups=groups[rest]))
        return rest[train], rest[val]
    try:
        train, val = train_test_split(rest, test_size=share, random_state=seed,
                                      stratify=strata[rest] if strata is not None else None)
    except ValueError as error:
        raise TrainwrightError(
            f"cannot carve a stratified validation part out of a fold's {len(rest)} training rows ({error}); "
            "use fewer folds, or set data.split.stratify: false"
        ) from None
    return train, val


def check_foldable(strata: np.ndarray | None, groups: np.ndarray | None, k: int, is_classes: bool) -> None:
    """Every class in every fold (and in each fold's inner validation part), and enough groups."""
    if groups is not None:
        distinct = len(pd.unique(groups))
        if distinct < k:
            raise TrainwrightError(
                f"data.split.groups has {distinct} distinct groups, fewer than --folds {k}; use --folds {distinct} or fewer"
            )
    if strata is None:
        return
    counts = pd.Series(strata).value_counts(sort=True, ascending=True)
    # k folds, and each fold's training part split again for early stopping: 2 rows of a class in
    # every fold's training part need k rows overall, and 1 in each held-out fold.
    if counts.iloc[0] < k:
        label, count = counts.index[0], int(counts.iloc[0])
        label = label.item() if isinstance(label, np.generic) else label
        what = f"class {label!r}" if is_classes else f"target quantile bin {label}"
        raise TrainwrightError(
            f"{what} has only {count} row{'s' if count != 1 else ''}, too few for {k} stratified folds (each fold needs one); "
            f"use --folds {max(2, count)} or fewer, remove the class, or set data.split.stratify: false"
        )


def group_labels(rows, column: str) -> np.ndarray:
    """The ``data.split.groups`` column's value for each loaded row (tables only)."""
    frame = getattr(rows, "frame", None)
    if frame is None or not hasattr(rows, "rows"):
        raise TrainwrightError(f"data.split.groups = {column!r} applies to tables; remove it for this data")
    if column not in frame.columns:
        raise TrainwrightError(
            f"data.split.groups names {column!r}, not a column of {rows.name}; columns are: {', '.join(map(str, frame.columns))}"
        )
    values = frame.loc[rows.rows.index, column]  # the cleaned rows keep their place in the source as index
    if values.isna().any():
        raise TrainwrightError(
            f"data.split.groups column {column!r} is missing in {int(values.isna().sum())} rows; give every row a group"
        )
    return values.astype(str).to_numpy()


def grouped_split(rows, cfg: DataConfig) -> Split:
    """The configured train/validation/test split with ``data.split.groups``: every group on one side
    (shuffled by group, not stratified), so a run's test rows share no group with its training rows."""
    groups = group_labels(rows, cfg.split.groups)
    n, distinct = len(groups), len(pd.unique(groups))
    parts = 1 + (cfg.split.val > 0) + (cfg.split.test > 0)
    if distinct < parts:
        raise TrainwrightError(f"data.split.groups has {distinct} distinct group{'s' if distinct != 1 else ''}, too few "
                               f"for a {parts}-part split; give more groups or remove data.split.groups")
    positions = np.arange(n)
    rest, test = positions, positions[:0]
    if cfg.split.test:
        inner = GroupShuffleSplit(n_splits=1, test_size=cfg.split.test, random_state=cfg.split.seed)
        keep, held = next(inner.split(positions, groups=groups))
        rest, test = positions[keep], positions[held]
    train, val = carve_validation(rest, None, groups, inner_share(cfg), cfg.split.seed)
    note = f"grouped by {cfg.split.groups}: each of its {distinct} groups lies in one part (not stratified)"
    split = Split(np.sort(train), np.sort(val) if val is not None else np.sort(train), np.sort(test), held_out=True,
                  stratified=False, notes=(note,))
    if val is None:
        split = replace(split, val=split.train)
    if not cfg.split.test:
        split = replace(split, test=split.val)
    return train_subset(split, None, cfg.train_fraction, cfg.split.seed)


def series_folds(n: int, k: int, share: float) -> list[Fold]:
    """Forward-chaining folds over ``n`` rows in time order: k + 1 equal blocks; fold i trains (and
    validates, on the last part of its history) on blocks 1..i and is scored on block i + 1."""
    block = n // (k + 1)
    if block < 1:
        raise TrainwrightError(f"{n} rows are too few for {k} forward-chaining folds; use fewer folds")
    folds = []
    for number in range(1, k + 1):
        test_start = n - (k - number + 1) * block
        test = np.arange(test_start, test_start + block if number < k else n)
        history = np.arange(0, test_start)
        n_val = round(len(history) * share)
        train, val = history[: len(history) - n_val], history[len(history) - n_val :]
        note = (f"fold {number} of {k}, forward-chaining: trains and validates on rows 1-{test_start}, "
                f"scored on rows {test[0] + 1}-{test[-1] + 1}")
        if n_val == 0:
            val = train
        folds.append(Fold(number, 1, Split(train, val, test, held_out=True, stratified=False, notes=(note,))))
    return folds
