"""Where texts come from, and their cleaning: a table's text column, a folder of ``.txt`` files
per class, or a text built-in; NUL bytes, invalid UTF-8, empty and over-long texts, each counted.

Example:
    >>> raw = load_texts(DataConfig(source="word-order"))
    >>> raw.frame.columns.tolist(), raw.kind
    (['text', 'label'], 'builtin')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from trainwright.config import DataConfig
from trainwright.data.builtin import BUILTINS
from trainwright.data.columns import column_kind
from trainwright.data.encoding import decode_text
from trainwright.data.sources import load_sequence_table
from trainwright.errors import TrainwrightError


@dataclass
class RawTexts:
    frame: pd.DataFrame  # the text column and the target column, rows as found
    text_column: str
    target: str
    name: str
    kind: str  # table | folder | builtin
    # Counted while reading: files whose bytes were not valid UTF-8 (decoded with U+FFFD in their place).
    invalid_utf8: list[str] = field(default_factory=list)


def load_texts(cfg: DataConfig) -> RawTexts:
    """The texts and labels ``cfg.source`` names, not yet cleaned."""
    source = Path(cfg.source).expanduser()
    if cfg.source not in BUILTINS and source.is_dir():
        return _read_folder(source, cfg.target or "label", cfg.encoding)
    frame, default_target, text_column, name = load_sequence_table(
        cfg.source, cfg.text_column, "text", cfg.encoding, cfg.delimiter
    )
    target = cfg.target or default_target
    columns = ", ".join(map(str, frame.columns))
    if target is None:
        raise TrainwrightError(f"data.target is not set: name the column of {name} to predict; columns are: {columns}")
    if target not in frame.columns or target == text_column:
        raise TrainwrightError(f"target column {target!r} is not a label column of {name}; columns are: {columns}")
    kind = "builtin" if cfg.source in BUILTINS else "table"
    return RawTexts(frame[[text_column, target]].copy(), text_column, target, name, kind)


def _read_folder(root: Path, target: str, encoding: str = "auto") -> RawTexts:
    """One sub-folder per class, each text one ``.txt`` file in it (UTF-8, what its byte-order mark
    says, or ``data.encoding``; see ``data/encoding.py``)."""
    texts, labels, invalid = [], [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for file in sorted(folder.glob("*.txt")):
            text, clean = decode_text(file.read_bytes(), encoding)
            if not clean:
                invalid.append(f"{folder.name}/{file.name}")
            texts.append(text)
            labels.append(folder.name)
    if not texts:
        raise TrainwrightError(
            f"{root} has no .txt files in class sub-folders; put each class's texts in a folder named after it"
        )
    frame = pd.DataFrame({"text": texts, target: labels})
    return RawTexts(frame, "text", target, root.name, "folder", invalid)


@dataclass(frozen=True)
class CleanTexts:
    texts: list[str]
    labels: pd.Series  # aligned with texts, original index dropped
    actions: list[dict]  # {"action", "count", "message"} for data.json and the console


def clean_texts(raw: RawTexts, max_chars: int) -> CleanTexts:
    """Drop rows without a label or with empty/whitespace-only text, strip NUL bytes, cap the length."""
    frame = raw.frame
    column, target = raw.text_column, raw.target
    values = frame[column]
    if column_kind(values) == "numeric" and values.notna().any():
        raise TrainwrightError(
            f"text column {column!r} holds numbers, not text; name the column of raw text with --text-column (or "
            "data.text_column)"
        )
    actions = []

    def act(name: str, count: int, message: str) -> None:
        actions.append({"action": name, "count": int(count), "message": message})

    missing_label = frame[target].isna().to_numpy()
    act("missing_target", missing_label.sum(), f"dropped {missing_label.sum()} rows without a {target!r} label")
    texts = ["" if not isinstance(v, str) else v for v in values]
    nul = sum("\x00" in t for t in texts)
    texts = [t.replace("\x00", "") for t in texts]
    act("nul_bytes", nul, f"removed NUL bytes from {nul} texts")
    act(
        "invalid_utf8",
        len(raw.invalid_utf8),
        f"{len(raw.invalid_utf8)} files were not valid UTF-8 (bad bytes replaced by U+FFFD): "
        + ", ".join(raw.invalid_utf8[:3])
        + (", ..." if len(raw.invalid_utf8) > 3 else ""),
    )
    replaced = max(sum("\ufffd" in t for t in texts) - len(raw.invalid_utf8), 0)
    act("replacement_characters", replaced, f"{replaced} texts held bytes that are not valid UTF-8 (replaced by U+FFFD)")
    empty = np.array([not t.strip() for t in texts])
    act("empty_texts", (empty & ~missing_label).sum(), f"dropped {(empty & ~missing_label).sum()} empty or whitespace-only texts")
    keep = ~(empty | missing_label)
    if not keep.any():
        raise TrainwrightError(f"{raw.name} has no non-empty texts with a label in {column!r}; every row was empty or unlabelled")
    long = sum(len(t) > max_chars for t, k in zip(texts, keep) if k)
    act("capped_length", long, f"cut {long} texts longer than {max_chars} characters (data.max_chars)")
    kept = [t[:max_chars] for t, k in zip(texts, keep) if k]
    return CleanTexts(kept, frame[target][keep].reset_index(drop=True), actions)
