"""``train.compile``: the model's forward compiled with ``torch.compile``, in place.

``torch.compile(module)`` returns a wrapper whose ``state_dict`` keys gain an ``_orig_mod.``
prefix, so weights and checkpoints would no longer load into a plain model; and
``nn.Module.compile()`` traces nothing in torch 2.13 (a custom backend is never called).
Replacing the module's bound ``forward`` compiles training, validation and evaluation and keeps
the module, its keys and its checkpoints exactly as they were.

``mode`` is torch.compile's: ``None`` (inductor's default) or ``"reduce-overhead"`` (CUDA graphs: one
launch replays a whole step, for small models whose GPU steps wait on the host). Random operators
(dropout) draw from torch's own generator, as eager does (inductor's ``fallback_random``): a
compiled run trains the same model as an eager one, to floating-point rounding, seed for seed.
On a CPU, the compiled graphs' fp32 matmuls (forward and backward) run through oneDNN rather than
MKL (``training/onednn.py``): on our AMD EPYC that is what makes compiling pay.

Example:
    >>> compile_forward(model)      # the first calls compile; later calls run the compiled graph
"""

from __future__ import annotations

import torch
from torch import nn


def compile_forward(module: nn.Module, mode: str | None = None) -> nn.Module:
    options = {"fallback_random": True} | ({"triton.cudagraphs": True} if mode == "reduce-overhead" else {})
    # Imported here: it imports torch._inductor (about 1.8 s), which only a compiled run needs.
    from trainwright.training.onednn import ONEDNN_MATMULS

    if ONEDNN_MATMULS is not None:  # rewrites CPU matmuls only: a no-op in a CUDA graph
        options["post_grad_custom_post_pass"] = ONEDNN_MATMULS
    module.forward = torch.compile(module.forward, options=options)
    return module
