"""The data stage's one entry point, whatever the modality, and loading its state back.

Loading (``load_data``: read, clean, settle the task) is apart from preparing (``rows.prepare(split)``:
fit the preprocessing on the split's training part, tensors per part), so k-fold, repeated and
grouped splits reuse the same preparation. Every modality's preparation returns an object with the
same shape (see ``Prepared``):
device-agnostic tensors for train/val/test, the fitted preprocessor, the task, one example's
input shape, a JSON summary (the run's data.json) and console lines. Its preprocessor writes
``preprocessor.json`` with a ``modality`` key, which is how a run directory is read back.

Modalities: tables (``data/tabular.py``), images (``data/images.py``: a folder of class
sub-folders, a table with ``data.image_column``, or an image built-in), text (``data/text.py``:
a table with ``data.text_column``, a folder of .txt files per class, or a text built-in) and time
series (``data/series.py``: a table with ``data.time_column``, or a series built-in).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from trainwright.config import DataConfig
from trainwright.data.image_input import ImageInput
from trainwright.data.images import ImagePreprocessor, ImageRows, load_images
from trainwright.data.modality import modality_of
from trainwright.data.preprocessors import Preprocessor, load_preprocessor
from trainwright.data.series import SeriesRows, load_series
from trainwright.data.split import Split, SplitData
from trainwright.data.tabular import TabularRows, load_tabular
from trainwright.data.text import TextRows, load_text
from trainwright.errors import TrainwrightError

# load_preprocessor lives in preprocessors.py (no torch); predict and the tests load it from here too.
__all__ = ["Prepared", "Preprocessor", "Rows", "load_data", "load_preprocessor", "prepare_data", "with_input_stage"]

# What every modality's data stage returns: tensors per split, the fitted preprocessor, the task,
# facts and console lines; each modality's class (TabularData, ImageData, ...) extends it.
Prepared = SplitData

# Loaded and cleaned, not yet split: ``len(rows)``, ``rows.strata`` (labels or target bins to
# stratify on, None for a series), ``rows.split()`` (the configured split) and
# ``rows.prepare(split)`` (preprocessing fitted on ``split.train`` only, tensors per part).
Rows = TabularRows | ImageRows | TextRows | SeriesRows


def load_data(cfg: DataConfig) -> Rows:
    """Load and clean what ``cfg.source`` names, without splitting it.

    Example:
        >>> rows = load_data(DataConfig(source="iris"))
        >>> data = rows.prepare(rows.split())   # or any other Split of range(len(rows))
    """
    modality = modality_of(cfg)
    if modality != "tabular" and cfg.split.groups:
        raise TrainwrightError(f"data.split.groups applies to tables, but {cfg.source} is {modality} data; remove it")
    if modality != "images" and cfg.augment:
        raise TrainwrightError(f"data.augment applies to images, but {cfg.source} is {modality} data; remove data.augment")
    if modality == "images":
        return load_images(cfg)
    if modality == "text":
        return load_text(cfg)
    if modality == "series":
        return load_series(cfg)
    return load_tabular(cfg)


def prepare_data(cfg: DataConfig, split: Split | None = None) -> Prepared:
    """Load, clean, split and preprocess what ``cfg.source`` names; ``split`` replaces the configured one.

    Example:
        >>> data = prepare_data(DataConfig(source="iris"))
        >>> data.input_shape, data.task
        ((4,), 'multiclass')
    """
    rows = load_data(cfg)
    return rows.prepare(rows.split() if split is None else split)


def with_input_stage(preprocessor: Preprocessor, model: nn.Module) -> nn.Module:
    """The model as it is trained, saved and loaded: image models start with ``ImageInput``
    (uint8 or 0..1 pixels -> normalized floats, statistics saved as buffers with the weights),
    so prediction needs nothing but the run directory. Tabular models are unchanged."""
    if isinstance(preprocessor, ImagePreprocessor):
        return nn.Sequential(OrderedDict(normalize=ImageInput(preprocessor.mean, preprocessor.std), model=model))
    return model
