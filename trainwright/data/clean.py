"""Cleaning a table before it is split, every action counted so it can be reported.

In order: type each column (junk text, infinities and all-missing columns are errors); drop rows
whose target is missing; drop constant columns (one distinct non-missing value) and
identifier-like text columns (at least 20 rows and distinct values in at least 95% of them:
names, ids, free text, which a model can only memorize); drop exact duplicate rows, so that no
row sits on both sides of the split; then drop rows with missing features (``missing: drop``)
or count the missing cells that the fitted imputer will fill (``missing: impute``).

Example:
    >>> cleaned = clean_table(frame, "price", CleanConfig())
    >>> [action.message for action in cleaned.actions if action.count]
    ['dropped 3 duplicate rows']
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from trainwright.config import CleanConfig
from trainwright.data.columns import Kind, coerce_column, column_kind
from trainwright.errors import TrainwrightError

ID_MIN_ROWS = 20
ID_DISTINCT_SHARE = 0.95


@dataclass(frozen=True)
class Action:
    name: str  # duplicates | missing_target | constant_columns | identifier_columns | missing_values | missing_rows
    count: int  # rows or columns dropped, or cells imputed
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


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _show(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value)


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
            dropped[column] = f"constant (always {_show(value)})"
        shown = ", ".join(f"{column} (always {_show(value)})" for column, value in constant.items())
        actions.append(Action("constant_columns", len(constant),
                              f"dropped {_plural(len(constant), 'constant column')}: {shown}",
                              {"columns": list(constant)}))
    rows = len(typed)
    identifiers = {}
    if rows >= ID_MIN_ROWS:
        for column in features:
            distinct = typed[column].nunique(dropna=True)
            if kinds[column] == "categorical" and column not in dropped and distinct >= ID_DISTINCT_SHARE * rows:
                identifiers[column] = distinct
                dropped[column] = f"identifier-like text ({distinct} distinct values in {rows} rows)"
    shown = ", ".join(f"{column} ({distinct} distinct values in {rows} rows)" for column, distinct in identifiers.items())
    actions.append(Action("identifier_columns", len(identifiers),
                          f"dropped {_plural(len(identifiers), 'identifier-like text column')}, "
                          f"which a model could only memorize: {shown}", {"columns": list(identifiers)}))
    kinds = {column: kind for column, kind in kinds.items() if column not in dropped}
    if not kinds:
        raise TrainwrightError(
            f"no feature columns are left after cleaning ({', '.join(f'{c}: {why}' for c, why in dropped.items())}); "
            f"the table needs at least one column besides the target {target!r} that varies"
        )
    typed = typed[[*kinds, target]]

    if cfg.drop_duplicates:
        duplicate = typed.duplicated(keep="first").to_numpy()
        typed = typed[~duplicate]
        actions.append(Action("duplicates", int(duplicate.sum()),
                              f"dropped {_plural(int(duplicate.sum()), 'duplicate row')} (exact copies of earlier rows)"))

    missing = {column: int(count) for column, count in typed[list(kinds)].isna().sum().items() if count}
    shown = ", ".join(f"{column} {count}" for column, count in missing.items())
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
        actions.append(Action("missing_values", cells,
                              f"{_plural(cells, 'missing value')} to impute ({cfg.impute_numeric} for numbers, "
                              f"most frequent for categories, fitted on the training split): {shown}",
                              {"cells": missing}))
    return Cleaned(typed, kinds, dropped, tuple(actions), missing)

