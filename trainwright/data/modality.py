"""Which kind of data a source is: a table, images, text or a time series.

Decided from the config's columns first (a text or time column names the modality), then from a
built-in's own kind, then from the disk: a folder of class folders holding mostly ``.txt`` files is
text, any other folder is images, anything else a table. The config schema never looks at the disk;
this module does, for the data stage and for ``trainwright.configure`` (per-modality defaults).

Example:
    >>> modality_of(DataConfig(source="digits-images"))
    'images'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainwright.config import DataConfig
from trainwright.data.builtin import BUILTINS


def modality_of(cfg: DataConfig) -> str:
    """tabular, images, text or series: which ``data/`` module prepares this source."""
    return source_modality(cfg.source, cfg.image_column, cfg.text_column, cfg.time_column)


def source_modality(source: Any, image_column: Any = None, text_column: Any = None, time_column: Any = None) -> str:
    """A text or time column names the modality; else a built-in's own, a folder (images) or a table."""
    if text_column is not None:
        return "text"
    if time_column is not None:
        return "series"
    if isinstance(source, str) and source in BUILTINS and BUILTINS[source].modality in ("text", "series"):
        return BUILTINS[source].modality
    if isinstance(source, str) and text_folder(source):
        return "text"
    return "images" if is_image_source(source, image_column) else "tabular"


def is_image_source(source: Any, image_column: Any = None) -> bool:
    """Images come from a folder, a table with ``data.image_column``, or an image built-in."""
    if image_column is not None:
        return True
    if not isinstance(source, str):
        return False
    if source in BUILTINS:
        return BUILTINS[source].modality == "images"
    return Path(source).expanduser().is_dir() and not text_folder(source)


def text_folder(source: str) -> bool:
    """A folder whose class sub-folders hold mostly .txt files is a text source, not an image one
    (an image folder with a stray notes.txt stays an image folder, and its skipped files are reported)."""
    path = Path(source).expanduser()
    if not path.is_dir():
        return False
    files = [f for f in path.glob("*/*") if not f.name.startswith(".") and f.is_file()]
    return sum(f.suffix.lower() == ".txt" for f in files) > len(files) / 2
