"""FLOPs of one training step and the memory it keeps for backward, measured on the real model.

One forward + loss + backward runs on a throwaway copy of the model with a real batch, under
``torch.utils.flop_counter.FlopCounterMode``: it counts matrix multiplications, convolutions and
attention from their shapes (a multiply-add is 2 FLOPs, so a ``Linear(i, o)`` on (B, i) is 2·B·i·o
forward; backward computes the weight gradient and, except for the first layer, the input gradient,
so it is about twice the forward). Elementwise ops, norms, the loss and the optimizer are not
counted; for real models they are a few percent, as in the usual "6 x parameters x tokens" rule.

The same pass records the tensors autograd saves for backward (the activation memory of one
batch) and counts the operators dispatched, optimizer step included: on a GPU, a small model's
step is bound by the host time per operator, not by FLOPs.

Example:
    >>> profile = profile_step(model, xb, yb, F.cross_entropy)
    >>> profile.forward, profile.backward, profile.total     # FLOPs of one step on (B, ...) inputs
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from trainwright.config import OptimizerConfig
from trainwright.training.losses import LossFn
from trainwright.training.optim import build_optimizer


@dataclass(frozen=True)
class LayerFlops:
    name: str  # qualified name in the model ("0", "body.2"), or "(other)" for FLOPs outside any submodule
    kind: str  # the module's class ("Linear", "Conv2d", ...)
    forward: int
    backward: int

    @property
    def total(self) -> int:
        return self.forward + self.backward


@dataclass(frozen=True)
class StepProfile:
    """One training step (forward + backward) on a batch of ``batch_size`` samples."""

    batch_size: int
    forward: int  # FLOPs
    backward: int
    layers: tuple[LayerFlops, ...]  # leaf modules that do counted work, in call order
    saved_bytes: int  # activations kept for backward (parameters and the input batch excluded)
    operators: int  # aten operators dispatched by forward (+ loss), backward and the optimizer step
    forward_operators: int

    @property
    def total(self) -> int:
        return self.forward + self.backward


def profile_step(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, loss_fn: LossFn,
                 amp: contextlib.AbstractContextManager | None = None, optimizer: OptimizerConfig | None = None) -> StepProfile:
    """Count one step of ``model`` on ``xb`` (B, ...) with targets ``yb``; the model itself is untouched.

    The copy runs in training mode (dropout draws, batch-norm statistics) inside a forked RNG, so
    neither the model's weights and buffers nor the global random stream change.
    """
    work = copy.deepcopy(model).train()
    tokens = _count_recurrent_tokens(work)
    skip = {p.data_ptr() for p in work.parameters()} | {xb.data_ptr()}
    saved: dict[tuple[int, int], int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.data_ptr() not in skip:
            nbytes = tensor.numel() * tensor.element_size()
            saved[(tensor.data_ptr(), nbytes)] = nbytes  # a tensor saved by two ops is kept once
        return tensor

    opt = build_optimizer(optimizer or OptimizerConfig(name="sgd"), work.parameters())
    devices = [xb.device.index or 0] if xb.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), FlopCounterMode(display=False) as counter, _OperatorCount() as ops:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor), amp or contextlib.nullcontext():
            loss = loss_fn(work(xb), yb)
        forward, forward_operators = _per_module(counter), ops.count
        loss.backward()
        total = _per_module(counter)
        opt.step()
    layers = _layers(work, forward, total, tokens, len(xb))
    return StepProfile(
        batch_size=len(xb),
        forward=sum(layer.forward for layer in layers),
        backward=sum(layer.backward for layer in layers),
        layers=tuple(layers),
        saved_bytes=sum(saved.values()),
        operators=ops.count,
        forward_operators=forward_operators,
    )


class _OperatorCount(TorchDispatchMode):
    """Counts every aten operator call that runs inside it."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def _per_module(counter: FlopCounterMode) -> dict[str, int]:
    """FLOPs so far by module path as FlopCounterMode names it ("Sequential.0"), plus "Global"."""
    return {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}


def _layers(
    model: nn.Module, forward: dict[str, int], total: dict[str, int], tokens: dict[str, int], batch: int
) -> list[LayerFlops]:
    """One row per leaf module with counted work, and an "(other)" row for the rest."""
    root = type(model).__name__
    modules = dict(model.named_modules())
    names = [name for name in total if name != "Global" and total[name]]
    rows = []
    for name in names:
        if any(other.startswith(name + ".") for other in names):
            continue  # a parent: its FLOPs are its children's
        path = name.removeprefix(root).removeprefix(".")
        module = modules.get(path)
        rows.append(
            LayerFlops(
                path or root,
                type(module).__name__ if module is not None else "?",
                forward.get(name, 0),
                total[name] - forward.get(name, 0),
            )
        )
    counted_forward, counted_total = sum(r.forward for r in rows), sum(r.total for r in rows)
    rest_forward = forward.get("Global", 0) - counted_forward
    rest_backward = total.get("Global", 0) - counted_total - rest_forward
    if rest_forward > 0 or rest_backward > 0:
        rows.append(LayerFlops("(other)", "functional ops", max(rest_forward, 0), max(rest_backward, 0)))
    # Recurrent layers run fused kernels FlopCounterMode has no formula for (mkldnn on the CPU, cuDNN
    # on CUDA): count them from their weights. Per token, every weight matrix (W_ih, W_hh and an LSTM's
    # projection W_hr) does one matrix-vector product, 2 FLOPs per weight; backward is twice that.
    for path, n_tokens in tokens.items():
        if any(row.name == path or row.name.startswith(path + ".") for row in rows):
            continue  # FlopCounterMode did see its work (a decomposed, unfused path)
        module = modules[path]
        weights = sum(p.numel() for name, p in module.named_parameters() if name.startswith("weight"))
        forward_flops = 2 * n_tokens * weights
        rows.append(LayerFlops(path, type(module).__name__, forward_flops, 2 * forward_flops))
    return rows


def _count_recurrent_tokens(model: nn.Module) -> dict[str, int]:
    """Hooks on every nn.RNN/LSTM/GRU that record the tokens (batch x time steps) each one sees."""
    tokens: dict[str, int] = {}

    def hook(path: str):
        def record(module: nn.RNNBase, args: tuple) -> None:
            x = args[0]
            if isinstance(x, nn.utils.rnn.PackedSequence):
                n = x.data.shape[0]  # (total tokens, features)
            else:
                n = x.shape[0] * x.shape[1] if x.dim() == 3 else x.shape[0]  # (B, T, F) / (T, B, F), or unbatched (T, F)
            tokens[path] = tokens.get(path, 0) + n

        return record

    for path, module in model.named_modules():
        if isinstance(module, nn.RNNBase):
            module.register_forward_pre_hook(hook(path))
    return tokens
