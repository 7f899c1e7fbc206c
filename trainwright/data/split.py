"""Train / validation / test row indices: stratified for classes, shuffled for regression.

Rules, in order:

- ``val`` and ``test`` both 0: every row trains, and validation and test metrics are computed on
  the training rows (``held_out`` is False).
- too few rows to hold any out, i.e. fewer than 2 rows would land in the smaller of val/test
  (``n * min(val, test) < 2``, zero fractions ignored; the six-row ``linear`` set): every row
  trains, ``held_out`` is False, and a note says the metrics are training metrics.
- ``val`` 0 only: validation (and so early stopping) uses the training rows.
- ``test`` 0 only: test metrics use the validation rows, which also chose the stopping epoch.

A stratified split needs every class in every split: a class with fewer rows than there are
splits, or a split with fewer rows than there are classes, is an error that says how to fix it.

Grouped: rows that share a group (identical rows, ``data.clean.duplicates: group``; the rows of one
patient) all land on one side. The groups are split as the rows would be (the fractions count
groups, as scikit-learn's GroupShuffleSplit does; stratified on each group's first label), then
every row follows its group. Groups of one row each give exactly the plain split.

Example:
    >>> split = split_rows(10, None, SplitConfig(train=0.6, val=0.2, test=0.2))
    >>> len(split.train), len(split.val), len(split.test)
    (6, 2, 2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from trainwright.config import DataConfig, SplitConfig
from trainwright.errors import TrainwrightError, quote

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class SplitData:
    """What every modality's data stage returns (``prepare.Prepared``): tensors per split, the fitted
    preprocessor, the task and the facts. Each modality's class adds its own fields and lines."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    preprocessor: Any  # the modality's preprocessor, which knows ``input_shape``
    task: str
    name: str  # built-in name, file or folder stem
    held_out: bool  # False: val and test are the training rows (too few rows, or val = test = 0)
    summary: dict  # JSON-able; the run's data.json
    train_transform = None  # a class attribute, not a field: only images augment (ImageData makes it one)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One example's shape as the model sees it."""
        return self.preprocessor.input_shape

    def report_lines(self) -> list[str]:
        """What the data stage did, as console lines: each modality says it its own way."""
        raise NotImplementedError


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # positions of the rows in each split, sorted
    val: np.ndarray
    test: np.ndarray
    held_out: bool  # False: val and test are training rows, so their metrics are training metrics
    stratified: bool
    notes: tuple[str, ...] = ()
    groups: int | None = None  # grouped: how many groups the rows formed (None: not grouped)

    def facts(self, cfg: SplitConfig, sizes: tuple[int, int, int] | None = None) -> dict[str, Any]:
        """The split as data.json records it; ``sizes`` (train, val, test) where rows were lost after splitting.

        Example:
            >>> split.facts(cfg.split)
            {'fractions': '70/15/15', 'seed': 0, 'stratified': True, 'held_out': True, 'train': 1257, 'val': 270, 'test': 270}
        """
        train, val, test = sizes or (len(self.train), len(self.val), len(self.test))
        return {
            "fractions": fractions_text(cfg), "seed": cfg.seed, "stratified": self.stratified, "held_out": self.held_out,
            "train": train, "val": val, "test": test, **({"groups": self.groups} if self.groups is not None else {}),
        }


def fractions_text(cfg: SplitConfig) -> str:
    """'70/15/15' for the default split."""
    return "/".join(f"{round(100 * fraction):g}" for fraction in (cfg.train, cfg.val, cfg.test))


