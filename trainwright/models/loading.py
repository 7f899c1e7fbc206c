"""Strict loading of saved weights into a model, all but some keys (a new head), for any source of weights.

Nothing loads unless every tensor of the model (but the skipped ones) is in the weights with the same
shape, and the weights hold nothing else; the error lists what differs, from the input. Batch-norm step
counters (``num_batches_tracked``) may be absent: they are counts, not weights, and torch fills them in.
"""

from __future__ import annotations

import torch
from torch import nn

from trainwright.errors import TrainwrightError


def load_strictly(model: nn.Module, tensors: dict[str, torch.Tensor], skip: set[str], what: str, fix: str) -> int:
    """Copy ``tensors`` into ``model`` except the keys in ``skip``; returns how many were copied.

    ``what`` starts the error ("model.pretrained: the weights in w.safetensors do not fit ResNet"),
    ``fix`` ends it (how to make them fit).

    Example:
        >>> load_strictly(nn.Linear(2, 3), {"weight": torch.zeros(3, 2)}, {"bias"}, "the weights", "")
        1
    """
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if k not in skip}
    found = {k: tuple(v.shape) for k, v in tensors.items() if k not in skip}
    counters = {k for k in expected if k.endswith("num_batches_tracked") and k not in found}
    for key in counters:
        del expected[key]
    if expected != found:
        keys = [*expected, *(k for k in found if k not in expected)]  # in the model's order, from the input
        differ = [k for k in keys if expected.get(k) != found.get(k)]
        shown = ", ".join(f"{k}: model {_shape(expected.get(k))} vs weights {_shape(found.get(k))}" for k in differ[:8])
        more = f" and {len(differ) - 8} more" if len(differ) > 8 else ""
        raise TrainwrightError(f"{what}: {len(differ)} of {len(keys)} tensors differ: {shown}{more}. {fix}".rstrip(". ") + ".")
    missing, unexpected = model.load_state_dict({k: tensors[k] for k in found}, strict=False)
    assert set(missing) - counters == set(model.state_dict()) & skip and not unexpected, (missing, unexpected)  # checked above
    return len(found)


def _shape(shape: tuple[int, ...] | None) -> str:
    return "absent" if shape is None else str(list(shape))
