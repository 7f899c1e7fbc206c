"""Tiny finished runs for the export and serve tests, trained once per test process.

Each is a few seconds of training (one to three epochs, no baselines): enough for a real run
directory, not for a good model. ``tiny_run(tmp_path_factory, "table")`` trains on first use
and returns the same directory afterwards, so test modules share them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from helpers import hospital_like, penguins_like
from rich.console import Console

import trainwright as tw

QUIET = Console(quiet=True)
FAST = {"evaluate": {"baseline": False}, "train": {"epochs": 1}}


def table_csv(directory: Path) -> Path:
    path = directory / "penguins.csv"
    if not path.exists():
        penguins_like().to_csv(path, index=False)
    return path


def messy_csv(directory: Path) -> Path:
    """A semicolon CSV in Latin-1 with a case id, a panel id, a 94%-missing column, a missing-often one and a date."""
    path = directory / "visits.csv"
    if not path.exists():
        frame = hospital_like()
        frame["ward"] = frame["ward"].replace({"a": "médecine"})
        frame.to_csv(path, index=False, sep=";", encoding="latin-1")
    return path


def configs(directory: Path) -> dict[str, dict]:
    return {
        "table": {"data": {"source": str(table_csv(directory)), "target": "species"}, "model": {"type": "mlp"},
                  "evaluate": {"baseline": False}, "train": {"epochs": 3}},
        # ids dropped, missing indicators, date features, a semicolon file and a decision threshold (threshold.json)
        "messy-table": {"data": {"source": str(messy_csv(directory)), "target": "y", "delimiter": ";", "encoding": "latin-1"},
                        "model": {"type": "mlp"}, "evaluate": {"baseline": False, "threshold": "auto"}, "train": {"epochs": 3}},
        "images": {"data": {"source": "digits-images", "augment": []}, "model": {"type": "cnn"}, **FAST},
        "text-lstm": {"data": {"source": "word-order"}, "model": {"type": "lstm"}, **FAST},
        "text-transformer": {"data": {"source": "word-order"}, "model": {"type": "transformer"}, **FAST},
        "series-lstm": {"data": {"source": "seasonal", "window": {"lookback": 24, "horizon": 6}}, "model": {"type": "lstm"},
                        **FAST},
    }


def tiny_run(tmp_path_factory, name: str) -> Path:
    """The finished run ``name`` (see ``configs``), trained on first use in this process."""
    root = tmp_path_factory.getbasetemp() / "tiny-runs"
    run = root / name
    if not (run / "metrics.json").is_file():
        root.mkdir(exist_ok=True)
        tw.train(configs(root)[name], runs_dir=root, name=name, console=QUIET)
    return run


def rows(name: str, directory: Path, n: int = 12) -> pd.DataFrame:
    """New rows to predict on, in the form each run reads (a table, image arrays, texts, a series)."""
    from trainwright.data.builtin import BUILTINS

    if name == "table":
        return pd.read_csv(table_csv(directory)).drop(columns=["species"]).iloc[:n]
    if name == "messy-table":
        return pd.read_csv(messy_csv(directory), sep=";", encoding="latin-1").drop(columns=["y"]).iloc[:n]
    if name == "images":
        return BUILTINS["digits-images"].load().drop(columns=["digit"]).iloc[:n]
    if name.startswith("text"):
        return BUILTINS["word-order"].load().drop(columns=["label"]).iloc[:n]
    return BUILTINS["seasonal"].load().iloc[-100:]  # a forecaster reads the table's last lookback rows


def assert_same_predictions(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    """The same columns, the same predicted labels, probabilities and forecasts within float error."""
    assert list(ours.columns) == list(theirs.columns)
    for column in ours.columns:
        if column.startswith("probability_") or (column == "prediction" and ours[column].dtype.kind == "f"):
            np.testing.assert_allclose(ours[column].to_numpy(float), theirs[column].to_numpy(float), rtol=1e-4, atol=1e-5)
        elif ours[column].dtype == object and len(ours) and isinstance(ours[column].iloc[0], np.ndarray):
            continue  # image arrays: the same objects passed through
        else:
            pd.testing.assert_series_equal(ours[column], theirs[column])