def _check_stratifiable(labels: np.ndarray, cfg: SplitConfig) -> None:
    """Raise when a stratified split cannot put every class in every split."""
    counts = pd.Series(labels).value_counts(sort=True, ascending=True)
    splits = 1 + (cfg.val > 0) + (cfg.test > 0)
    if counts.iloc[0] < splits:
        label, count = counts.index[0], int(counts.iloc[0])
        label = label.item() if isinstance(label, np.generic) else label
        raise TrainwrightError(
            f"class {quote(label)} has only {count} row{'s' if count > 1 else ''}, too few for a stratified "
            f"{fractions_text(cfg)} split (it needs {splits}, one per split); add rows of that class, "
            f"remove the class from the data, or set data.split.stratify: false"
        )
    # The sizes scikit-learn will draw: ceil(fraction * rows) for the split taken off each time.
    n, classes = len(labels), len(counts)
    n_test = math.ceil(cfg.test * n) if cfg.test else 0
    rest = n - n_test
    n_val = math.ceil(cfg.val / (cfg.train + cfg.val) * rest) if cfg.val else 0
    for name, size in (("test", n_test), ("val", n_val), ("train", rest - n_val)):
        if size and size < classes:
            raise TrainwrightError(
                f"a stratified {fractions_text(cfg)} split of {n} rows leaves {size} rows for {name}, fewer than the "
                f"{classes} classes; add rows, raise data.split.{name}, or set data.split.stratify: false"
            )


