"""Image data, from ``data.source`` to uint8 tensors decoded once: sources, split, statistics.

Sources: a folder with one sub-folder per class, a table with a column of image paths
(``data.image_column``, paths relative to the table) and a label column, or a built-in set of
images (``digits-images``). Every candidate is first probed (header only: is it an image, how
large, which mode, a hash of its bytes), so that bad files are counted and duplicates dropped
before the split; then the split decides the order, and each image is decoded once into an
``ImageCache`` in that order, so train, validation and test are views of it, never copies.

Pixels stay uint8 (4x less memory than float32, on the host and on the training device).
Conversion to float and normalization with the training split's per-channel mean and standard
deviation happen per batch, inside the model (``ImageInput``), so a saved model needs nothing
else to predict. Augmentation (``data/augment.py``) acts on training batches only.

Example:
    >>> data = prepare_images(DataConfig(source="digits-images"))
    >>> data.x_train.shape, data.x_train.dtype, data.preprocessor.classes[:3]
    (torch.Size([1257, 1, 8, 8]), torch.uint8, [0, 1, 2])
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from trainwright.config import AUTO_IMAGE_SIDE, DataConfig, ImageConfig
from trainwright.data.decode import (
    GRAY_MODES,
    ImageCache,
    ImageSpec,
    Skip,
    Source,
    count_decoded,
    decode_image,
    map_or_skip,
    probe,
)
from trainwright.data.image_sources import Candidates, Skipped, inside, load_candidates, skipped_text, walk_files
from trainwright.data.sources import read_table
from trainwright.data.split import Split, SplitData, split_rows, subset_facts, subset_notes, train_subset
from trainwright.data.target import (
    LabelKind,
    Task,
    class_list,
    decode_class_indices,
    encode_class_column,
    encode_labels,
    selected_rows,
)
from trainwright.errors import TrainwrightError, quote

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ImageData", "ImagePreprocessor", "ImageRows", "load_images", "prepare_images"]

FORMAT = 1  # version of preprocessor.json for images
# Suffixes that make a path given to ``inputs`` one image rather than a table. Folders are not
# filtered by suffix: every file in them is tried, and what Pillow cannot open is skipped.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


# ── probing, choosing mode and size ────────────────────────────────────────────────────────
def resolve_spec(image: ImageConfig, modes: list[str], sizes: list[tuple[int, int]]) -> ImageSpec:
    """The mode and size ``auto`` stand for, decided on the usable images."""
    mode = image.mode
    if mode == "auto":
        mode = "grayscale" if all(m in GRAY_MODES for m in modes) else "rgb"
    if image.size == "auto":
        height, width = Counter(sizes).most_common(1)[0][0]
        scale = min(1.0, AUTO_IMAGE_SIDE / max(height, width))
        size = (max(4, round(height * scale)), max(4, round(width * scale)))
    elif isinstance(image.size, int):
        size = (image.size, image.size)
    else:
        size = tuple(image.size)
    return ImageSpec(mode, size, image.resize, image.max_pixels)  # type: ignore[arg-type]


# ── the preprocessor a trained model keeps ─────────────────────────────────────────────────
class ImagePreprocessor:
    """Decoding settings, normalization statistics and classes of an image model, as JSON.

    ``inputs(data)`` turns a folder of images, a table of image paths (or a frame) into the
    rows that could be decoded and their uint8 (N, C, H, W) tensor, decoded exactly as in
    training.

    Example:
        >>> pre = ImagePreprocessor.load(Path("runs/shapes-cnn-20260101-120000"))
        >>> frame, x = pre.inputs("new_images/")
        >>> list(frame.columns), x.shape
        (['path'], (12, 3, 32, 32))
    """

    modality = "images"

    def __init__(
        self,
        *,
        target: str,
        task: Task,
        classes: list,
        label_kind: LabelKind,
        image_column: str,
        spec: ImageSpec,
        mean: list[float],
        std: list[float],
        statistics: str = "the training split",
    ) -> None:
        self.target = target
        self.task: Task = task
        self.classes = list(classes)
        self.label_kind: LabelKind = label_kind
        self.image_column = image_column
        self.spec = spec
        self.mean, self.std = list(mean), list(std)
        self.statistics = statistics  # where mean and std come from, recorded in preprocessor.json

    def use_statistics(self, mean: list[float], std: list[float], source: str) -> None:
        """Normalize with other statistics than the training split's (a backbone's, pretrained weights')."""
        self.mean, self.std, self.statistics = [float(v) for v in mean], [float(v) for v in std], source

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.task == "multiclass" else 1

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.spec.channels, *self.spec.size)

    # ── labels ───────────────────────────────────────────────────────────────────────────
    def encode_target(self, y: pd.Series) -> np.ndarray:
        """Labels -> int64 (N,) class indices; an unknown label is an error naming it."""
        return encode_class_column(y, self.classes, self.label_kind, self.target)

    def decode_target(self, values: np.ndarray) -> np.ndarray:
        return decode_class_indices(values, self.classes)

    # ── new inputs ───────────────────────────────────────────────────────────────────────
    def inputs(self, data: pd.DataFrame | str | Path) -> tuple[pd.DataFrame, np.ndarray]:
        """(the rows that could be decoded, their images uint8 (N, C, H, W)).

        ``data``: a folder (every image under it; a file in a sub-folder gets that folder's name
        in the ``target`` column, so a labelled folder can be evaluated), a table file whose
        ``image_column`` holds paths relative to it, or a frame (paths relative to the working
        directory, or uint8 arrays). Files that cannot be used are skipped with a warning.
        """
        skipped = Skipped()
        if isinstance(data, pd.DataFrame):
            frame, root = data.reset_index(drop=True), None
        else:
            path = Path(data).expanduser()
            if path.is_dir():
                root = Path(os.path.realpath(path))
                files = walk_files(path, root, skipped)
                frame = pd.DataFrame({self.image_column: [str(file) for file in files]})
                parts = [Path(os.path.relpath(file, path)).parts for file in files]
                if any(len(p) > 1 for p in parts):
                    frame[self.target] = [p[0] if len(p) > 1 else None for p in parts]
                root = None  # the listed paths are already complete
            elif path.suffix.lower() in IMAGE_SUFFIXES:  # one image file
                frame, root = pd.DataFrame({self.image_column: [str(path)]}), None
            else:
                frame, root = read_table(path), path.parent
        if self.image_column not in frame.columns:
            raise TrainwrightError(
                f"the data have no column {self.image_column!r} of images, which the model was trained with; "
                f"columns are: {', '.join(map(str, frame.columns))}"
            )
        real_root = Path(os.path.realpath(root)) if root is not None else None
        sources: list[Source | Skip] = []
        shown: list[str] = []
        for row, value in enumerate(frame[self.image_column]):
            shown.append(f"row {row + 1}" if isinstance(value, np.ndarray) else str(value))
            if isinstance(value, np.ndarray):
                sources.append(value)
            elif not (isinstance(value, str) and value.strip()):
                sources.append(Skip("no image path"))
            else:
                file = Path(value.strip()).expanduser()
                if real_root is not None and not file.is_absolute():
                    file = real_root / file
                    if not inside(file, real_root):
                        file = Skip("outside the data root")
                sources.append(file)
        decoded = list(map_or_skip(lambda s: s if isinstance(s, Skip) else decode_image(s, self.spec), sources))
        keep = [i for i, result in enumerate(decoded) if isinstance(result, np.ndarray)]
        for i, result in enumerate(decoded):
            if isinstance(result, Skip):
                skipped.add(shown[i], result.reason)
        count_decoded(len(keep))
        if not keep:
            detail = f": {skipped.message()}" if skipped.count else ""
            raise TrainwrightError(f"no usable images in {data if not isinstance(data, pd.DataFrame) else 'the frame'}{detail}")
        if skipped.count:
            warnings.warn(skipped.message(), stacklevel=2)
        x = np.stack([decoded[i] for i in keep])  # (N, C, H, W) uint8
        return frame.iloc[keep].reset_index(drop=True), x

    # ── saving ───────────────────────────────────────────────────────────────────────────
    def facts(self) -> dict:
        return {
            "format": FORMAT,
            "modality": "images",
            "target": self.target,
            "task": self.task,
            "classes": self.classes,
            "label_kind": self.label_kind,
            "image_column": self.image_column,
            "mode": self.spec.mode,
            "size": list(self.spec.size),
            "resize": self.spec.resize,
            "max_pixels": self.spec.max_pixels,
            "mean": self.mean,
            "std": self.std,
            "statistics": self.statistics,
        }

    def files(self) -> dict[str, str | bytes]:
        """What a run directory keeps: ``preprocessor.json``; plain JSON is all an image model needs."""
        return {"preprocessor.json": json.dumps(self.facts(), indent=2) + "\n"}

    @classmethod
    def load(cls, directory: Path) -> ImagePreprocessor:
        path = Path(directory) / "preprocessor.json"
        try:
            facts = json.loads(path.read_text(encoding="utf-8"))
            spec = ImageSpec(facts["mode"], tuple(facts["size"]), facts["resize"], int(facts["max_pixels"]))
            return cls(
                target=facts["target"],
                task=facts["task"],
                classes=facts["classes"],
                label_kind=facts["label_kind"],
                image_column=facts["image_column"],
                spec=spec,
                mean=[float(v) for v in facts["mean"]],
                std=[float(v) for v in facts["std"]],
                statistics=facts.get("statistics", "the training split"),
            )
        except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
            raise TrainwrightError(
                f"{directory} is not a trainwright run (or is damaged): "
                f"preprocessor.json is unreadable ({type(error).__name__}: {error})"
            ) from None


