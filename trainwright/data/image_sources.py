"""Where image data come from: a folder of class folders, a table of image paths, or a built-in.

Each source becomes ``Candidates``: what to decode (a path or an in-memory array), the name a
message shows, and the label. Nothing is opened here; links that lead outside the data root,
rows without a label or a path, and files that are not regular files are counted in ``Skipped``
(a count per reason and the first names), which the later stages add to.

Example:
    >>> candidates = folder_candidates(Path("data/shapes"))   # data/shapes/<class>/...
    >>> candidates.labels[:2], candidates.names[:2]
    (['circle', 'circle'], ['circle/circle_00000.png', 'circle/circle_00001.png'])
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainwright.config import DataConfig
from trainwright.data.builtin import BUILTINS
from trainwright.data.decode import Source
from trainwright.data.sources import read_table
from trainwright.data.target import LabelKind, coerce_labels, label_kind
from trainwright.errors import TrainwrightError

SHOW = 5  # file names shown per message


# ── counting what is skipped ──────────────────────────────────────────────────────────────
class Skipped:
    """Skipped sources: a count per reason and the first few names, for one clear line."""

    def __init__(self) -> None:
        self.by_reason: Counter[str] = Counter()
        self.first: list[str] = []

    def add(self, name: str, reason: str) -> None:
        self.by_reason[reason] += 1
        if len(self.first) < SHOW:
            shown = name if len(name) <= 200 else f"{name[:200]}... ({len(name):,} characters)"  # a path from a table cell
            self.first.append(f"{shown} ({reason})")

    @property
    def count(self) -> int:
        return sum(self.by_reason.values())

    def message(self) -> str:
        return skipped_text(self.to_dict())

    def to_dict(self) -> dict:
        return {"count": self.count, "by_reason": dict(sorted(self.by_reason.items())), "first": self.first}


def skipped_text(skipped: dict) -> str:
    """'skipped 3 files (2 empty file, 1 not an image): a.png (empty file), ...' from ``Skipped.to_dict()``."""
    count = skipped["count"]
    reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped["by_reason"].items(), key=lambda item: -item[1]))
    more = ", ..." if count > len(skipped["first"]) else ""
    return f"skipped {count} file{'s' if count != 1 else ''} ({reasons}): {', '.join(skipped['first'])}{more}"


@dataclass
class Candidates:
    """Image sources with their labels, before probing; ``names`` are what messages show."""

    sources: list[Source]
    names: list[str]
    labels: list[Any]
    skipped: Skipped
    notes: list[str]
    kind: str  # "folder" | "table" | "builtin"
    class_folders: tuple[str, ...] = ()  # folders: every class folder, empty ones included


# ── sources ─────────────────────────────────────────────────────────────────────────────────
def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (symlinks followed) stays under ``root`` (already resolved)."""
    try:
        return Path(os.path.realpath(path)).is_relative_to(root)
    except (OSError, ValueError):
        return False


def walk_files(
    top: Path, root: Path, skipped: Skipped, others: tuple[str, ...] = (), taken: set[str] | None = None
) -> list[Path]:
    """Regular files under ``top``, sorted, hidden ones (``.DS_Store``) left out. Links leaving
    ``root`` (resolved) are skipped and counted; linked folders are followed once. ``others``: the
    real paths of the other class folders, which a link must not lead into (their images belong to
    their own class); ``taken``: the real paths of files already counted, which are not counted again."""
    files: list[Path] = []
    seen: set[str] = set()
    taken = set() if taken is None else taken
    for directory, subdirectories, names in os.walk(top, followlinks=True):
        real = os.path.realpath(directory)
        rel = os.path.relpath(directory, root)
        if not Path(real).is_relative_to(root):
            skipped.add(rel + "/", "outside the data root")
            subdirectories[:] = []
            continue
        if real in seen:  # a link back to a folder already walked
            subdirectories[:] = []
            continue
        if _within(real, others):
            skipped.add(rel + "/", "a link into another class folder")
            subdirectories[:] = []
            continue
        seen.add(real)
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(directory) / name
            real_file = os.path.realpath(path)
            if not inside(path, root):
                skipped.add(os.path.relpath(path, root), "outside the data root")
            elif not os.path.isfile(path):
                skipped.add(os.path.relpath(path, root), "not a regular file")
            elif _within(real_file, others):
                skipped.add(os.path.relpath(path, root), "a link into another class folder")
            elif real_file in taken:
                skipped.add(os.path.relpath(path, root), "a link to a file already counted")
            else:
                taken.add(real_file)
                files.append(path)
    return files


def _within(real: str, folders: tuple[str, ...]) -> bool:
    return any(real == folder or real.startswith(folder + os.sep) for folder in folders)


