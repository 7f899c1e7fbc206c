"""Compiled CPU matmuls through oneDNN: an inductor graph pass for ``train.compile`` on a CPU.

Inductor compiles a training step's fp32 ``mm``/``addmm`` (forward and backward) to the same BLAS
call eager makes (MKL ``sgemm`` in torch's CPU wheels); its own C++ GEMM template needs constant
weights (inference with ``freezing``), so ``max-autotune`` offers nothing else for a training matmul.
On an AMD EPYC (Zen 5, AVX-512) MKL takes its slower code path on a non-Intel CPU: one thread ran the
compute-bound MLP's shapes at about half the speed of oneDNN's fp32 matmul, which torch ships
(``torch.ops.mkldnn._linear_pointwise``; see the README's Speed section). This pass, run by inductor
after autograd has split the step into forward and backward graphs, replaces each 2-D fp32 CPU
``mm(a, b)`` and ``addmm(bias, a, b)`` with ``trainwright::onednn_mm``, which calls that oneDNN op
(it computes ``a @ w.T + bias``, so ``w = b.T``; a view, no copy here). The results are fp32 matmuls
either way: equal to rounding (tests/training/test_onednn.py).

Whether it pays is measured, not assumed: ``train.compile: auto`` times the compiled step, pass
included, against eager (``compute/timing.py``), on whatever CPU the run has.

Example:
    >>> torch.compile(fn, options={"post_grad_custom_post_pass": ONEDNN_MATMULS})
"""

from __future__ import annotations

import torch
from torch._inductor.custom_graph_pass import CustomGraphPass, get_hash_for_files

aten = torch.ops.aten


@torch.library.custom_op("trainwright::onednn_mm", mutates_args=())
def onednn_mm(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``a @ b (+ bias)`` for 2-D fp32 CPU tensors, by oneDNN: (M, K) @ (K, N) + (N,) -> (M, N)."""
    return torch.ops.mkldnn._linear_pointwise(a, b.t(), bias, "none", [], "")


@onednn_mm.register_fake
def _(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    return a.new_empty((a.shape[0], b.shape[1]))


class OneDNNMatmuls(CustomGraphPass):
    """Inductor's ``post_grad_custom_post_pass``: ``mm``/``addmm`` of 2-D fp32 CPU tensors -> ``onednn_mm``."""

    def __call__(self, graph: torch.fx.Graph) -> None:
        for node in list(graph.nodes):
            operands = _matmul_operands(node)
            if operands is None:
                continue
            with graph.inserting_before(node):
                replacement = graph.call_function(torch.ops.trainwright.onednn_mm.default, operands)
            replacement.meta["val"] = node.meta["val"]  # same shape, dtype and (contiguous) strides
            node.replace_all_uses_with(replacement)
            graph.erase_node(node)

    def uuid(self) -> bytes:
        return get_hash_for_files((__file__,))  # inductor's cache key: a change here recompiles


def _matmul_operands(node: torch.fx.Node) -> tuple | None:
    """(a, b, bias) of an ``mm`` or plain ``addmm`` (beta = alpha = 1, 1-D bias) on 2-D fp32 CPU tensors, else None."""
    if node.op != "call_function":
        return None
    if node.target is aten.mm.default:
        (a, b), bias = node.args, None
    elif node.target is aten.addmm.default and node.kwargs.get("beta", 1) == 1 and node.kwargs.get("alpha", 1) == 1:
        bias, a, b = node.args
        if not isinstance(bias.meta.get("val"), torch.Tensor) or bias.meta["val"].dim() != 1:
            return None
    else:
        return None
    value = a.meta.get("val")
    if not isinstance(value, torch.Tensor) or value.dtype != torch.float32 or value.device.type != "cpu" or value.dim() != 2:
        return None
    return a, b, bias


ONEDNN_MATMULS = OneDNNMatmuls() if torch.backends.mkldnn.is_available() else None