# ── the prepared data ──────────────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class ImageData(SplitData):
    """x: uint8 (N, C, H, W), views of the cache; y: int64 (N,) class indices."""

    preprocessor: ImagePreprocessor
    task: Task
    cache: ImageCache  # ``cache.decoded``: images decoded (once each)
    train_transform: nn.Module | None = None  # augmentation of training batches (data/augment.py)

    def report_lines(self) -> list[str]:
        s = self.summary
        found = s["images"]
        where = {
            "folder": f"{len(s['classes'])} class folders",
            "table": f"a table ({s['target']!r} labels)",
            "builtin": "a built-in set",
        }[s["kind"]]
        lines = [f"{self.name}: {found['usable']} images from {where}; {self.task}"]
        if found["skipped"]["count"]:
            lines.append(skipped_text(found["skipped"]))
        if found["duplicates_dropped"]:
            lines.append(f"dropped {found['duplicates_dropped']} duplicate images (the same bytes and label as another)")
        lines += s["notes"]
        image = s["image"]
        mean = " ".join(f"{v:.3f}" for v in image["mean"])
        std = " ".join(f"{v:.3f}" for v in image["std"])
        size = f"{self.cache.nbytes / 2**20:.1f} MiB"
        lines.append(
            f"images: {image['mode']} {image['size'][0]}x{image['size'][1]} ({image['resize']}); normalized with the training "
            f"split's mean {mean}, std {std}; decoded once into "
            f"{'memory' if self.cache.where == 'memory' else 'a memory-mapped file'} ({size})"
        )
        counts = s["class_balance"]["all"]
        shown = ", ".join(f"{label} {count}" for label, count in list(counts.items())[:10])
        lines.append(f"classes ({len(counts)}): {shown}{', ...' if len(counts) > 10 else ''}")
        split = s["split"]
        if split["held_out"]:
            how = "stratified" if split["stratified"] else "shuffled"
            lines.append(
                f"split {split['fractions']} ({how}, seed {split['seed']}): train {split['train']}, val {split['val']}, test "
                f"{split['test']} images"
            )
        if s["augment"]:
            lines.append("augment (training batches only): " + ", ".join(s["augment"]))
        return lines


