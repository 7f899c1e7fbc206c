"""A model's layer table: output shapes, parameters and forward FLOPs per row, for model.json.

Works on any ``nn.Module`` (built-in families and a user's own) by running one row through it
with forward hooks on the leaf modules and PyTorch's FLOP counter (which counts matrix
multiplies and convolutions: 2 FLOPs per multiply-add).

Example:
    >>> summary = layer_summary(build(MLPConfig(hidden=[128, 64]), (61,), 10), (61,))
    >>> summary["flops_per_row"], summary["layers"][0]
    (33280, {'name': '0', 'type': 'Linear', 'output_shape': [128], 'parameters': 7936, 'flops': 15616})
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@torch.no_grad()
def layer_summary(module: nn.Module, input_shape: tuple[int, ...]) -> dict:
    """``{"flops_per_row": int, "layers": [{name, type, output_shape, parameters, flops}, ...]}``."""
    leaves = [(name, m) for name, m in module.named_modules() if name and not any(True for _ in m.children())]
    shapes: dict[str, list[int]] = {}

    def record(name: str):
        def hook(_module, _inputs, output):
            if isinstance(output, torch.Tensor):
                shapes[name] = list(output.shape[1:])  # per row: the batch dimension dropped
        return hook

    handles = [m.register_forward_hook(record(name)) for name, m in leaves]
    device = next(module.parameters(), torch.zeros(())).device
    was_training = module.training
    try:
        module.eval()
        with FlopCounterMode(display=False) as counter:
            module(torch.zeros(1, *input_shape, device=device))  # one example: (1, *input_shape)
    finally:
        module.train(was_training)
        for handle in handles:
            handle.remove()
    counts = counter.get_flop_counts()
    root = type(module).__name__  # the counter names modules "<RootClass>.<name>"
    layers = [
        {
            "name": name,
            "type": type(m).__name__,
            "output_shape": shapes.get(name),
            "parameters": sum(p.numel() for p in m.parameters(recurse=False)),
            "flops": int(sum(counts.get(f"{root}.{name}", {}).values())),
        }
        for name, m in leaves
    ]
    return {"flops_per_row": int(counter.get_total_flops()), "layers": layers}
