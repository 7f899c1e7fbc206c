"""Numeric precision of training: ``train.precision`` = fp32 | bf16 | fp16.

bf16 and fp16 run the forward pass under ``torch.autocast`` (matmuls and convolutions in the low
precision, reductions and losses in fp32); the weights, gradients and optimizer state stay fp32.
fp16's narrow exponent range needs a ``GradScaler`` so small gradients do not flush to zero; bf16
has fp32's range and needs none. Both work on the CPU too (torch >= 2.3), but only CPUs with
native bf16/fp16 instructions get faster from them: ``trainwright estimate`` shows the matmul
rate at the run's precision, so a slow one is visible before training.

Example:
    >>> amp = autocast(torch.device("cpu"), "bf16")
    >>> with amp:
    ...     out = model(x)          # (B, outputs) in bfloat16
"""

from __future__ import annotations

import contextlib

import torch

from trainwright.errors import TrainwrightError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """A reusable context for the forward pass; fp32 gets a no-op (a disabled autocast still costs ~10 us a step)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """Enabled for fp16 only; a disabled scaler passes ``scale``/``step``/``update`` straight through."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def check_precision(device: torch.device, precision: str) -> None:
    """A precision the device cannot run is a config error, said before training starts."""
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        name = torch.cuda.get_device_name(device)
        raise TrainwrightError(
            f"train.precision = 'bf16' but {name} has no bfloat16 support; use fp16 (with loss scaling) or fp32"
        )
    if precision != "fp32" and device.type not in ("cpu", "cuda", "mps"):
        raise TrainwrightError(f"train.precision = {precision!r} is not supported on {device.type}; use fp32")
