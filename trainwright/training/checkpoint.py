"""Checkpoints as safetensors: every tensor in the file body, everything else as JSON metadata.

A training state (model, optimizer, schedule, RNG states, epoch, history, callback state) is a
nest of dicts, lists, numbers and tensors. ``flatten`` moves each tensor into a flat
``{path: tensor}`` map and leaves a ``{"__tensor__": path}`` marker in the JSON skeleton;
``unflatten`` reverses it. No pickle is involved, so loading a checkpoint runs no code.

Example:
    >>> save_state(run_dir, run_dir.checkpoint, {"epoch": 3, "model": model.state_dict()})
    >>> load_state(run_dir.checkpoint)["epoch"]
    3
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from trainwright.errors import TrainwrightError
from trainwright.rundir import RunDir

_MARK = "__tensor__"
_META_KEY = "trainwright_state"


_PLAIN = frozenset({str, int, bool, type(None)})


def flatten(obj: Any, tensors: dict[str, torch.Tensor], path: str = "s") -> Any:
    """A JSON-able skeleton of ``obj``, with its tensors put into ``tensors`` by path (as they are:
    ``Snapshots`` copies them)."""
    kind = type(obj)
    if kind in _PLAIN:  # most of a state's leaves; checked first, as this runs every epoch
        return obj
    if kind is float:
        return obj if math.isfinite(obj) else {"__float__": "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")}
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach()
        return {_MARK: path}
    if isinstance(obj, dict):
        if all(type(k) is str and k[:2] != "__" for k in obj):
            return {k: flatten(v, tensors, f"{path}.{i}") for i, (k, v) in enumerate(obj.items())}
        # Other keys (the optimizer's integer parameter ids) survive as [key, value] pairs.
        return {
            "__dict__": [
                [flatten(k, tensors, f"{path}.k{i}"), flatten(v, tensors, f"{path}.{i}")] for i, (k, v) in enumerate(obj.items())
            ]
        }
    if isinstance(obj, (list, tuple)):
        items = [flatten(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, (bool, int, str)):  # subclasses (an IntEnum) are stored as their plain value
        return obj
    if isinstance(obj, float):
        return flatten(float(obj), tensors, path)
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


def save_state(run_dir: RunDir, path: str | Path, state: dict) -> None:
    """Write ``state`` atomically into the run directory: a crash mid-write leaves the previous checkpoint intact."""
    write_snapshot(run_dir, path, *Snapshots().take(state))


class Snapshots:
    """Copies of a training state's tensors (on the CPU, contiguous, sharing no storage, as
    safetensors wants) and its JSON skeleton, safe to write later.

    The copies go into buffers kept from one ``take`` to the next, filled by one fused copy:
    a training state has the same tensors every epoch, so an epoch's snapshot allocates
    nothing. A snapshot is therefore valid until the next ``take``, which is all a writer
    that keeps only the latest state needs.
    """

    def __init__(self) -> None:
        self.buffers: dict[str, torch.Tensor] = {}

    def take(self, state: dict) -> tuple[dict[str, torch.Tensor], Any]:
        live: dict[str, torch.Tensor] = {}
        skeleton = flatten(state, live)
        if not self._fits(live):
            self.buffers = {path: torch.empty(t.shape, dtype=t.dtype) for path, t in live.items()}
        on_cpu = [(self.buffers[path], t) for path, t in live.items() if t.device.type == "cpu"]
        if on_cpu:
            torch._foreach_copy_(*map(list, zip(*on_cpu)))
        for path, t in live.items():
            if t.device.type != "cpu":
                self.buffers[path].copy_(t)  # from an accelerator: waits for it, so the copy is complete
        return dict(self.buffers), skeleton

    def _fits(self, live: dict[str, torch.Tensor]) -> bool:
        buffers = self.buffers
        return buffers.keys() == live.keys() and all(
            buffers[path].shape == t.shape and buffers[path].dtype == t.dtype for path, t in live.items()
        )


def write_snapshot(run_dir: RunDir, path: str | Path, tensors: dict[str, torch.Tensor], skeleton: Any) -> None:
    """A snapshot from ``Snapshots.take`` as one safetensors file: the tensors, and the skeleton as metadata."""
    run_dir.write_tensors(path, tensors, metadata={_META_KEY: json.dumps(skeleton)})


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
        raise TrainwrightError(
            f"{path} is not a trainwright checkpoint ({error}); it may be corrupt or from another tool"
        ) from None
    return unflatten(skeleton, tensors)
