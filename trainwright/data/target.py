"""The target column: which task it implies and how its labels are made comparable.

Example:
    >>> infer_task(pd.Series(["cat", "dog", "cat"]))
    'binary'
    >>> infer_task(pd.Series([0.5, 1.25, 3.0]))
    'regression'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import numpy as np
import pandas as pd

from trainwright.data.columns import category_values, column_kind, numeric_values
from trainwright.errors import TrainwrightError, quote

Task = Literal["binary", "multiclass", "regression"]
LabelKind = Literal["int", "bool", "str"]

# Integer targets with at most this many distinct values (and at most one per two rows) are
# class labels; more, or nearly all unique (y = 2x - 1 on six points), means a quantity.
MAX_INTEGER_CLASSES = 20


def _numbers(y: pd.Series, column: str) -> np.ndarray | None:
    """The non-missing target values as float64, or None when the target holds text/bools."""
    if column_kind(y) != "numeric":
        return None
    values = numeric_values(y, column)
    return values[~np.isnan(values)]


def infer_task(y: pd.Series) -> Task:
    """The task a target implies: text, bools and categories are classes; non-integer numbers are
    regression; integers are classes when few (<= 20) and repeated (distinct <= rows / 2).

    Example:
        >>> infer_task(pd.Series([1, 2, 3, 1, 2, 3]))
        'multiclass'
    """
    numbers = _numbers(y, str(y.name))
    if numbers is None:
        return "binary" if y.nunique(dropna=True) <= 2 else "multiclass"
    if not np.all(numbers == np.round(numbers)):
        return "regression"
    distinct = len(np.unique(numbers))
    if distinct <= 2:
        return "binary"
    if distinct <= MAX_INTEGER_CLASSES and distinct <= len(numbers) / 2:
        return "multiclass"
    return "regression"


def resolve_task(y: pd.Series, requested: str, column: str) -> Task:
    """``data.task`` when given (checked against the values), else the inferred task.

    ``y`` has no missing values. A target with a single value is an error for every task.
    """
    numbers = _numbers(y, column)
    distinct = y.nunique(dropna=True) if numbers is None else len(np.unique(numbers))
    task: Task = infer_task(y) if requested == "auto" else requested  # type: ignore[assignment]
    if distinct < 2:
        value = _plain(y.iloc[0])  # 3.0, not np.float64(3.0)
        if task == "regression":
            raise TrainwrightError(f"target {column!r} has a single value {quote(value)}; there is nothing to learn")
        raise TrainwrightError(
            f"target {column!r} has a single value {quote(value)}; a classifier needs at least two classes"
        )
    if task == "regression" and numbers is None:
        raise TrainwrightError(
            f"target {column!r} holds text such as {quote(str(y.iloc[0]))}; regression needs numbers: "
            f"set data.task to auto, binary or multiclass"
        )
    if task != "regression" and numbers is not None and not np.all(numbers == np.round(numbers)):
        example = numbers[numbers != np.round(numbers)][0]
        raise TrainwrightError(
            f"target {column!r} has non-integer values such as {example:g}; a classifier needs class labels: "
            f"set data.task: regression, or bin the values into classes"
        )
    if task == "binary" and distinct > 2:
        raise TrainwrightError(
            f"data.task is binary but target {column!r} has {distinct} classes; set data.task: multiclass"
        )
    return task


def label_kind(y: pd.Series) -> LabelKind:
    """How class labels are compared: as integers, as bools, or as strings."""
    if pd.api.types.is_bool_dtype(y) or (len(y) and y.dropna().map(lambda v: isinstance(v, bool | np.bool_)).all()):
        return "bool"
    return "int" if column_kind(y) == "numeric" else "str"


def coerce_labels(y: pd.Series, kind: LabelKind, column: str) -> np.ndarray:
    """Labels as an array of the class list's type; values that cannot be one are errors.

    Accepts what a table read back from disk holds: ``"3"`` or ``3.0`` for the class ``3``,
    ``"True"``/``"false"`` for a bool class.
    """
    missing = y.isna().to_numpy()
    if missing.any():
        raise TrainwrightError(f"target {column!r} has {int(missing.sum())} missing values; fill or remove those rows")
    if kind == "str":
        return category_values(y)
    if kind == "bool":
        if pd.api.types.is_bool_dtype(y):
            return y.to_numpy(dtype=bool)
        text = y.astype(str).str.strip().str.lower()
        bad = ~text.isin(["true", "false", "1", "0", "1.0", "0.0"])
        if bad.any():
            _unknown_labels(y[bad.to_numpy()].tolist(), column)
        return text.isin(["true", "1", "1.0"]).to_numpy()
    numbers = pd.to_numeric(y.astype(str).str.strip(), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    bad = np.isnan(numbers) | (numbers != np.round(numbers))
    if bad.any():
        _unknown_labels(y[bad].tolist(), column)
    return numbers.astype(np.int64)


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def _unknown_labels(values: list, column: str, classes: list | None = None) -> None:
    distinct = list(dict.fromkeys(_plain(value) for value in values))
    shown = ", ".join(map(quote, distinct[:5])) + (", ..." if len(distinct) > 5 else "")
    known = ""
    if classes is not None:
        known = f"; known classes: {', '.join(map(quote, classes[:10]))}{', ...' if len(classes) > 10 else ''}"
    plural = "s" if len(distinct) > 1 else ""
    raise TrainwrightError(f"target {column!r} has label{plural} {shown} not seen in training{known}")


def class_list(labels: np.ndarray) -> list:
    """Sorted distinct labels as plain Python values (JSON-able)."""
    return sorted({_plain(value) for value in np.unique(labels)})


def encode_labels(labels: np.ndarray, classes: list, column: str) -> np.ndarray:
    """Class indices (int64) of already-coerced labels; a label outside ``classes`` is an error."""
    index = pd.Index(classes).get_indexer(labels)
    unknown = index < 0
    if unknown.any():
        _unknown_labels(list(np.asarray(labels)[unknown]), column, classes)
    return index.astype(np.int64)


def encode_class_column(y, classes: list, kind: LabelKind, column: str) -> np.ndarray:
    """Raw labels (a Series or an array) -> int64 (N,) class indices; an unknown label is an error naming it."""
    y = y if isinstance(y, pd.Series) else pd.Series(np.asarray(y), name=column)
    return encode_labels(coerce_labels(y.reset_index(drop=True), kind, column), classes, column)


def decode_class_indices(values: np.ndarray, classes: list) -> np.ndarray:
    """Class indices (any shape) -> their labels, flattened (N,)."""
    return np.asarray(classes)[np.asarray(values).reshape(-1).astype(np.int64)]


def selected_rows(labels: Iterable, wanted: list, column: str) -> np.ndarray:
    """(N,) bool: the rows whose label is one of ``wanted`` (``data.classes``), compared as text,
    so ``5`` in a YAML list matches the label ``5`` of an int column or a folder named ``5``."""
    text = np.array([str(_plain(value)) for value in labels], dtype=object)
    present = set(text)
    absent = [value for value in wanted if str(value) not in present]
    if absent:
        known = class_list(text)
        raise TrainwrightError(
            f"data.classes names {', '.join(map(repr, absent))}, not a label of {column!r}; "
            f"its labels are: {', '.join(map(str, known[:20]))}{', ...' if len(known) > 20 else ''}"
        )
    return np.isin(text, [str(value) for value in wanted])
