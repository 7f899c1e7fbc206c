"""Writes the small generated tables beside this file, shaped like real public data sets that broke
naive defaults (README, Data and Text and time series). Nothing here is real data.

    python examples/data/generate.py

- passengers.csv: 1316 passengers by class, age group and sex -> survived. Every column is a
  category, so the 1316 rows are 22 distinct ones repeated: dropping "duplicates" would leave 22.
- visits.csv: 600 hospital visits: a case id, a patient id (5 visits each, on consecutive rows),
  an age, a lab value missing in 94% of the rows, a dose missing in 30%, a ward missing in 20%, an
  admission time, and whether the patient was readmitted.
- monthly.csv: 30 years of a monthly reading with a trend and a yearly cycle (a CO2-like series).
- weekly.csv: 8 years of weekly sales with a yearly cycle of 52 weeks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def passengers(n: int = 1316, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cls = rng.choice(["1st", "2nd", "3rd"], n, p=[0.25, 0.22, 0.53])
    age = rng.choice(["adult", "child"], n, p=[0.92, 0.08])
    sex = rng.choice(["male", "female"], n, p=[0.64, 0.36])
    p = 0.12 + 0.55 * (sex == "female") + 0.2 * (cls == "1st") + 0.08 * (cls == "2nd") + 0.15 * (age == "child")
    return pd.DataFrame({"class": cls, "age": age, "sex": sex, "survived": np.where(rng.random(n) < p, "yes", "no")})


def visits(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    patient = np.repeat(rng.permutation(n // 5) + 5000, 5)
    age = np.repeat(rng.integers(20, 90, n // 5), 5)
    dose = rng.normal(5, 2, n).round(2)
    admitted = pd.Timestamp("2021-01-01") + pd.to_timedelta(np.sort(rng.uniform(0, 3 * 365, n)), unit="D")
    risk = 0.02 * (age - 55) + 0.3 * (dose - 5) + rng.normal(0, 1, n)
    return pd.DataFrame({
        "case_id": np.arange(100_001, 100_001 + n),
        "patient": patient,
        "age": age,
        "lab": np.where(rng.random(n) < 0.94, np.nan, rng.normal(1, 0.3, n).round(3)),
        "dose": np.where(rng.random(n) < 0.3, np.nan, dose),
        "ward": np.where(rng.random(n) < 0.2, None, rng.choice(["cardio", "general", "surgery"], n)),
        "admitted": admitted.strftime("%Y-%m-%d %H:%M"),
        "readmitted": np.where(risk > 0.6, "yes", "no"),
    })


def monthly(years: int = 30, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(12 * years)
    value = 315 + 0.11 * t + 0.00008 * t**2 + 3 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.35, len(t))
    return pd.DataFrame({"month": pd.date_range("1990-01-01", periods=len(t), freq="MS").strftime("%Y-%m-%d"),
                         "ppm": value.round(2)})


def weekly(years: int = 8, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(52 * years)
    sales = 200 + 0.05 * t + 40 * np.sin(2 * np.pi * t / 52) + rng.normal(0, 8, len(t))
    return pd.DataFrame({"week": pd.date_range("2015-01-04", periods=len(t), freq="W-SUN").strftime("%Y-%m-%d"),
                         "sales": sales.round(1)})


if __name__ == "__main__":
    for name, frame in (("passengers", passengers()), ("visits", visits()), ("monthly", monthly()), ("weekly", weekly())):
        frame.to_csv(HERE / f"{name}.csv", index=False)
        print(f"wrote {HERE / name}.csv: {len(frame)} rows")