def _step_text(step) -> str:
    values = step.model_dump(exclude={"name"})
    return f"{step.name}(" + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()) + ")"


def resolve_image_task(requested: str, classes: list, target: str) -> Task:
    if requested == "regression":
        raise TrainwrightError(
            "data.task: regression is not supported for images; image labels are classes (set data.task: auto)"
        )
    if len(classes) < 2:
        label = classes[0] if classes else None
        raise TrainwrightError(
            f"every usable image has the label {quote(label)}; a classifier needs images of at least two classes"
        )
    if requested == "binary" and len(classes) > 2:
        raise TrainwrightError(
            f"data.task is binary but {target!r} has {len(classes)} classes; set data.task: multiclass or auto"
        )
    return "binary" if len(classes) == 2 else "multiclass"


@dataclass(frozen=True, eq=False)
class ImageRows:
    """The usable images of a source, probed (header only) and not yet split or decoded."""

    cfg: DataConfig
    candidates: Candidates
    probes: list  # per candidate: its probe, or a Skip
    usable: list[int]  # the candidates that probed well and are not duplicates
    labels: np.ndarray  # (len(usable),) original labels
    classes: list
    task: Task
    spec: ImageSpec
    name: str
    target: str
    label_kind: LabelKind
    found: int
    duplicates: int
    before: int  # candidates before data.classes
    notes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.usable)

    @property
    def strata(self) -> np.ndarray:
        return self.labels

    @property
    def groups(self) -> np.ndarray | None:
        """``data.clean.duplicates: group``: identical files (same bytes and label) share a group."""
        if self.cfg.clean.duplicates != "group":
            return None
        keys = [(self.probes[i].digest, str(self.candidates.labels[i])) for i in self.usable]
        return pd.factorize(pd.Series(keys, dtype=object))[0]

    def split(self) -> Split:
        """The configured split (``data.split``, then ``data.train_fraction``)."""
        split = split_rows(len(self.usable), self.labels, self.cfg.split, groups=self.groups)
        return train_subset(split, self.labels, self.cfg.train_fraction, self.cfg.split.seed)

    def prepare(self, split: Split) -> ImageData:
        """Decode each image of the split once, in split order, into the cache; normalize on ``split.train``."""
        # Lazy, a heavy dependency: torch (these three modules need it), which predicting from an export does without.
        import torch

        from trainwright.data.augment import build_augment
        from trainwright.data.image_input import channel_stats

        cfg, candidates, usable, labels, classes, spec = (
            self.cfg,
            self.candidates,
            self.usable,
            self.labels,
            self.classes,
            self.spec,
        )
        skipped = copy.deepcopy(candidates.skipped)  # decoding may skip more; the candidates stay as found
        parts = [split.train] if not split.held_out else [split.train, split.val, split.test]
        order = np.concatenate(parts)
        cache = ImageCache(len(order), (spec.channels, *spec.size), cfg.image.cache)
        sources = [candidates.sources[usable[i]] for i in order]
        kept_labels, counts, part_of = [], [0] * len(parts), np.repeat(np.arange(len(parts)), [len(p) for p in parts])
        for j, result in enumerate(map_or_skip(lambda source: decode_image(source, spec), sources)):
            if isinstance(result, Skip):  # a header that looked fine over a truncated body
                skipped.add(candidates.names[usable[order[j]]], result.reason)
                continue
            cache.put(len(kept_labels), result)
            kept_labels.append(labels[order[j]])
            counts[part_of[j]] += 1
        if min(counts) == 0:
            raise TrainwrightError(f"too few images could be decoded in {cfg.source} to fill every split: {skipped.message()}")
        kept = np.array(kept_labels, dtype=object) if self.label_kind == "str" else np.array(kept_labels)
        y_all = torch.from_numpy(encode_labels(kept, classes, self.target))
        bounds = np.cumsum([0, *counts])
        xs = [cache.tensor(bounds[k], bounds[k + 1]) for k in range(len(parts))]
        ys = [y_all[bounds[k] : bounds[k + 1]] for k in range(len(parts))]
        if not split.held_out:
            xs, ys = xs * 3, ys * 3

        notes = [*self.notes, *subset_notes(cfg, self.before, len(candidates.sources)), *split.notes]
        mean, std = channel_stats(xs[0])  # the training split only
        pre = ImagePreprocessor(
            target=self.target,
            task=self.task,
            classes=classes,
            label_kind=self.label_kind,
            image_column=cfg.image_column or ("path" if candidates.kind == "folder" else "image"),
            spec=spec,
            mean=mean,
            std=std,
        )
        summary = {
            "source": cfg.source,
            "name": self.name,
            "modality": "images",
            "kind": candidates.kind,
            "target": self.target,
            "task": self.task,
            "images": {
                "found": self.found,
                "usable": int(sum(counts)),
                "skipped": skipped.to_dict(),
                "duplicates_dropped": self.duplicates,
                "formats": dict(sorted(Counter(self.probes[i].format for i in usable).items())),
            },
            "notes": notes,
            "image": {"mode": spec.mode, "size": list(spec.size), "resize": spec.resize, "mean": mean, "std": std},
            "classes": classes,
            "class_balance": {
                part: _counts(y.numpy(), classes)
                for part, y in (("all", y_all), ("train", ys[0]), ("val", ys[1]), ("test", ys[2]))
            },
            "split": split.facts(cfg.split, sizes=(len(ys[0]), len(ys[1]), len(ys[2]))),  # after undecodable images
            "augment": [_step_text(step) for step in cfg.augment],
            **subset_facts(cfg, self.before, len(candidates.sources)),
        }
        augment = build_augment(cfg.augment, spec.channels, spec.size) if cfg.augment else None
        return ImageData(
            xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], pre, self.task, self.name, split.held_out, summary, cache, augment
        )


