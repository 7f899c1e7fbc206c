"""Tabular data, from ``data.source`` to tensors: load, clean, split, and preprocess fitted on the
training split only.

``prepare_tabular`` is the data stage of a run; ``TabularPreprocessor`` is the part a trained
model keeps (saved beside its weights) so that predictions see exactly the same transformation.

Example:
    >>> data = prepare_tabular(DataConfig(source="iris"))
    >>> data.task, data.x_train.shape, data.preprocessor.classes
    ('multiclass', torch.Size([103, 4]), ['setosa', 'versicolor', 'virginica'])
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, RobustScaler, StandardScaler

from trainwright.config import DataConfig
from trainwright.data.builtin import BUILTINS
from trainwright.data.clean import Cleaned, clean_table
from trainwright.data.columns import Kind, coerce_frame, numeric_values
from trainwright.data.dates import PART_TEXT, date_features, feature_names
from trainwright.data.folds import grouped_split
from trainwright.data.sources import load_source, read_table
from trainwright.data.split import (
    Split,
    SplitData,
    quantile_strata,
    split_rows,
    subset_facts,
    subset_notes,
    train_subset,
)
from trainwright.data.target import (
    LabelKind,
    Task,
    class_list,
    coerce_labels,
    encode_labels,
    infer_task,
    label_kind,
    resolve_task,
    selected_rows,
)
from trainwright.errors import TrainwrightError

__all__ = ["TabularData", "TabularPreprocessor", "TabularRows", "Task", "infer_task", "load_tabular", "prepare_tabular"]

FORMAT = 1  # version of preprocessor.json
# Types skops does not trust by itself but that a fitted ColumnTransformer of ours contains.
# Anything else in a preprocessor.skops file is refused: loading must never run foreign code.
TRUSTED_TYPES = frozenset({"numpy.dtype"})

_SCALERS = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}


def _not_a_run(directory: Path, why: str) -> TrainwrightError:
    return TrainwrightError(f"{directory} is not a trainwright run (or is damaged): {why}")


class TabularPreprocessor:
    """Feature and target transformation, fitted on the training split only.

    Numeric columns: median (or mean / most frequent) imputation, then a standard, min-max or
    robust scaler (or none). Categorical columns: most-frequent imputation, then one-hot
    (unseen categories become all zeros) or ordinal codes (unseen become -1). Date columns become
    numbers first (``data/dates.py``) and are numeric from there. Columns in ``indicated`` (missing
    often) keep that fact: numbers get a missing-value indicator column beside the imputed value
    (scikit-learn's ``add_indicator``), categories a ``(missing)`` category of their own.
    Regression targets are standardized when ``scale_target``; class labels become indices into ``classes``.

    Example:
        >>> pre = TabularPreprocessor("y", "binary", {"a": "numeric", "b": "categorical"},
        ...                           classes=["no", "yes"], label_kind="str").fit(frame, frame["y"])
        >>> pre.transform(frame).shape, pre.encode_target(frame["y"])[:3]
        ((4, 3), array([0, 1, 1]))
    """

    def __init__(
        self,
        target: str,
        task: Task,
        kinds: dict[str, Kind],
        *,
        classes: list | None = None,
        label_kind: LabelKind = "str",
        numeric: str = "standard",
        categorical: str = "onehot",
        impute_numeric: str = "median",
        scale_target: bool = True,
        dtypes: dict[str, str] | None = None,
        indicated: list[str] | tuple[str, ...] = (),
        dates: dict[str, list[str]] | None = None,
    ) -> None:
        self.target = target
        self.task: Task = task
        self.kinds = dict(kinds)
        self.feature_columns = list(kinds)
        self.classes = list(classes or []) if task != "regression" else []
        self.label_kind: LabelKind = label_kind
        self.numeric = numeric
        self.categorical = categorical
        self.impute_numeric = impute_numeric
        self.scale_target = scale_target
        self.dtypes = dict(dtypes or {})
        self.indicated = list(indicated)
        self.dates = {column: list(parts) for column, parts in (dates or {}).items()}
        # Learned by fit:
        self.target_mean = 0.0
        self.target_std = 1.0
        self.n_features = 0
        self.feature_names: list[str] = []
        self._transformer: ColumnTransformer | None = None

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.task == "multiclass" else 1

    # ── fitting ──────────────────────────────────────────────────────────────────────────
    def _build(self) -> ColumnTransformer:
        def numeric_steps(indicate: bool) -> Pipeline:
            imputer = SimpleImputer(strategy=self.impute_numeric, keep_empty_features=True, add_indicator=indicate)
            scale = [("scale", _SCALERS[self.numeric]())] if self.numeric != "none" else []
            return Pipeline([("impute", imputer), *scale])

        def categorical_steps(indicate: bool) -> Pipeline:
            if self.categorical == "onehot":
                encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
            else:
                encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
            imputer = (SimpleImputer(strategy="constant", fill_value="(missing)", keep_empty_features=True) if indicate
                       else SimpleImputer(strategy="most_frequent", keep_empty_features=True))
            return Pipeline([("impute", imputer), ("encode", encoder)])

        numeric: list[str] = []
        for column, kind in self.kinds.items():
            if kind == "numeric":
                numeric.append(column)
            elif kind == "date":
                numeric += feature_names(column, self.dates[column])
        # A date column's indicator rides on its elapsed days: one indicator per date, not one per part.
        indicated = {*self.indicated, *(f"{column}.days" for column in self.indicated if column in self.dates)}
        categorical = [column for column, kind in self.kinds.items() if kind == "categorical"]
        parts = [
            ("numeric", numeric_steps(False), [c for c in numeric if c not in indicated]),
            ("numeric_missing", numeric_steps(True), [c for c in numeric if c in indicated]),
            ("categorical", categorical_steps(False), [c for c in categorical if c not in indicated]),
            ("categorical_missing", categorical_steps(True), [c for c in categorical if c in indicated]),
        ]
        return ColumnTransformer([part for part in parts if part[2]], remainder="drop")

    def _features(self, frame: pd.DataFrame, training: bool) -> pd.DataFrame:
        """The feature columns coerced to their kinds, each date column replaced by its numbers."""
        features = coerce_frame(frame.reset_index(drop=True), self.kinds, training)
        if not self.dates:
            return features
        expanded = [date_features(features[c], c, self.dates[c]) if c in self.dates else features[[c]] for c in features]
        return pd.concat(expanded, axis=1)

    def fit(self, frame: pd.DataFrame, y: pd.Series) -> TabularPreprocessor:
        """Fit on the training rows: the feature transformer and, for regression, the target scale."""
        if not self.feature_columns:
            raise TrainwrightError("there are no feature columns to fit on")
        features = self._features(frame, training=True)
        self._transformer = self._build().fit(features)
        self.feature_names = [str(name) for name in self._transformer.get_feature_names_out()]
        self.n_features = len(self.feature_names)
        if self.task == "regression" and self.scale_target:
            values = numeric_values(pd.Series(y).reset_index(drop=True), self.target)
            std = float(np.nanstd(values))
            self.target_mean = float(np.nanmean(values))
            # A constant training target (possible on a tiny split) keeps unit scale.
            self.target_std = std if std > 0 else 1.0
        return self

    # ── applying ─────────────────────────────────────────────────────────────────────────
    def transform(self, frame: pd.DataFrame, training: bool = False) -> np.ndarray:
        """Features as float32 (N, n_features); coerced and checked exactly as at fit time (``training``:
        the rows are the training data's, so a message may suggest a training option)."""
        if self._transformer is None:
            raise TrainwrightError("the preprocessor is not fitted; call fit() or load() first")
        absent = [column for column in self.feature_columns if column not in frame.columns]
        if absent:
            raise TrainwrightError(
                f"the data lack column{'s' if len(absent) > 1 else ''} {', '.join(map(repr, absent))} that the model "
                f"was trained on; it expects {', '.join(self.feature_columns)}"
            )
        features = self._features(frame, training)
        x = np.asarray(self._transformer.transform(features), dtype=np.float32)  # (N, n_features)
        if not np.isfinite(x).all():
            # Finite inputs can still overflow float32 (|x| > 3e38) when numeric: none.
            bad = [self.feature_names[j] for j in np.flatnonzero(~np.isfinite(x).all(axis=0))]
            fix = ("use data.preprocess.numeric: standard or rescale those columns" if training
                   else "those values lie far outside what the model was trained on; check them")
            raise TrainwrightError(f"values in {', '.join(bad[:5])} are too large for float32 after preprocessing; {fix}")
        return x

    def categories(self) -> dict[str, list[str]]:
        """Each categorical feature column's categories as the encoder learned them from the training rows.

        A value outside them is one-hot encoded as all zeros (or ordinal -1): the model never saw it.
        """
        if self._transformer is None or "categorical" not in self._transformer.named_transformers_:
            return {}
        encoder = self._transformer.named_transformers_["categorical"].named_steps["encode"]
        columns = [column for column, kind in self.kinds.items() if kind == "categorical"]
        return {column: [str(value) for value in values] for column, values in zip(columns, encoder.categories_, strict=True)}

    def onehot_spans(self) -> list[tuple[int, int]]:
        """Where each one-hot encoded column's block lies in ``transform``'s output: [(start, end), ...].

        The numeric columns come first, then each categorical column's categories (``categories()``).
        """
        if self.categorical != "onehot":
            return []
        start, spans = sum(kind == "numeric" for kind in self.kinds.values()), []
        for values in self.categories().values():
            spans.append((start, start + len(values)))
            start += len(values)
        return spans

    def inverse_transform(self, x: np.ndarray) -> pd.DataFrame:
        """Features (N, n_features) as ``transform`` makes them -> rows in the original units and categories.

        A one-hot block becomes its largest entry's category (so generated, soft blocks map back too); an
        ordinal code is rounded to the nearest category. Imputation is not undone: a missing value stays filled.

        Example:
            >>> pre.inverse_transform(pre.transform(frame))   # frame's feature columns, missing values imputed
        """
        if self._transformer is None:
            raise TrainwrightError("the preprocessor is not fitted; call fit() or load() first")
        x = np.asarray(x, dtype=np.float64)
        numeric = [column for column, kind in self.kinds.items() if kind == "numeric"]
        out: dict[str, np.ndarray] = {}
        if numeric:
            block = x[:, : len(numeric)]
            steps = self._transformer.named_transformers_["numeric"].named_steps
            if "scale" in steps:
                block = steps["scale"].inverse_transform(block)
            out.update({column: block[:, j] for j, column in enumerate(numeric)})
        categories = self.categories()
        if categories:
            encoder = self._transformer.named_transformers_["categorical"].named_steps["encode"]
            if self.categorical == "onehot":
                codes = np.column_stack([x[:, a:b].argmax(axis=1) for a, b in self.onehot_spans()])  # (N, categorical)
            else:
                sizes = np.array([len(values) for values in categories.values()])
                codes = np.clip(np.rint(x[:, len(numeric):]), 0, sizes - 1).astype(np.int64)
            decoded = [np.asarray(values, dtype=object)[codes[:, j]] for j, values in enumerate(encoder.categories_)]
            out.update({column: decoded[j] for j, column in enumerate(categories)})
        return pd.DataFrame({column: out[column] for column in self.feature_columns})

    def inputs(self, data: pd.DataFrame | str | Path) -> tuple[pd.DataFrame, np.ndarray]:
        """(the rows, their features): ``data`` is a frame or a table file (read by its suffix)."""
        frame = data if isinstance(data, pd.DataFrame) else read_table(data)
        return frame, self.transform(frame)

    def encode_target(self, y: pd.Series) -> np.ndarray:
        """Classification: int64 (N,) class indices. Regression: float32 (N, 1), scaled if fitted so."""
        y = (y if isinstance(y, pd.Series) else pd.Series(np.asarray(y), name=self.target)).reset_index(drop=True)
        if self.task != "regression":
            return encode_labels(coerce_labels(y, self.label_kind, self.target), self.classes, self.target)
        values = numeric_values(y, self.target)
        if np.isnan(values).any():
            raise TrainwrightError(
                f"target {self.target!r} has {int(np.isnan(values).sum())} missing values; fill or remove those rows"
            )
        return ((values - self.target_mean) / self.target_std).astype(np.float32).reshape(-1, 1)

    def decode_target(self, values: np.ndarray) -> np.ndarray:
        """Inverse of ``encode_target``: class indices -> labels; scaled values -> original units (N,)."""
        values = np.asarray(values)
        if self.task != "regression":
            return np.asarray(self.classes)[values.reshape(-1).astype(np.int64)]
        return values.reshape(-1).astype(np.float64) * self.target_std + self.target_mean

    # ── saving ───────────────────────────────────────────────────────────────────────────
    def facts(self) -> dict:
        """Everything but the fitted transformer, as plain JSON-able data (preprocessor.json)."""
        return {
            "format": FORMAT,
            "modality": "tabular",
            "target": self.target,
            "task": self.task,
            "classes": self.classes,
            "label_kind": self.label_kind,
            "feature_columns": self.feature_columns,
            "kinds": self.kinds,
            "dtypes": self.dtypes,
            "numeric": self.numeric,
            "categorical": self.categorical,
            "impute_numeric": self.impute_numeric,
            "scale_target": self.scale_target,
            "indicated": self.indicated,
            "dates": self.dates,
            "target_mean": self.target_mean,
            "target_std": self.target_std,
            "n_features": self.n_features,
            "feature_names": self.feature_names,
            "sklearn_version": sklearn.__version__,
        }

    def files(self) -> dict[str, str | bytes]:
        """What a run directory keeps: ``preprocessor.skops`` (the fitted transformer) and ``preprocessor.json``."""
        import skops.io  # heavy: loaded when a run is written or read, not on import

        if self._transformer is None:
            raise TrainwrightError("the preprocessor is not fitted; there is nothing to save")
        return {
            "preprocessor.skops": skops.io.dumps(self._transformer),
            "preprocessor.json": json.dumps(self.facts(), indent=2) + "\n",
        }

    @classmethod
    def load(cls, directory: Path) -> TabularPreprocessor:
        """Load what ``files`` gave the run directory, without pickle: skops refuses types outside ``TRUSTED_TYPES``."""
        import skops.io  # heavy: loaded when a run is read, not on import

        directory = Path(directory)
        facts_path, skops_path = directory / "preprocessor.json", directory / "preprocessor.skops"
        for path in (facts_path, skops_path):
            if not path.is_file():
                raise _not_a_run(directory, f"{path.name} is missing")
        try:
            facts = json.loads(facts_path.read_text(encoding="utf-8"))
            pre = cls(
                facts["target"],
                facts["task"],
                facts["kinds"],
                classes=facts["classes"],
                label_kind=facts["label_kind"],
                numeric=facts["numeric"],
                categorical=facts["categorical"],
                impute_numeric=facts["impute_numeric"],
                scale_target=facts["scale_target"],
                dtypes=facts["dtypes"],
                indicated=facts.get("indicated", []),
                dates=facts.get("dates", {}),
            )
            pre.target_mean, pre.target_std = float(facts["target_mean"]), float(facts["target_std"])
            pre.n_features, pre.feature_names = int(facts["n_features"]), list(facts["feature_names"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
            raise _not_a_run(directory, f"preprocessor.json is unreadable ({type(error).__name__}: {error})") from None
        data = skops_path.read_bytes()
        try:
            untrusted = skops.io.get_untrusted_types(data=data)
        except Exception as error:  # noqa: BLE001 - a damaged zip or schema: skops raises many types
            raise _not_a_run(directory, f"preprocessor.skops is unreadable ({type(error).__name__})") from None
        refused = [name for name in untrusted if name not in TRUSTED_TYPES]
        if refused:
            raise TrainwrightError(
                f"refusing to load untrusted type {refused[0]} from {skops_path}"
                + (f" (and {len(refused) - 1} more)" if len(refused) > 1 else "")
                + "; trainwright writes only scikit-learn and numpy types there, so the file was not written by it"
            )
        try:
            transformer = skops.io.loads(data, trusted=list(untrusted))
        except Exception as error:  # noqa: BLE001 - a damaged file can fail in many ways
            raise _not_a_run(directory, f"preprocessor.skops is unreadable ({type(error).__name__})") from None
        if not isinstance(transformer, ColumnTransformer):
            raise _not_a_run(directory, f"preprocessor.skops holds a {type(transformer).__name__}, not a ColumnTransformer")
        pre._transformer = transformer
        return pre


@dataclass(frozen=True)
class TabularData(SplitData):
    """x: float32 (N, F); y: int64 (N,) class indices, or float32 (N, 1) scaled regression targets."""

    preprocessor: TabularPreprocessor
    task: Task

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One example's shape as the model sees it: (features,)."""
        return (self.preprocessor.n_features,)

    def report_lines(self) -> list[str]:
        """Short console lines: the table, each cleaning action with its count, the split, notes."""
        s = self.summary
        inferred = ", inferred" if s["task_from"] == "inferred" else ""
        lines = [
            (f"{self.name}: {s['rows']['raw']} rows x {s['columns_raw']} columns; target {s['target']!r} ({self.task}{inferred})")
        ]
        # Column drops are listed with the columns below; rows and cells here.
        column_actions = ("constant_columns", "identifier_columns", "missing_columns")
        lines += [action["message"] for action in s["cleaning"] if action["count"] and action["action"] not in column_actions]
        lines += column_lines(s["columns"])
        f = s["features"]
        n_columns = f["numeric"] + f["categorical"] + f.get("date", 0)
        lines.append(
            f"{s['rows']['after_cleaning']} rows; {n_columns} feature column{'s' if n_columns != 1 else ''} "
            f"-> {f['width']} input{'s' if f['width'] != 1 else ''}"
        )
        if s["classes"]:
            counts = s["class_balance"]["all"]
            shown = ", ".join(f"{label} {count}" for label, count in list(counts.items())[:10])
            lines.append(f"classes ({len(counts)}): {shown}{', ...' if len(counts) > 10 else ''}")
        split = s["split"]
        if split["held_out"]:
            how = (
                ("stratified on target quantiles" if self.task == "regression" else "stratified")
                if split["stratified"]
                else "shuffled"
            )
            grouped = "; identical rows kept together" if split.get("groups") is not None else ""
            lines.append(
                f"split {split['fractions']} ({how}, seed {split['seed']}{grouped}): "
                f"train {split['train']}, val {split['val']}, test {split['test']} rows"
            )
        lines += s["notes"]
        return lines


def _names(items: list[str], most: int = 8) -> str:
    return ", ".join(items[:most]) + (f", ... ({len(items) - most} more)" if len(items) > most else "")


def column_lines(columns: dict[str, dict]) -> list[str]:
    """One console line per kind of column (data.json's ``columns``): numeric, categorical with their
    number of categories, date with the numbers it becomes, dropped with why.

    Example:
        >>> column_lines({"age": {"kind": "numeric"}, "id": {"kind": "dropped", "reason": "identifier (...)"}})
        ['numeric (1): age', 'dropped (1): id (identifier (...))']
    """
    by_kind: dict[str, list[str]] = {"numeric": [], "categorical": [], "date": [], "dropped": []}
    for name, entry in columns.items():
        kind = entry.get("kind")
        indicated = bool(entry.get("indicator"))
        if kind == "numeric":
            by_kind["numeric"].append(name + (" (+ a missing indicator)" if indicated else ""))
        elif kind == "categorical":
            n = entry.get("categories")
            text = f"{n} categor{'y' if n == 1 else 'ies'}" + (" + 'missing'" if indicated else "")
            by_kind["categorical"].append(f"{name} ({text})" if n else name)
        elif kind == "date":
            parts = [PART_TEXT[p] for p in entry.get("parts", [])] + (["a missing indicator"] if indicated else [])
            by_kind["date"].append(f"{name} -> {', '.join(parts)}")
        elif kind == "dropped":
            by_kind["dropped"].append(f"{name} ({entry.get('reason', 'unused')})")  # reasons hold no parentheses
    return [f"{kind} ({len(items)}): {_names(items)}" for kind, items in by_kind.items() if items]


def _resolve_columns(frame: pd.DataFrame, cfg: DataConfig, target: str | None, name: str) -> tuple[str, list[str], dict]:
    """The target, the candidate feature columns, and columns the config left out (with why)."""
    columns = list(frame.columns)
    listed = ", ".join(columns)
    if target is None:
        raise TrainwrightError(f"data.target is not set: name the column of {name} to predict; columns are: {listed}")
    if target not in frame.columns:
        hint = ""
        found = next((sep for sep in ";|\t" if len(columns) == 1 and sep in columns[0]), None)
        if found:
            hint = f" (the file seems to use another delimiter than the one its suffix implies: set data.delimiter: {found!r})"
        raise TrainwrightError(f"target column {target!r} is not in {name}; columns are: {listed}{hint}")
    for key, names in (("features", cfg.features or []), ("drop_columns", cfg.drop_columns)):
        absent = [column for column in names if column not in frame.columns]
        if absent:
            raise TrainwrightError(
                f"data.{key} names column{'s' if len(absent) > 1 else ''} {', '.join(map(repr, absent))} "
                f"not in {name}; columns are: {listed}"
            )
        if target in names:
            raise TrainwrightError(f"data.{key} lists the target {target!r}; remove it from data.{key}")
    left_out = {column: "data.drop_columns" for column in cfg.drop_columns}
    if cfg.features is not None:
        left_out.update({c: "not in data.features" for c in columns if c != target and c not in cfg.features})
        candidates = [c for c in cfg.features if c not in cfg.drop_columns]
    else:
        candidates = [c for c in columns if c != target and c not in cfg.drop_columns]
    return target, list(dict.fromkeys(candidates)), left_out


def _counts(labels: np.ndarray, classes: list) -> dict[str, int]:
    index = pd.Index(classes).get_indexer(labels)
    return {str(label): int(count) for label, count in zip(classes, np.bincount(index, minlength=len(classes)))}


def _summary(
    cfg: DataConfig,
    frame: pd.DataFrame,
    name: str,
    target: str,
    cleaned: Cleaned,
    left_out: dict[str, str],
    pre: TabularPreprocessor,
    split: Split,
    labels: np.ndarray | None,
) -> dict:
    """The run's data.json: plain, deterministic facts (a resumed run compares them)."""
    columns: dict[str, dict] = {}
    for column in frame.columns:
        entry: dict = {"dtype": str(frame[column].dtype)}
        if column == target:
            entry["kind"] = "target"
        elif column in cleaned.kinds:
            entry.update(kind=cleaned.kinds[column], missing=cleaned.missing.get(column, 0))
            if cleaned.kinds[column] == "categorical":
                entry["categories"] = int(cleaned.frame[column].nunique())
            elif cleaned.kinds[column] == "date":
                entry["parts"] = cleaned.dates[column]
            if column in cleaned.indicated:
                entry["indicator"] = True
        else:
            entry.update(kind="dropped", reason=cleaned.dropped.get(column) or left_out.get(column, "unused"))
        columns[column] = entry
    kinds = list(cleaned.kinds.values())
    class_balance = {}
    if labels is not None:
        parts = (("all", np.arange(len(labels))), ("train", split.train), ("val", split.val), ("test", split.test))
        class_balance = {part: _counts(labels[positions], pre.classes) for part, positions in parts}
    return {
        "source": cfg.source,
        "name": name,
        "target": target,
        "task": pre.task,
        "task_from": "inferred" if cfg.task == "auto" else "data.task",
        "rows": {"raw": len(frame), "after_cleaning": len(cleaned.frame)},
        "columns_raw": int(frame.shape[1]),
        "columns": columns,
        "cleaning": [action.to_dict() for action in cleaned.actions],
        "features": {
            "numeric": kinds.count("numeric"),
            "categorical": kinds.count("categorical"),
            **({"date": kinds.count("date")} if "date" in kinds else {}),
            "width": pre.n_features,
        },
        "classes": pre.classes,
        "class_balance": class_balance,
        "split": split.facts(cfg.split),
        "notes": list(split.notes),
    }


@dataclass(frozen=True, eq=False)
class TabularRows:
    """A table loaded and cleaned, not yet split: what ``split`` divides and ``prepare`` turns into tensors.

    Splitting apart from preparing lets k-fold, repeated and grouped splits reuse the same preparation:
    ``prepare(split)`` fits every statistic (imputation, scaling, encoding, the target's scale) on
    ``split.train`` only.
    """

    cfg: DataConfig
    frame: pd.DataFrame  # as loaded, for data.json's column facts
    name: str
    target: str
    cleaned: Cleaned
    left_out: dict[str, str]
    rows: pd.DataFrame  # cleaned rows (data.classes applied); its index is the row's place in the source
    task: Task
    classes: list
    labels: np.ndarray | None  # original class labels (None for regression)
    label_kind: LabelKind

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def strata(self) -> np.ndarray | None:
        """Classes are the strata; a regression target is stratified on its quantile bins."""
        if self.task != "regression":
            return self.labels
        return quantile_strata(pd.to_numeric(self.rows[self.target]).to_numpy(np.float64), self.cfg.split)

    @property
    def groups(self) -> np.ndarray | None:
        """(rows,) group numbers when identical rows are kept together (``data.clean.duplicates``), else None."""
        if self.cleaned.duplicates != "group":
            return None
        return self.rows.groupby(list(self.rows.columns), dropna=False, sort=False).ngroup().to_numpy()

    def split(self) -> Split:
        """The configured split (``data.split``, then ``data.train_fraction``); identical rows grouped when cleaning says so."""
        if self.cfg.split.groups:  # every group on one side (data/folds.py)
            return grouped_split(self, self.cfg)
        strata = self.strata
        split = split_rows(len(self.rows), strata, self.cfg.split, groups=self.groups)
        return train_subset(split, strata, self.cfg.train_fraction, self.cfg.split.seed)

    def prepare(self, split: Split) -> TabularData:
        """Fit the preprocessing on ``split.train`` and turn each part into tensors."""
        import torch  # lazy, a heavy dependency: predicting from an export uses this module without torch

        cfg, rows, target = self.cfg, self.rows, self.target
        y = rows[target]
        features = rows[list(self.cleaned.kinds)]
        pre = TabularPreprocessor(
            target,
            self.task,
            self.cleaned.kinds,
            classes=self.classes,
            label_kind=self.label_kind,
            numeric=cfg.preprocess.numeric,
            categorical=cfg.preprocess.categorical,
            impute_numeric=cfg.clean.impute_numeric,
            scale_target=cfg.preprocess.scale_target,
            dtypes={column: str(self.frame[column].dtype) for column in self.cleaned.kinds},
            indicated=self.cleaned.indicated,
            dates=self.cleaned.dates,
        ).fit(features.iloc[split.train], y.iloc[split.train])

        def tensors(positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            x = torch.from_numpy(pre.transform(features.iloc[positions], training=True))  # (N, F) float32
            return x, torch.from_numpy(pre.encode_target(y.iloc[positions]))  # (N,) int64 or (N, 1) float32

        x_train, y_train = tensors(split.train)
        x_val, y_val = (x_train, y_train) if split.val is split.train else tensors(split.val)
        x_test, y_test = (x_val, y_val) if split.test is split.val else tensors(split.test)

        before, kept = len(self.cleaned.frame), len(rows)
        summary = {
            **_summary(cfg, self.frame, self.name, target, self.cleaned, self.left_out, pre, split, self.labels),
            **subset_facts(cfg, before, kept),
        }
        summary["notes"] = subset_notes(cfg, before, kept) + summary["notes"]
        return TabularData(x_train, y_train, x_val, y_val, x_test, y_test, pre, self.task, self.name, split.held_out, summary)


def load_tabular(cfg: DataConfig) -> TabularRows:
    """Load and clean ``cfg.source``, keep ``data.classes``, settle the task and the classes."""
    frame, default_target, name = load_source(cfg.source, encoding=cfg.encoding, delimiter=cfg.delimiter)
    target, candidates, left_out = _resolve_columns(frame, cfg, cfg.target or default_target, name)
    cleaned = clean_table(frame[[*candidates, target]], target, cfg.clean)
    rows = cleaned.frame  # its index is the row's place in the source, for messages; splits use positions
    y = rows[target]
    if cfg.classes is not None:  # before the task is inferred: two classes kept make a binary task
        if cfg.task == "regression":
            raise TrainwrightError("data.classes keeps rows by class label; it does not apply to data.task: regression")
        rows = rows[selected_rows(coerce_labels(y, label_kind(y), target), cfg.classes, target)]
        y = rows[target]
    builtin = BUILTINS.get(cfg.source) if isinstance(cfg.source, str) else None
    declared = builtin is not None and cfg.task == "auto" and cfg.classes is None and target == builtin.target
    task = resolve_task(y, builtin.task if declared else cfg.task, target)  # the grid's 25 integer modes are classes
    classes: list = []
    labels = None
    kind: LabelKind = "str"
    if task != "regression":
        kind = label_kind(y)
        labels = coerce_labels(y, kind, target)
        classes = class_list(labels)
    return TabularRows(cfg, frame, name, target, cleaned, left_out, rows, task, classes, labels, kind)


def prepare_tabular(cfg: DataConfig) -> TabularData:
    """Load, clean, split and preprocess ``cfg.source`` into CPU tensors; every step is reported.

    Example:
        >>> data = prepare_tabular(DataConfig(source="linear"))
        >>> data.held_out, data.report_lines()[-1]
        (False, '6 rows are too few to split 70/15/15: training on all rows; the metrics below are training metrics')
    """
    rows = load_tabular(cfg)
    return rows.prepare(rows.split())
