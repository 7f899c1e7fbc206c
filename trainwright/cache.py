"""Where trainwright keeps what it measured about this machine, between runs (the matmul peak).

``$TRAINWRIGHT_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/trainwright``, else
``~/.cache/trainwright``. ``TRAINWRIGHT_CACHE_DIR=off`` (or an empty value) turns the cache off:
every run measures again. Deleting the directory is always safe.

Example:
    >>> cache_dir()
    PosixPath('/home/me/.cache/trainwright')
"""

from __future__ import annotations

import os
from pathlib import Path

OFF = ("", "off", "0", "false", "no")


def cache_dir() -> Path | None:
    """The cache directory (not created here), or None when the cache is turned off."""
    chosen = os.environ.get("TRAINWRIGHT_CACHE_DIR")
    if chosen is not None:
        return None if chosen.strip().lower() in OFF else Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "trainwright"
