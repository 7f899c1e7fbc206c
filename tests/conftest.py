"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import penguins_like


@pytest.fixture
def penguins_csv(tmp_path: Path) -> Path:
    path = tmp_path / "penguins.csv"
    penguins_like().to_csv(path, index=False)
    return path
