"""Cleaning a table before it is split, every action counted so it can be reported.

In order: type each column (numeric, categorical or date; junk text, infinities and all-missing
columns are errors); drop rows whose target is missing; drop constant columns (one distinct
non-missing value); drop identifier columns, which a model can only memorize; drop columns missing
in more than ``max_missing`` of the rows; settle identical rows (``duplicates``); then drop rows with
missing features (``missing: drop``) or count the missing cells that the fitted imputer will fill
(``missing: impute``; columns missing often also get an indicator). Cleaning that would remove
more than ``max_dropped`` of the rows is an error that names the step, never a silent loss.

Identifier columns (at least 20 rows):

- text with a distinct value in at least 95% of the rows (names, ids, free text);
- integers unique to each row that run in order (increasing or decreasing), form a run of
  consecutive numbers (with few gaps), or are named like an identifier (``id``, ``case_no``,
  ``PatientId``);
- in panel data, the identifier of groups of rows: at least 20 values, each on one block of
  consecutive rows, either not in sorted order (a table is not grouped by a quantity without being
  sorted by it) or named like an identifier. A sorted, blocked column without such a name (a year in
  a table sorted by year) is a quantity, and kept.

Identical rows: ``auto`` keeps them, and keeps each set of identical rows on one side of the split
(``group``) when a feature is continuous (a numeric column with more than 20 distinct values, or a
date): an exact copy of a measured row is a copy, which must not sit on both sides. When every
feature takes few values (categories, small integer codes), identical rows are what such data look
like (1316 passengers described by class, age group and sex are 22 distinct rows): ``auto`` keeps
them and splits as usual.

Example:
    >>> cleaned = clean_table(frame, "price", CleanConfig(duplicates="drop"))
    >>> [action.message for action in cleaned.actions if action.count]
    ['dropped 3 duplicate rows (exact copies of earlier rows)']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainwright.config import CleanConfig
from trainwright.data.columns import Kind, coerce_column, column_kind
from trainwright.data.dates import date_parts
from trainwright.errors import TrainwrightError

ID_MIN_ROWS = 20
ID_DISTINCT_SHARE = 0.95
ID_CONSECUTIVE = 1.1  # unique integers spanning at most this many times their count: a numbering
ID_MIN_GROUPS = 20  # a panel identifier has at least this many values
FEW_VALUES = 20  # a numeric column with at most this many distinct values takes "few values"
_ID_NAME = re.compile(r"(^|[_\s.\-])(id|key|code|index|idx|no|nr|num|number)$", re.IGNORECASE)
_ID_CAMEL = re.compile(r"[a-z0-9](Id|ID|No|Key|Nr)$")


@dataclass(frozen=True)
class Action:
    # missing_target | constant_columns | identifier_columns | missing_columns | duplicates | missing_values | missing_rows
    name: str
    count: int  # rows or columns dropped or kept, or cells imputed
    message: str  # one line for the console
    detail: dict = field(default_factory=dict)  # per column, for data.json

    def to_dict(self) -> dict:
        return {"action": self.name, "count": self.count, "message": self.message, **self.detail}


@dataclass(frozen=True)
class Cleaned:
    frame: pd.DataFrame  # kept feature columns coerced to their kinds + the raw target; original row index
    kinds: dict[str, Kind]  # kept feature column -> kind, in table order
    dropped: dict[str, str]  # dropped column -> why
    actions: tuple[Action, ...]
    missing: dict[str, int]  # kept feature column -> missing cells left for the imputer
    indicated: tuple[str, ...] = ()  # kept columns missing often: an indicator (numbers) or a 'missing' category
    dates: dict[str, list[str]] = field(default_factory=dict)  # date column -> its parts (data/dates.py)
    duplicates: str = "keep"  # how identical rows are split: keep | group (drop: there are none left)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _repeat(count: int) -> str:
    return "repeats" if count == 1 else "repeat"


def _show(value: object) -> str:
    value = value.item() if isinstance(value, np.generic) else value
    return f"{value:g}" if isinstance(value, float) else repr(value)


def identifier_reason(series: pd.Series, kind: Kind, name: str) -> str | None:
    """Why a typed feature column is an identifier (see the module docstring), or None."""
    present = series.dropna()
    rows = len(present)
    if rows < ID_MIN_ROWS or kind == "date":
        return None
    named = bool(_ID_NAME.search(name) or _ID_CAMEL.search(name))
    distinct = present.nunique()
    if kind == "categorical":
        if distinct >= ID_DISTINCT_SHARE * rows:
            return f"identifier-like text: {distinct} distinct values in {rows} rows"
        codes = pd.factorize(present)[0]
        if named and distinct >= ID_MIN_GROUPS and _blocks(codes) == distinct:
            return f"identifier of groups of rows: {distinct} values, each on one block of consecutive rows"
        return None
    values = present.to_numpy(dtype=np.float64)
    if not np.array_equal(values, np.round(values)):
        return None
    steps = np.diff(values)
    increasing, decreasing = bool((steps > 0).all()), bool((steps < 0).all())
    if distinct >= ID_DISTINCT_SHARE * rows:
        if increasing or decreasing:
            return f"identifier: integers unique to each row, {'increasing' if increasing else 'decreasing'}"
        if values.max() - values.min() + 1 <= ID_CONSECUTIVE * distinct:
            return "identifier: integers unique to each row, a run of consecutive numbers"
        return "identifier: integers unique to each row, named like an identifier" if named else None
    if distinct >= ID_MIN_GROUPS and _blocks(values) == distinct:
        in_order = bool((steps >= 0).all() or (steps <= 0).all())
        if named or not in_order:
            return f"identifier of groups of rows: {distinct} values, each on one block of consecutive rows"
    return None


def _blocks(values: np.ndarray) -> int:
    """Runs of equal consecutive values."""
    return 1 + int((np.diff(values) != 0).sum()) if len(values) else 0


def few_values(series: pd.Series, kind: Kind) -> bool:
    """A categorical column, or a numeric one with at most ``FEW_VALUES`` distinct values."""
    return kind == "categorical" or (kind == "numeric" and series.nunique() <= FEW_VALUES)


def clean_table(frame: pd.DataFrame, target: str, cfg: CleanConfig) -> Cleaned:
    """Clean ``frame`` (feature columns + ``target``); see the module docstring for the steps."""
    features = [column for column in frame.columns if column != target]
    kinds: dict[str, Kind] = {column: column_kind(frame[column]) for column in features}
    typed = pd.DataFrame(
        {column: coerce_column(frame[column], column, kind) for column, kind in kinds.items()}, index=frame.index
    )
    empty = [column for column in features if typed[column].isna().all()]
    if empty:
        many = len(empty) > 1
        raise TrainwrightError(
            f"column{'s' if many else ''} {', '.join(map(repr, empty))} {'have' if many else 'has'} no values "
            f"(all missing); remove {'them' if many else 'it'} with data.drop_columns: [{', '.join(empty)}]"
        )
    typed[target] = frame[target]
    raw_rows = len(typed)
    actions: list[Action] = []

    no_target = typed[target].isna().to_numpy()
    typed = typed[~no_target]
    actions.append(Action("missing_target", int(no_target.sum()),
                          f"dropped {_plural(int(no_target.sum()), 'row')} whose target {target!r} is missing"))
    if typed.empty:
        raise TrainwrightError(f"every row's target {target!r} is missing; check data.target")

    dropped: dict[str, str] = {}
    if cfg.drop_constant:
        constant = {c: typed[c].dropna().iloc[0] for c in features if typed[c].nunique(dropna=True) == 1}
        for column, value in constant.items():
            dropped[column] = f"constant: always {_show(value)}"
        shown = ", ".join(f"{column} (always {_show(value)})" for column, value in constant.items())
        actions.append(Action("constant_columns", len(constant),
                              f"dropped {_plural(len(constant), 'constant column')}: {shown}",
                              {"columns": list(constant)}))
    rows = len(typed)
    identifiers = {}
    if cfg.drop_identifiers:
        for column in features:
            reason = None if column in dropped else identifier_reason(typed[column], kinds[column], column)
            if reason is not None:
                identifiers[column] = dropped[column] = reason
    shown = ", ".join(f"{column} ({reason})" for column, reason in identifiers.items())
    actions.append(Action("identifier_columns", len(identifiers),
                          f"dropped {_plural(len(identifiers), 'identifier column')}, which a model could only memorize: "
                          f"{shown} (data.clean.drop_identifiers: false keeps them)", {"columns": list(identifiers)}))

    absent = {column: int(typed[column].isna().sum()) for column in features if column not in dropped}
    sparse = [column for column, n in absent.items() if n > cfg.max_missing * rows]
    for column in sparse:
        dropped[column] = f"{absent[column] / rows:.0%} missing: {absent[column]} of {rows} rows"
    shown = ", ".join(f"{column} ({dropped[column]})" for column in sparse)
    actions.append(Action("missing_columns", len(sparse),
                          f"dropped {_plural(len(sparse), 'column')} missing in more than {cfg.max_missing:.0%} of the rows "
                          f"(data.clean.max_missing): {shown}", {"columns": list(sparse)}))

    kinds = {column: kind for column, kind in kinds.items() if column not in dropped}
    if not kinds:
        raise TrainwrightError(
            f"no feature columns are left after cleaning ({', '.join(f'{c}: {why}' for c, why in dropped.items())}); "
            f"the table needs at least one column besides the target {target!r} that varies"
        )
    typed = typed[[*kinds, target]]

    policy = cfg.duplicates
    if policy == "auto":
        policy = "keep" if all(few_values(typed[c], kind) for c, kind in kinds.items()) else "group"
    repeated = typed.duplicated(keep="first").to_numpy()
    count = int(repeated.sum())
    sets = int(typed[typed.duplicated(keep=False).to_numpy()].drop_duplicates().shape[0])
    if policy == "drop":
        typed = typed[~repeated]
        message = f"dropped {_plural(count, 'duplicate row')} (exact copies of earlier rows)"
    elif policy == "group":
        message = (f"{_plural(count, 'row')} {_repeat(count)} an earlier row exactly ({_plural(sets, 'set')} of identical rows): "
                   "kept, each set on one side of the split, so no row is on both (data.clean.duplicates: drop removes them)")
    elif cfg.duplicates == "auto":
        message = (f"{count} of {rows} rows repeat an earlier row exactly ({_plural(sets, 'set')} of identical rows); every "
                   "feature takes few values, so they are repeated observations: kept and split as usual "
                   "(data.clean.duplicates: group keeps each set on one side of the split, drop removes them)")
    else:
        message = (f"{_plural(count, 'row')} {_repeat(count)} an earlier row exactly: kept and split as usual "
                   "(data.clean.duplicates: keep)")
    actions.append(Action("duplicates", count, message, {"policy": policy, "sets": sets}))

    missing = {column: int(n) for column, n in typed[list(kinds)].isna().sum().items() if n}
    shown = ", ".join(f"{column} {n}" for column, n in missing.items())
    indicated: tuple[str, ...] = ()
    if cfg.missing == "drop":
        incomplete = typed[list(kinds)].isna().any(axis=1).to_numpy()
        typed = typed[~incomplete]
        actions.append(Action("missing_rows", int(incomplete.sum()),
                              f"dropped {_plural(int(incomplete.sum()), 'row')} with missing values "
                              f"(data.clean.missing: drop): {shown}", {"cells": missing}))
        if typed.empty:
            raise TrainwrightError(
                "every row has a missing value, so data.clean.missing: drop leaves nothing; "
                "use data.clean.missing: impute, or drop the sparse columns with data.drop_columns"
            )
        missing = {}
    else:
        cells = sum(missing.values())
        indicated = tuple(c for c, n in missing.items() if n >= cfg.missing_indicator * len(typed))
        often = "; missing often, so they also get an indicator (numbers) or a 'missing' category (categories): " + ", ".join(
            f"{c} ({missing[c] / len(typed):.0%})" for c in indicated) if indicated else ""
        actions.append(Action("missing_values", cells,
                              f"{_plural(cells, 'missing value')} to impute ({cfg.impute_numeric} for numbers, "
                              f"most frequent for categories, fitted on the training split): {shown}{often}",
                              {"cells": missing, "indicated": list(indicated)}))
    _check_dropped(raw_rows, len(typed), actions, cfg)
    dates = {column: date_parts(typed[column]) for column, kind in kinds.items() if kind == "date"}
    grouped = "group" if policy == "group" and count else "keep"  # no identical rows: nothing to group
    return Cleaned(typed, kinds, dropped, tuple(actions), missing, indicated, dates, grouped)


_FIXES = {
    "missing_target": "the target is missing in those rows: check data.target",
    "duplicates": "keep identical rows with data.clean.duplicates: auto (each set of identical rows then stays on one side "
    "of the split)",
    "missing_rows": "impute the missing values instead with data.clean.missing: impute, or drop the sparse columns with "
    "data.drop_columns",
}


def _check_dropped(before: int, after: int, actions: list[Action], cfg: CleanConfig) -> None:
    """Refuse to go on when cleaning removed more than ``cfg.max_dropped`` of the rows."""
    if before - after <= cfg.max_dropped * before:
        return
    removed = {a.name: a.count for a in actions if a.name in _FIXES and a.count and (a.name != "duplicates" or
                                                                                    a.detail["policy"] == "drop")}
    what = {"missing_target": "with a missing target", "duplicates": "as exact duplicates (data.clean.duplicates: drop)",
            "missing_rows": "with missing values (data.clean.missing: drop)"}
    shown = ", ".join(f"{n} {what[name]}" for name, n in removed.items())
    worst = max(removed, key=removed.get)
    raise TrainwrightError(
        f"cleaning would remove {before - after} of {before} rows ({(before - after) / before:.0%}): {shown}; "
        f"{_FIXES[worst]}, or allow it with data.clean.max_dropped: 1"
    )
