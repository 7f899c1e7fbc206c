"""The base of every config section (unknown keys are errors, values are immutable), and the two operations
on config trees as plain dicts that the loaders, resume and compare share."""

from __future__ import annotations

import copy
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict


class Frozen(BaseModel):
    """Base for config sections: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def deep_merge(base: dict, top: dict) -> dict:
    """A new dict with ``top`` laid over ``base``, section by section."""
    merged = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def flat(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"optimizer": {"lr": 0.1}}}`` -> ``{"train.optimizer.lr": 0.1}``."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def known_device(value: str) -> str:
    """A device name torch takes: auto, cpu, cuda, cuda:N or mps."""
    if value not in ("auto", "cpu", "mps") and not value.startswith("cuda"):
        raise ValueError("device must be auto, cpu, cuda, cuda:N or mps")
    return value


Device = Annotated[str, AfterValidator(known_device)]  # a config's ``device`` key, checked as it is read