def quantile_strata(values: np.ndarray, cfg: SplitConfig, most: int = 10) -> np.ndarray | None:
    """A regression target as quantile bins to stratify on, so every split spans the target's range
    (with 67 test rows, a plain shuffle can leave the test split's spread far from the data's, and
    its R² swings with the seed). Up to ``most`` bins of at least 20 rows, no more bins than the
    smallest held-out split has rows; None when stratify is off or the rows are too few for 2 bins.

    Example:
        >>> quantile_strata(np.arange(400.0), SplitConfig())[[0, 39, 40, 399]]
        array([0, 0, 1, 9])
    """
    n = len(values)
    held = [fraction for fraction in (cfg.val, cfg.test) if fraction > 0]
    if not cfg.stratify or not held:
        return None
    bins = min(most, n // 20, math.floor(n * min(held)))
    if bins < 2:
        return None
    strata = pd.qcut(values, bins, labels=False, duplicates="drop")  # ties can merge bins
    if np.isnan(strata).any():  # a constant target: no bins at all
        return None
    strata = strata.astype(np.int64)
    counts = np.bincount(strata)
    return strata if len(counts) >= 2 and counts.min() >= 1 + len(held) else None


def split_rows(n: int, labels: np.ndarray | None, cfg: SplitConfig, groups: np.ndarray | None = None) -> Split:
    """Split positions 0..n-1; ``labels`` (original class labels) turn on stratification.

    Stratification happens when labels are given and ``cfg.stratify`` is true. ``groups`` (n,) keeps
    the rows of each group on one side (see the module docstring).

    Example:
        >>> split = split_rows(6, None, SplitConfig(train=0.5, val=0.25, test=0.25), groups=np.array([0, 0, 1, 2, 3, 4]))
        >>> split.groups, any({0, 1} <= set(part) for part in (split.train, split.val, split.test))
        (5, True)
    """
    if groups is not None:
        return _split_groups(n, labels, cfg, np.asarray(groups))
    rows = np.arange(n)
    held = [fraction for fraction in (cfg.val, cfg.test) if fraction > 0]
    if not held:
        note = "data.split.val and data.split.test are 0: validation and test metrics are computed on the training rows"
        return Split(rows, rows, rows, held_out=False, stratified=False, notes=(note,))
    if n * min(held) < 2:
        note = (
            f"{n} rows are too few to split {fractions_text(cfg)}: training on all rows; "
            f"the metrics below are training metrics"
        )
        return Split(rows, rows, rows, held_out=False, stratified=False, notes=(note,))

    stratify = labels is not None and cfg.stratify
    if stratify:
        _check_stratifiable(labels, cfg)
    strata = labels if stratify else None
    try:
        # Test first, then val out of the rest, so val + test are the configured fractions of n.
        if cfg.test:
            rest, test = train_test_split(rows, test_size=cfg.test, random_state=cfg.seed, stratify=strata)
        else:
            rest, test = rows, np.empty(0, dtype=rows.dtype)
        if cfg.val:
            rest_strata = labels[rest] if stratify else None
            val_fraction = cfg.val / (cfg.train + cfg.val)
            train, val = train_test_split(rest, test_size=val_fraction, random_state=cfg.seed, stratify=rest_strata)
        else:
            train, val = rest, np.empty(0, dtype=rows.dtype)
    except ValueError as error:  # the checks above should catch these first
        raise TrainwrightError(f"cannot split {n} rows {fractions_text(cfg)}: {error}") from None

    train, val, test = np.sort(train), np.sort(val), np.sort(test)
    notes = []
    if not cfg.val:
        val = train
        notes.append("data.split.val is 0: validation metrics and early stopping use the training rows")
    if not cfg.test:
        test = val
        notes.append(
            "data.split.test is 0: test metrics use the validation rows, which also chose the stopping epoch, "
            "so they are optimistic"
        )
    return Split(train, val, test, held_out=True, stratified=stratify, notes=tuple(notes))


def _split_groups(n: int, labels: np.ndarray | None, cfg: SplitConfig, groups: np.ndarray) -> Split:
    """Split the groups (each stratified by its first row's label), then expand to their rows."""
    if len(groups) != n:
        raise ValueError(f"groups has {len(groups)} entries for {n} rows")
    # Groups numbered by first appearance, so that groups of one row each are the rows themselves.
    codes, uniques = pd.factorize(pd.Series(groups), use_na_sentinel=False)
    n_groups = len(uniques)
    first = np.full(n_groups, n, dtype=np.int64)
    np.minimum.at(first, codes, np.arange(n))  # (groups,) the first row of each group
    by_group = split_rows(n_groups, None if labels is None else labels[first], cfg)
    rows = {part: np.flatnonzero(np.isin(codes, getattr(by_group, part))) for part in ("train", "val", "test")}
    train = rows["train"]
    val = train if by_group.val is by_group.train else rows["val"]
    test = val if by_group.test is by_group.val else rows["test"]
    notes = tuple(note.replace(f"{n_groups} rows are too few", f"{n_groups} groups of rows are too few")
                  for note in by_group.notes)
    return Split(train, val, test, by_group.held_out, by_group.stratified, notes, groups=n_groups)


def train_subset(split: Split, labels: np.ndarray | None, fraction: float, seed: int) -> Split:
    """Keep ``fraction`` of the training rows (``data.train_fraction``), stratified when the split
    is; validation and test stay whole, so the metrics stay comparable with a full run.

    Example:
        >>> len(train_subset(split_rows(100, None, SplitConfig()), None, 0.1, 0).train)
        7
    """
    if fraction >= 1:
        return split
    if not split.held_out:
        raise TrainwrightError("data.train_fraction needs held-out validation and test rows; these data are too few to split")
    strata = labels[split.train] if split.stratified and labels is not None else None
    n_classes = len(np.unique(strata)) if strata is not None else 1
    keep = max(1, round(fraction * len(split.train)))
    if keep < n_classes:
        raise TrainwrightError(
            f"data.train_fraction = {fraction:g} keeps {keep} of {len(split.train)} training rows, fewer than the "
            f"{n_classes} classes; raise data.train_fraction to at least {n_classes / len(split.train):.3f}"
        )
    if keep == len(split.train):
        return split
    train, _ = train_test_split(split.train, train_size=keep, random_state=seed, stratify=strata)
    train = np.sort(train)
    val = train if split.val is split.train else split.val  # data.split.val: 0 validates on the training rows
    test = val if split.test is split.val else split.test
    how = "stratified" if strata is not None else "shuffled"
    note = (f"data.train_fraction = {fraction:g}: training on {len(train)} of the {len(split.train)} training rows ({how}); "
            "validation and test stay whole")
    return Split(train, val, test, held_out=True, stratified=split.stratified, notes=(*split.notes, note), groups=split.groups)


def subset_facts(cfg: DataConfig, rows_before: int, rows_kept: int) -> dict:
    """data.json's record of ``data.classes`` and ``data.train_fraction``; nothing when neither is set."""
    if cfg.classes is None and cfg.train_fraction >= 1:
        return {}
    return {
        "subset": {
            "classes": cfg.classes,
            "rows_before": rows_before,
            "rows_kept": rows_kept,
            "train_fraction": cfg.train_fraction,
        }
    }


def subset_notes(cfg: DataConfig, rows_before: int, rows_kept: int) -> list[str]:
    if cfg.classes is None:
        return []
    return [f"data.classes: kept the {rows_kept} of {rows_before} rows labelled {', '.join(map(str, cfg.classes))}"]
