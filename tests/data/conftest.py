"""Helpers for the data-stage tests: small tables written to tmp_path, prepared through the real code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainwright.config import DataConfig
from trainwright.data.tabular import TabularData, prepare_tabular


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., str]:
    """Write a frame to tmp_path/<name>.csv and return the path as a string."""

    def write(frame: pd.DataFrame, name: str = "table") -> str:
        path = tmp_path / f"{name}.csv"
        frame.to_csv(path, index=False)
        return str(path)

    return write


@pytest.fixture
def prepare(write_csv: Callable[..., str]) -> Callable[..., TabularData]:
    """prepare_tabular on a frame written as CSV, with DataConfig keywords (target defaults to 'y')."""

    def run(frame: pd.DataFrame, **config) -> TabularData:
        config.setdefault("target", "y")
        return prepare_tabular(DataConfig(source=write_csv(frame), **config))

    return run


@pytest.fixture
def mixed() -> pd.DataFrame:
    """60 rows of numeric, text and bool features with 3 missing cells, and a binary text target."""
    n = 60
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "size": rng.normal(10, 3, n).round(3),
            "color": rng.choice(["red", "green", "blue"], n),
            "used": rng.choice([True, False], n),
            "y": rng.choice(["no", "yes"], n),
        }
    )
    frame.loc[[2, 9], "size"] = np.nan
    frame.loc[4, "color"] = None
    return frame
