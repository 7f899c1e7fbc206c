"""New labelled rows through a run's fitted preprocessing, checked against what it was fitted on.

This is how ``trainwright continue`` reads its new data, and ``trainwright continual`` the later
sources of a task sequence: the preprocessing stays the one the model learned with, so the new
rows must fit it. Each difference is one error that names it:

- another kind of data (a folder of images for a table run, ...);
- a table without the target, without feature columns the model takes, or with columns the old
  table never had;
- categories the one-hot (or ordinal) encoder never saw: they would all encode as "unknown", so
  the model could not tell them apart.

Rows without a label are dropped and counted; exact duplicate rows too when
``data.clean.duplicates: drop`` (as ``train`` does; otherwise identical rows are kept). A table file is
read with the run's ``data.delimiter`` and ``data.encoding``. Labels are read the way the old ones were
(``"9"`` in a CSV is the class ``9`` of an integer target).

Example:
    >>> rows = read_new_rows(pre, "digits-9.csv", cfg.data, old_columns=list(data_json["columns"]))
    >>> rows.x.shape, rows.labels[:3]
    (torch.Size([180, 61]), array([9, 9, 9]))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from trainwright.config import DataConfig
from trainwright.data.columns import coerce_frame
from trainwright.data.images import ImagePreprocessor
from trainwright.data.modality import source_modality
from trainwright.data.series import SeriesPreprocessor
from trainwright.data.sources import load_source
from trainwright.data.tabular import TabularPreprocessor
from trainwright.data.target import coerce_labels
from trainwright.data.text import TextPreprocessor
from trainwright.errors import TrainwrightError

KINDS = {"tabular": "a table", "images": "images", "text": "text", "series": "a time series"}


@dataclass(frozen=True)
class NewRows:
    """Labelled rows as the model takes them: x (N, *input shape), labels (N,) as the old labels were read."""

    source: str
    x: torch.Tensor
    labels: np.ndarray
    read: int  # rows (or files) in the source
    unlabelled: int  # dropped: no label
    duplicates: int  # dropped: exact duplicates of another row

    def line(self) -> str:
        """What was read, as one console line."""
        dropped = [f"{count} {why} dropped" for count, why in ((self.unlabelled, "without a label"),
                                                               (self.duplicates, "exact duplicates")) if count]
        return f"new data {self.source}: {self.read} rows" + (f" ({', '.join(dropped)})" if dropped else "")


def modality_of_preprocessor(pre: object) -> str:
    """tabular, images, text or series: the kind of data a fitted preprocessor takes."""
    for modality, kind in (("tabular", TabularPreprocessor), ("images", ImagePreprocessor), ("text", TextPreprocessor),
                           ("series", SeriesPreprocessor)):
        if isinstance(pre, kind):
            return modality
    raise TypeError(f"unknown preprocessor {type(pre).__name__}")


def read_new_rows(pre, source: str, cfg: DataConfig, old_columns: list[str] | None = None) -> NewRows:
    """The labelled rows of ``source`` through ``pre`` (fitted on the old training rows); ``cfg`` is the old data section.

    ``old_columns``: every column of the old table (its data.json), so a column the old table never
    had is named rather than silently ignored; None skips that check.
    """
    modality = modality_of_preprocessor(pre)
    new_modality = source_modality(source, cfg.image_column, cfg.text_column, cfg.time_column)
    if new_modality != modality:
        raise TrainwrightError(
            f"the new data {source} are {KINDS[new_modality]}, but the run was trained on {KINDS[modality]}; "
            f"pass new data of the same kind ({KINDS[modality]}{' with the same columns' if modality == 'tabular' else ''})"
        )
    target = pre.target
    if modality == "tabular":
        frame = load_source(source, encoding=cfg.encoding, delimiter=cfg.delimiter)[0]
        _check_columns(frame, pre, source, old_columns)
        read = len(frame)
        frame, unlabelled = _labelled(frame, target)
        duplicates = 0
        if cfg.clean.duplicates == "drop":
            repeated = frame.duplicated().to_numpy()
            duplicates = int(repeated.sum())
            frame = frame[~repeated]
        _check_categories(frame, pre, source)
        x = torch.from_numpy(pre.transform(frame))  # (N, features) float32
    else:
        frame, x = pre.inputs(source)  # images: (N, C, H, W) uint8; text: (N, length) token ids
        x = torch.as_tensor(x)
        if target not in frame.columns:
            where = "one sub-folder per class" if modality == "images" else f"a {target!r} column"
            raise TrainwrightError(f"the new data {source} have no labels; give them {where}, as the old run's data had")
        read = len(frame)
        labelled = frame[target].notna().to_numpy()
        frame, x = frame[labelled], x[torch.from_numpy(labelled)]
        unlabelled, duplicates = int((~labelled).sum()), 0
    if not len(frame):
        raise TrainwrightError(f"the new data {source} hold no labelled rows (column {target!r}); add rows with a label")
    labels = coerce_labels(frame[target].reset_index(drop=True), pre.label_kind, target)
    return NewRows(source, x, labels, read, unlabelled, duplicates)


def _check_columns(frame: pd.DataFrame, pre: TabularPreprocessor, source: str, old_columns: list[str] | None) -> None:
    columns = [str(column) for column in frame.columns]
    if pre.target not in columns:
        raise TrainwrightError(f"the new data {source} have no target column {pre.target!r}; columns are: {', '.join(columns)}")
    absent = [column for column in pre.feature_columns if column not in columns]
    if absent:
        raise TrainwrightError(
            f"the new data {source} lack column{'s' if len(absent) > 1 else ''} {', '.join(map(repr, absent))} that the model "
            f"takes; add {'them' if len(absent) > 1 else 'it'} (the model's columns: {', '.join(pre.feature_columns)})"
        )
    if old_columns is not None:
        extra = [column for column in columns if column not in old_columns]
        if extra:
            raise TrainwrightError(
                f"the new data {source} have column{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))} that the old "
                f"run's table did not; the old preprocessing cannot take new columns: drop "
                f"{'them' if len(extra) > 1 else 'it'}, or train a new run on all the data"
            )


def _labelled(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, int]:
    missing = frame[target].isna().to_numpy()
    return frame[~missing], int(missing.sum())


def _check_categories(frame: pd.DataFrame, pre: TabularPreprocessor, source: str) -> None:
    """Every category of the new rows must be one the encoder learned (missing values are imputed, so they pass)."""
    known = pre.categories()
    if not known:
        return
    values = coerce_frame(frame, {column: "categorical" for column in known})
    unseen = {}
    for column, categories in known.items():
        present = pd.unique(values[column].dropna())
        new = sorted(set(present) - set(categories))
        if new:
            unseen[column] = new
    if unseen:
        named = "; ".join(f"{column!r}: {', '.join(map(repr, new[:5]))}{' ...' if len(new) > 5 else ''}"
                          for column, new in unseen.items())
        raise TrainwrightError(
            f"the new data {source} hold categories the old preprocessing never saw ({named}); the model cannot tell "
            f"them apart from each other: map them to known categories, drop those rows, or train a new run on all the data"
        )
