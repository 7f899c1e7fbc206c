"""Test helpers: run the installed ``trainwright`` command the way a user would; generate tables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

TRAINWRIGHT = Path(sys.executable).with_name("trainwright")


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``trainwright ARGS`` in a subprocess, as a new user would, not attached to a terminal."""
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run(
        [str(TRAINWRIGHT), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def expect_clear_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Bad input: exit code 2, one line on stderr starting with error: and naming every fragment, no traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    message = result.stderr.strip()
    assert message.startswith("error: ") and len(message.splitlines()) == 1, message
    for fragment in fragments:
        assert fragment in message, message


def penguins_like(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """A penguins-style table: numeric measurements, string categories, missing values, duplicates."""
    rng = np.random.default_rng(seed)
    species = rng.choice(["Adelie", "Gentoo", "Chinstrap"], size=n)
    base = {
        "Adelie": (38.8, 18.3, 190.0, 3700.0),
        "Gentoo": (47.5, 15.0, 217.0, 5076.0),
        "Chinstrap": (48.8, 18.4, 196.0, 3733.0),
    }
    rows = np.array([base[s] for s in species]) + rng.normal(0, [2.0, 0.8, 6.0, 300.0], size=(n, 4))
    frame = pd.DataFrame(rows, columns=["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]).round(1)
    frame.insert(0, "island", np.where(species == "Gentoo", "Biscoe", rng.choice(["Dream", "Torgersen", "Biscoe"], size=n)))
    frame["sex"] = rng.choice(["male", "female"], size=n)
    frame["species"] = species
    frame.loc[rng.choice(n, 12, replace=False), "bill_length_mm"] = np.nan  # missing values
    frame.loc[rng.choice(n, 5, replace=False), "sex"] = None
    frame.loc[[3, 7], "species"] = None  # missing target
    return pd.concat([frame, frame.iloc[10:16]], ignore_index=True)  # 6 exact duplicate rows


def titanic_like(n: int = 1316, seed: int = 0) -> pd.DataFrame:
    """Passengers by class, age group and sex -> survived: every column a category, so 1316 rows are ~24 distinct ones."""
    rng = np.random.default_rng(seed)
    cls = rng.choice(["1st", "2nd", "3rd"], n, p=[0.25, 0.22, 0.53])
    age = rng.choice(["adult", "child"], n, p=[0.92, 0.08])
    sex = rng.choice(["male", "female"], n, p=[0.64, 0.36])
    p = 0.15 + 0.5 * (sex == "female") + 0.2 * (cls == "1st") + 0.1 * (age == "child")
    return pd.DataFrame({"class": cls, "age": age, "sex": sex, "survived": np.where(rng.random(n) < p, "yes", "no")})


def hospital_like(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A medical-style table: a case id, a panel id (5 visits per patient), a 94%-missing lab value,
    a 34%-missing dose, a 21%-missing ward, an admission time and an age that is a quantity."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "case_id": np.arange(1000, 1000 + n),
            "patient": np.repeat(rng.permutation(n // 5) + 500, 5),
            "age": rng.integers(20, 80, n),
            "lab": np.where(rng.random(n) < 0.94, np.nan, rng.normal(size=n)),
            "dose": np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n)),
            "ward": np.where(rng.random(n) < 0.2, None, rng.choice(["a", "b", "c"], n)),
            "admitted": pd.date_range("2020-01-01", periods=n, freq="37h").strftime("%Y-%m-%d %H:%M"),
            "y": rng.choice([0, 1], n),
        }
    )