def folder_candidates(folder: Path) -> Candidates:
    """One sub-folder per class; every file under it (at any depth) is a candidate of that class.

    An image is counted once, under the class folder it really is in: a link inside one class
    folder into another (``cat/dogs -> ../dog``) and a class folder that is a link to another
    (``kitten -> cat``) are skipped and said so, never labelled twice.
    """
    root = Path(os.path.realpath(folder))
    skipped, notes = Skipped(), []
    found = sorted(entry for entry in os.listdir(folder) if not entry.startswith(".") and os.path.isdir(folder / entry))
    loose = [entry for entry in os.listdir(folder) if not entry.startswith(".") and os.path.isfile(folder / entry)]
    if not found:
        raise TrainwrightError(
            f"{folder} has no class sub-folders; put each class's images in its own folder "
            f"({folder}/cat/..., {folder}/dog/...), or give a table with data.image_column"
        )
    if loose:
        notes.append(
            f"{len(loose)} file{'s' if len(loose) > 1 else ''} directly in {folder} (not in a class folder) ignored: "
            f"{', '.join(sorted(loose)[:SHOW])}"
        )
    # Each real folder is one class: the folder itself rather than a link to it, else the first by name.
    real = {label: os.path.realpath(folder / label) for label in found}
    owner: dict[str, str] = {}
    for label in sorted(found, key=lambda label: (os.path.islink(folder / label), label)):
        owner.setdefault(real[label], label)
    classes = [label for label in found if owner[real[label]] == label]
    for label in found:
        if owner[real[label]] != label:
            notes.append(f"class folder {label} is a link to {owner[real[label]]}: its images are counted once, under "
                         f"{owner[real[label]]}")
    sources: list[Source] = []
    names, labels = [], []
    taken: set[str] = set()
    for label in classes:
        others = tuple(real[other] for other in classes if other != label)
        for path in walk_files(folder / label, root, skipped, others, taken):
            sources.append(path)
            names.append(os.path.relpath(path, folder))
            labels.append(label)
    return Candidates(sources, names, labels, skipped, notes, "folder", tuple(classes))


def table_candidates(
    frame: pd.DataFrame, image_column: str, target: str, root: Path | None, name: str
) -> tuple[Candidates, LabelKind]:
    """Rows of a table: ``image_column`` holds paths (relative to ``root``) or uint8 arrays."""
    columns = ", ".join(map(str, frame.columns))
    for key, column in (("data.image_column", image_column), ("data.target", target)):
        if column not in frame.columns:
            raise TrainwrightError(f"{key} {column!r} is not a column of {name}; columns are: {columns}")
    skipped, notes = Skipped(), []
    present = frame[target].notna().to_numpy()
    if not present.any():
        raise TrainwrightError(f"target {target!r} of {name} is missing in every row")
    kind = label_kind(frame[target][present])
    labels = np.full(len(frame), None, dtype=object)
    labels[present] = coerce_labels(frame[target][present], kind, target)
    real_root = Path(os.path.realpath(root)) if root is not None else None
    sources: list[Source] = []
    names, kept_labels = [], []
    for row, (value, label) in enumerate(zip(frame[image_column], labels)):
        shown = f"row {row + 1}" if isinstance(value, np.ndarray) else str(value)
        if label is None:
            skipped.add(shown, "no label")
            continue
        if isinstance(value, np.ndarray):
            sources.append(value)
        elif isinstance(value, str) and value.strip():
            path = Path(value.strip()).expanduser()
            if not path.is_absolute() and real_root is not None:
                path = real_root / path
                if not inside(path, real_root):  # "../x.png", or a link leaving the table's folder
                    skipped.add(shown, "outside the data root")
                    continue
            sources.append(path)
        else:
            skipped.add(shown, "no image path")
            continue
        names.append(shown)
        kept_labels.append(label)
    return Candidates(sources, names, kept_labels, skipped, notes, "table"), kind


def load_candidates(cfg: DataConfig) -> tuple[Candidates, str, str, LabelKind]:
    """(candidates, display name, target name, label kind) for ``cfg.source``."""
    source = cfg.source
    if source in BUILTINS:
        builtin = BUILTINS[source]
        image_column, target = cfg.image_column or "image", cfg.target or builtin.target
        candidates, kind = table_candidates(builtin.load(), image_column, target, None, source)
        candidates.kind = "builtin"
        return candidates, source, target, kind
    path = Path(source).expanduser()
    if path.is_dir():
        if cfg.image_column is not None:
            raise TrainwrightError(
                f"data.image_column applies to a table of image paths, but {path} is a folder; remove data.image_column"
            )
        if cfg.target is not None:
            raise TrainwrightError(
                f"data.target does not apply to an image folder: the class is each image's sub-folder in {path}; remove "
                "data.target"
            )
        return folder_candidates(path), Path(os.path.abspath(path)).name or "images", "label", "str"  # "." names its folder
    if cfg.target is None:
        raise TrainwrightError(f"data.target is not set: name the column of {path} that holds each image's label")
    frame = read_table(path, encoding=cfg.encoding)
    candidates, kind = table_candidates(frame, str(cfg.image_column), cfg.target, path.parent, path.name)
    return candidates, path.stem, cfg.target, kind