def load_images(cfg: DataConfig) -> ImageRows:
    """Find and probe (header only) the images ``cfg.source`` names; skip bad files, drop duplicates."""
    for key in ("features", "drop_columns"):
        if getattr(cfg, key):
            raise TrainwrightError(
                f"data.{key} selects table columns; an image source reads only its images and labels: remove data.{key}"
            )
    candidates, name, target, kind = load_candidates(cfg)
    before = len(candidates.sources)
    if cfg.classes is not None:  # only these labels: the others are neither probed nor decoded
        keep = np.flatnonzero(selected_rows(candidates.labels, cfg.classes, target))
        for field in ("sources", "names", "labels"):
            setattr(candidates, field, [getattr(candidates, field)[i] for i in keep])
    skipped, where = candidates.skipped, cfg.source
    found = len(candidates.sources) + skipped.count  # skipped so far: links leaving the root, rows without a label

    # Probe every candidate (header only): what it is, how large, its bytes' hash.
    probes = list(map_or_skip(lambda source: probe(source, cfg.image.max_pixels), candidates.sources))
    usable, seen, duplicates = [], set(), 0
    for i, result in enumerate(probes):
        if isinstance(result, Skip):
            skipped.add(candidates.names[i], result.reason)
            continue
        key = (result.digest, candidates.labels[i])
        if cfg.clean.duplicates in ("auto", "drop") and key in seen:
            duplicates += 1  # the same file twice could land in train and test
            continue
        seen.add(key)
        usable.append(i)
    if not usable:
        detail = f": {skipped.message()}" if skipped.count else ""
        raise TrainwrightError(f"no usable images in {where}{detail}")
    notes = list(candidates.notes)
    if candidates.kind == "folder":
        present = {candidates.labels[i] for i in usable}
        wanted = set(candidates.class_folders) if cfg.classes is None else {str(c) for c in cfg.classes}
        empty = sorted(set(candidates.class_folders) & wanted - present)
        if empty:
            notes.append(
                f"class folder{'s' if len(empty) > 1 else ''} {', '.join(map(repr, empty))} "
                f"ha{'ve' if len(empty) > 1 else 's'} no usable images; left out"
            )

    labels = np.array([candidates.labels[i] for i in usable], dtype=object)
    classes = class_list(labels)
    task = resolve_image_task(cfg.task, classes, target)
    spec = resolve_spec(cfg.image, [probes[i].mode for i in usable], [probes[i].size for i in usable])
    return ImageRows(
        cfg, candidates, probes, usable, labels, classes, task, spec, name, target, kind, found, duplicates, before, tuple(notes)
    )


def prepare_images(cfg: DataConfig) -> ImageData:
    """Find, probe, split and decode the images ``cfg.source`` names; every step is reported.

    Example:
        >>> data = prepare_images(DataConfig(source="data/shapes"))   # data/shapes/<class>/*.png
        >>> data.input_shape, data.cache.decoded == len(data.x_train) + len(data.x_val) + len(data.x_test)
        ((3, 32, 32), True)
    """
    rows = load_images(cfg)
    return rows.prepare(rows.split())


def _counts(indices: np.ndarray, classes: list) -> dict[str, int]:
    return {str(label): int(count) for label, count in zip(classes, np.bincount(indices, minlength=len(classes)))}
