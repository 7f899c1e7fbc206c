"""Where a table comes from: a built-in data set name or a file (CSV, TSV, Parquet, JSON lines).

Example:
    >>> frame, target, name = load_source("iris")
    >>> target, name
    ('species', 'iris')
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from trainwright.data.builtin import BUILTINS
from trainwright.data.encoding import file_encoding
from trainwright.errors import TrainwrightError

# Suffix -> (format name, reader). Compressed text files (data.csv.gz) are read through pandas'
# own compression support, so only the suffix before the compression one decides the format.
# ``text`` is how text formats are decoded (``encoding``, ``encoding_errors``): bytes the encoding
# cannot read are "strict" (an error) for tables, "replace" (U+FFFD) for text data, whose cleaning
# counts and reports them.
_READERS = {
    ".csv": ("CSV", lambda path, **text: pd.read_csv(path, **text)),
    ".tsv": ("TSV", lambda path, **text: pd.read_csv(path, **{"sep": "\t", **text})),
    ".parquet": ("Parquet", lambda path: pd.read_parquet(path)),
    ".pq": ("Parquet", lambda path: pd.read_parquet(path)),
    ".jsonl": ("JSON lines", lambda path: pd.read_json(path, lines=True)),
    ".ndjson": ("JSON lines", lambda path: pd.read_json(path, lines=True)),
}
_COMPRESSION = {".gz", ".bz2", ".xz", ".zst", ".zip"}


def _read_errors() -> tuple[type[BaseException], ...]:
    """What a reader raises on a corrupt or unreadable file (pyarrow's own errors included)."""
    errors: list[type[BaseException]] = [ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError]
    try:
        import pyarrow

        errors.append(pyarrow.ArrowException)
    except ImportError:  # pragma: no cover - pyarrow is a dependency, but parquet is optional
        pass
    return tuple(errors)


def read_table(
    path: str | Path, encoding_errors: str = "strict", encoding: str = "auto", delimiter: str | None = None
) -> pd.DataFrame:
    """Read a CSV, TSV, Parquet or JSON-lines table, chosen by the file's suffix (CSV and TSV are
    decoded as ``data/encoding.py`` says: a byte-order mark, else ``encoding``, ``auto`` being UTF-8;
    ``delimiter``: a CSV or TSV file's own, such as ``;``, ``data.delimiter``).

    Every problem a user can fix (missing file, a directory, unknown suffix, a corrupt file, a
    table without rows or columns) is a one-line TrainwrightError.

    Example:
        >>> read_table("data/houses.csv").columns.tolist()
        ['rooms', 'area', 'price']
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise TrainwrightError(f"data file {path} does not exist; check the path in data.source")
    if path.is_dir():
        raise TrainwrightError(f"data.source {path} is a directory; point it at a table file (.csv, .parquet, .jsonl)")
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION and suffixes[-2:-1] != [".parquet"]:
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix not in _READERS:
        known = ", ".join(sorted(_READERS))
        raise TrainwrightError(f"cannot read {path}: unknown file type {suffix or '(no suffix)'!r}; use one of {known}")
    kind, reader = _READERS[suffix]
    text = {"encoding": file_encoding(path, encoding), "encoding_errors": encoding_errors} if kind in ("CSV", "TSV") else {}
    if delimiter is not None:
        if kind not in ("CSV", "TSV"):
            raise TrainwrightError(f"data.delimiter applies to CSV and TSV files; {path} is {kind}: remove data.delimiter")
        text["sep"] = delimiter
    try:
        frame = reader(path, **text)
    except pd.errors.EmptyDataError:
        raise TrainwrightError(f"data file {path} is empty; it needs a header row and at least one data row") from None
    except _read_errors() as error:
        detail = (" ".join(str(error).split()) or type(error).__name__)[:300]
        if isinstance(error, UnicodeDecodeError):
            detail += "; if the file is not UTF-8, set data.encoding (e.g. latin-1, cp1252 or utf-16)"
        raise TrainwrightError(f"cannot read {path} as {kind}: {detail}") from None
    if frame.shape[1] == 0:
        raise TrainwrightError(f"data file {path} has no columns; it needs a header row and at least one data row")
    if frame.shape[0] == 0:
        raise TrainwrightError(f"data file {path} has a header but no rows; add at least one data row")
    # Column names are used as config keys and in messages: make them strings.
    frame.columns = [str(column) for column in frame.columns]
    return frame


Rows = pd.DataFrame | str | Path | dict | list  # what predict and evaluate take: see ``as_table``


def as_table(data: Rows, delimiter: str | None = None, encoding: str = "auto") -> pd.DataFrame | str | Path:
    """A frame as given; a dict of columns or a list of rows as a frame; a table file read with the
    run's ``delimiter`` and ``encoding`` (``data.delimiter``, ``data.encoding``) when it has either, else
    left as a path for the preprocessor to read (an image folder, a table of image paths); anything
    else a clear error.

    Example:
        >>> as_table({"size": [3.1, 2.0], "color": ["red", "blue"]}).shape
        (2, 2)
    """
    if isinstance(data, str | Path):
        if (delimiter or encoding != "auto") and Path(data).is_file():
            return read_table(data, encoding=encoding, delimiter=delimiter)
        return data
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        scalars = all(np.ndim(value) == 0 for value in data.values())
        try:
            return pd.DataFrame([data] if scalars else data)
        except ValueError as error:  # columns of different lengths
            raise TrainwrightError(
                f"the dict of columns does not make a table ({error}); give every column as many values"
            ) from None
    if isinstance(data, list | tuple) and all(isinstance(row, dict) for row in data) and data:
        return pd.DataFrame(list(data))
    raise TrainwrightError(
        f"cannot predict from a {type(data).__name__}: pass a pandas DataFrame, a table file, a dict of columns "
        "({'size': [3.1, 2.0]}) or a list of rows ([{'size': 3.1}, ...])"
    )


def load_source(
    source: str, encoding_errors: str = "strict", encoding: str = "auto", delimiter: str | None = None
) -> tuple[pd.DataFrame, str | None, str]:
    """Load ``data.source``: returns (frame, the built-in's target or None, a display name).

    Rows are renumbered 0..N-1, so a row number in a message is the row's place in the file
    (counting from 1, after the header).

    Example:
        >>> frame, target, name = load_source("data/houses.csv")
        >>> target, name
        (None, 'houses')
    """
    if source in BUILTINS:
        builtin = BUILTINS[source]
        return builtin.load().reset_index(drop=True), builtin.target, builtin.name
    path = Path(source).expanduser()
    if not path.exists() and not path.suffix and len(path.parts) == 1:
        names = ", ".join(BUILTINS)
        raise TrainwrightError(f"data.source {source!r} is neither a built-in data set ({names}) nor an existing file")
    frame = read_table(path, encoding_errors, encoding, delimiter)
    name = path.stem  # houses.csv -> houses; houses.csv.gz -> houses
    if path.suffix.lower() in _COMPRESSION and Path(name).suffix.lower() in _READERS:
        name = Path(name).stem
    return frame.reset_index(drop=True), None, name


def load_sequence_table(
    source: str, column: str | None, role: str, encoding: str = "auto", delimiter: str | None = None
) -> tuple[pd.DataFrame, str | None, str, str]:
    """A text or series table: (frame, the built-in's target or None, its ``role`` column, display name).

    ``role`` is ``text`` or ``time``; ``column`` defaults to the built-in's own and must be in the table.
    Text tables are read with invalid UTF-8 bytes replaced by U+FFFD (text cleaning counts them).
    """
    frame, default_target, name = load_source(source, "replace" if role == "text" else "strict", encoding, delimiter)
    builtin = BUILTINS.get(source)
    column = column or (getattr(builtin, f"{role}_column") if builtin else None)
    if column not in frame.columns:
        listed = ", ".join(map(str, frame.columns))
        raise TrainwrightError(f"{role} column {column!r} is not in {name}; columns are: {listed}")
    return frame, default_target, column, name
