"""Checkpoints as safetensors: every tensor in the file body, everything else as JSON metadata.

A training state (model, optimizer, schedule, RNG states, epoch, history, callback state) is a
nest of dicts, lists, numbers and tensors. ``flatten`` moves each tensor into a flat
``{path: tensor}`` map and leaves a ``{"__tensor__": path}`` marker in the JSON skeleton;
``unflatten`` reverses it. No pickle is involved, so loading a checkpoint runs no code.

Example:
    >>> save_state("ckpt.safetensors", {"epoch": 3, "model": model.state_dict()})
    >>> load_state("ckpt.safetensors")["epoch"]
    3
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from trainwright.errors import TrainwrightError
from trainwright.files import atomic_path

_MARK = "__tensor__"
_META_KEY = "trainwright_state"


def flatten(obj: Any, tensors: dict[str, torch.Tensor], path: str = "s") -> Any:
    """A JSON-able skeleton of ``obj``, with its tensors moved into ``tensors`` by path."""
    if isinstance(obj, torch.Tensor):
        # safetensors wants contiguous tensors that share no storage with each other.
        tensors[path] = obj.detach().to("cpu", copy=True).contiguous()
        return {_MARK: path}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: flatten(v, tensors, f"{path}.{i}") for i, (k, v) in enumerate(obj.items())}
        # Other keys (the optimizer's integer parameter ids) survive as [key, value] pairs.
        return {"__dict__": [[flatten(k, tensors, f"{path}.k{i}"), flatten(v, tensors, f"{path}.{i}")] for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, (list, tuple)):
        items = [flatten(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if obj is None or isinstance(obj, (bool, int, float, str)):
        if isinstance(obj, float) and obj != obj:
            return {"__float__": "nan"}
        if isinstance(obj, float) and obj in (float("inf"), float("-inf")):
            return {"__float__": "inf" if obj > 0 else "-inf"}
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint")


def unflatten(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(skeleton, dict):
        if _MARK in skeleton:
            return tensors[skeleton[_MARK]]
        if "__dict__" in skeleton:
            return {unflatten(k, tensors): unflatten(v, tensors) for k, v in skeleton["__dict__"]}
        if "__tuple__" in skeleton:
            return tuple(unflatten(v, tensors) for v in skeleton["__tuple__"])
        if "__float__" in skeleton:
            return float(skeleton["__float__"])
        return {k: unflatten(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [unflatten(v, tensors) for v in skeleton]
    return skeleton


def save_state(path: str | Path, state: dict) -> None:
    """Write ``state`` atomically: a crash mid-write leaves the previous checkpoint intact."""
    write_snapshot(path, *snapshot(state))


def snapshot(state: dict) -> tuple[dict[str, torch.Tensor], Any]:
    """Copies of the state's tensors (on the CPU) and its JSON skeleton, safe to write later."""
    tensors: dict[str, torch.Tensor] = {}
    return tensors, flatten(state, tensors)


def write_snapshot(path: str | Path, tensors: dict[str, torch.Tensor], skeleton: Any) -> None:
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={_META_KEY: json.dumps(skeleton)})


def load_state(path: str | Path) -> dict:
    """Read a state written by ``save_state``; anything else is a clear TrainwrightError."""
    path = Path(path)
    if not path.is_file():
        raise TrainwrightError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path))
        skeleton = json.loads(metadata[_META_KEY])
    except (SafetensorError, OSError, KeyError, ValueError) as error:
        raise TrainwrightError(f"{path} is not a trainwright checkpoint ({error}); it may be corrupt or from another tool") from None
    return unflatten(skeleton, tensors)
