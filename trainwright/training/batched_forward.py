"""The forward pass of K stacked copies of one architecture: (K, B, ...) in, (K, B, outputs) out.

The members' parameters are stacked (``torch.func.stack_module_state``: name -> (K, ...)). An MLP
(an ``nn.Sequential`` of ``Linear``, elementwise activations, dropout and a leading ``Flatten``, as
``models/mlp.py`` builds it without batch norm) runs as explicit grouped matmuls: each Linear is one
``torch.baddbmm`` over its weights stacked (K, out, in), so a layer costs the same few operators for
K members as for one. Any other model runs through ``torch.func.vmap`` of ``functional_call``,
which serves every architecture vmap can trace but pays vmap's dispatch on every operator (the
batched 10-fold fit of the digits MLP took 1.3 to 1.6x the CPU time per fold-epoch through vmap, two
runs each on a shared machine).

Dropout draws with ``torch.rand`` (``RandDropout``): torch's CPU dropout draws through
``bernoulli_``, about 3x slower per element, and here K members' masks are drawn at once, each
member its own (vmap's ``randomness="different"``).

Example:
    >>> forward = StackedForward(modules[0])
    >>> params, buffers = stack_module_state(modules)
    >>> forward(params, buffers, x)  # x: (K, B, features) -> (K, B, outputs)
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

# Layers that act on each element alone, so (K, B, features) passes through them as (B, features) would.
ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.ELU, nn.Identity, nn.Dropout)


class RandDropout(nn.Module):
    """Dropout drawn with ``torch.rand`` (same distribution: keep with probability 1 - p, scale by 1 / (1 - p)).
    torch's CPU dropout draws through ``bernoulli_``, about 3x slower per element than ``rand`` here, and a
    batched fit draws K members' masks at once."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = (torch.rand_like(x) >= self.p).to(x.dtype).mul_(1 / (1 - self.p))  # 0 or 1 / (1 - p)
        return x * keep  # a float mask: the product and its backward need no casts


def with_rand_dropout(module: nn.Module) -> nn.Module:
    """``module`` with each ``nn.Dropout`` replaced by ``RandDropout`` (in place; returns it)."""
    for name, child in list(module.named_children()):
        if type(child) is nn.Dropout:
            setattr(module, name, RandDropout(child.p))
        else:
            with_rand_dropout(child)
    return module


def mlp_layers(module: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """``module``'s layers when it is an MLP the grouped matmuls can run, else None."""
    if type(module) is not nn.Sequential:
        return None
    layers = list(module.named_children())
    for i, (_, layer) in enumerate(layers):
        flatten = type(layer) is nn.Flatten and i == 0 and layer.start_dim == 1 and layer.end_dim == -1
        if not (flatten or type(layer) is nn.Linear or isinstance(layer, (*ELEMENTWISE, RandDropout))):
            return None
    return layers


class StackedForward:
    """K members' forward on (K, B, ...) inputs, their parameters and buffers stacked (K, ...) by name.
    ``how`` says which way it runs: "grouped matmuls" (an MLP) or "torch.func.vmap" (any other model)."""

    def __init__(self, module: nn.Module):
        self.base = with_rand_dropout(copy.deepcopy(module).to("meta"))  # the architecture; the stacks fill it in
        self.layers = mlp_layers(self.base)
        self.how = "grouped matmuls" if self.layers is not None else "torch.func.vmap"
        self.vmapped = vmap(self._one, in_dims=(0, 0, 0), randomness="different")

    def train(self, mode: bool = True) -> None:
        self.base.train(mode)  # dropout draws masks in training mode only

    def __call__(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        flattens = self.layers is not None and type(self.layers[0][1]) is nn.Flatten
        if self.layers is None or (x.ndim != 3 and not flattens):  # a Linear on (B, T, features): vmap's
            return self.vmapped(params, buffers, x)
        # Features first, (K, features, B): W @ x, so every weight's gradient (g @ x^T) comes out in the weight's own
        # memory order (x @ W^T would give it transposed, and the fused optimizer would need a copy of each).
        x = x.flatten(2).mT  # (K, B, ...) -> (K, features, B), a view
        for name, layer in self.layers:
            if type(layer) is nn.Linear:
                weight, bias = params[f"{name}.weight"], params.get(f"{name}.bias")  # (K, out, in), (K, out)
                x = torch.bmm(weight, x) if bias is None else torch.baddbmm(bias.unsqueeze(2), weight, x)  # (K, out, B)
            elif type(layer) is not nn.Flatten:  # elementwise; the Flatten is done
                x = layer(x)
        return x.mT  # (K, B, outputs), a view

    def _one(self, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.base, (params, buffers), (x,))


def vmap_problem(module: nn.Module, x: torch.Tensor) -> str | None:
    """Why ``StackedForward`` cannot run ``module``'s forward and backward on two stacked copies, or None when it
    can (an MLP always can: it needs no vmap)."""
    if mlp_layers(module) is not None:
        return None
    try:
        params, buffers = stack_module_state([module, module])
        out = StackedForward(module)(params, buffers, torch.stack([x, x]))
        out.float().sum().backward()
    except Exception as error:  # noqa: BLE001 - any failure means: fit these one after another
        return f"vmap cannot run this model ({type(error).__name__})"
    return None
