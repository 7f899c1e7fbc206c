"""The fitted preprocessors a trained model keeps, one per modality, and loading them back.

A run directory (or an exported one) holds ``preprocessor.json`` with a ``modality`` key; that key
picks the class whose ``load`` reads the rest. None of these modules imports torch, so predicting
from an exported model (onnxruntime) works where torch is not installed.

Example:
    >>> saved_modality(Path("runs/digits-mlp"))
    'tabular'
    >>> load_preprocessor(Path("runs/digits-mlp")).classes[:3]
    [0, 1, 2]
"""

from __future__ import annotations

import json
from pathlib import Path

from trainwright.data.images import ImagePreprocessor
from trainwright.data.series import SeriesPreprocessor
from trainwright.data.tabular import TabularPreprocessor
from trainwright.data.text import TextPreprocessor
from trainwright.errors import TrainwrightError

Preprocessor = TabularPreprocessor | ImagePreprocessor | TextPreprocessor | SeriesPreprocessor

PREPROCESSORS = {
    "tabular": TabularPreprocessor,
    "images": ImagePreprocessor,
    "text": TextPreprocessor,
    "series": SeriesPreprocessor,
}


def saved_modality(directory: Path) -> str:
    """tabular, images, text or series: what the preprocessor saved in ``directory`` reads."""
    try:
        facts = json.loads((Path(directory) / "preprocessor.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise TrainwrightError(f"{directory} has no readable preprocessor.json; it is not a finished trainwright run") from None
    modality = facts.get("modality", "tabular")
    if modality not in PREPROCESSORS:
        raise TrainwrightError(f"{directory} was written for {modality!r} data, which this version of trainwright cannot read")
    return modality


def load_preprocessor(directory: Path) -> Preprocessor:
    """The fitted preprocessor saved in a run directory, of whatever modality it was."""
    return PREPROCESSORS[saved_modality(directory)].load(Path(directory))


def load_threshold(directory: Path) -> float | None:
    """The binary decision threshold saved in ``directory`` (``threshold.json``, ``evaluate.threshold``; a run or
    an exported directory), or None. Read here, beside the preprocessing, so both predict paths share it."""
    path = Path(directory) / "threshold.json"
    if not path.is_file():
        return None
    try:
        return float(json.loads(path.read_text(encoding="utf-8"))["threshold"])
    except (ValueError, KeyError, TypeError):
        raise TrainwrightError(f"{path} is damaged; train the run again (evaluate.threshold writes it)") from None
