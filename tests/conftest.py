"""Shared fixtures, and one thread per test process.

``make test`` runs the suite on every core with pytest-xdist, one worker per core. Each worker
and each ``trainwright`` command a test starts uses one thread, so workers never wait on each
other's OpenMP threads (on a 2-core machine that oversubscription made runs 10-40x slower) and
results do not depend on the core count.
"""

from __future__ import annotations

import os
import tempfile

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # before torch is imported here; subprocesses inherit it
# The suite is a busy machine: a worker that `train` starts when a core is idle (background.Worker) would only take
# CPU from the other test processes. The worker's own tests set it to 1.
os.environ.setdefault("TRAINWRIGHT_WORKER", "0")
# Measured matmul peaks are cached within a test session only, never in the user's ~/.cache.
os.environ.setdefault("TRAINWRIGHT_CACHE_DIR", tempfile.mkdtemp(prefix="trainwright-cache-"))

from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # in case torch was imported first (a plugin)

from helpers import penguins_like


@pytest.fixture
def penguins_csv(tmp_path: Path) -> Path:
    path = tmp_path / "penguins.csv"
    penguins_like().to_csv(path, index=False)
    return path
