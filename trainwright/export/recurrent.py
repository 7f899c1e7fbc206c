"""Recurrent models in a form ``torch.export`` can capture with a dynamic batch and sequence length.

Two obstacles, each with its fix:

- Text RNNs read packed sequences (``pack_padded_sequence``): the packed batch sizes depend on
  the data, so ``torch.export`` refuses them, and the TorchScript exporter, which can translate
  them, crashes on one-layer models in torch 2.13 (``vector::_M_range_check`` in its ONNX
  peephole pass). ``PaddedRecurrent`` computes the same numbers without packing: the recurrence
  runs over the whole padded window and each text's state is read at its last real token
  (padding ids 0 come after the text, so every step before it is identical). A backward
  direction must start at each text's own last token, so bidirectional layers run as two
  one-direction modules, the backward one on each text reversed within its length.
- ``nn.LSTM``/``nn.GRU`` decompose into a Python loop over time, which fixes the sequence length.
  torch 2.13 ships ``while_loop`` versions of both (``torch.export._patches``, what
  ``torch.onnx.export`` uses itself when given dynamic shapes); ``nn.RNN`` has none, so
  ``rnn_while_loop`` adds the same for its tanh and relu cells.

The export's parity check compares the result with the trained module itself, so a change to
``models/rnn.py`` that this file does not follow fails the export loudly instead of silently.

Example:
    >>> with recurrent_loops():
    ...     program = torch.export.export(exportable(module), (ids,), dynamic_shapes=shapes)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch._decomp.decompositions import _rnn_helper, gather_params
from torch._higher_order_ops.while_loop import while_loop
from torch.export._patches import (
    _clone_tensors_that_alias,
    _register_rnn_while_loop_decomposition,
    register_gru_while_loop_decomposition,
    register_lstm_while_loop_decomposition,
)
from torch.nn import functional as F


def is_text_recurrent(module: nn.Module) -> bool:
    """A ``models/rnn.py`` text model: token embedding, a packed recurrence, a linear head."""
    return bool(getattr(module, "text", False)) and isinstance(getattr(module, "rnn", None), nn.RNNBase)


def exportable(module: nn.Module) -> nn.Module:
    """``module``, or its packing-free equivalent when it is a text RNN."""
    return PaddedRecurrent(module) if is_text_recurrent(module) else module


def _direction(rnn: nn.RNNBase, layer: int, suffix: str) -> nn.RNNBase:
    """One layer and direction of ``rnn`` as a one-layer, one-direction module sharing its weights."""
    width = rnn.input_size if layer == 0 else rnn.hidden_size * 2
    kwargs = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
    single = type(rnn)(width, rnn.hidden_size, num_layers=1, bias=rnn.bias, batch_first=True, **kwargs)
    for name in ("weight_ih", "weight_hh", *(("bias_ih", "bias_hh") if rnn.bias else ())):
        setattr(single, f"{name}_l0", getattr(rnn, f"{name}_l{layer}{suffix}"))
    return single


def _at(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values (B, T, H) read at one time step per row, index (B,) -> (B, H)."""
    return values.gather(1, index.view(-1, 1, 1).expand(-1, 1, values.shape[2])).squeeze(1)


class PaddedRecurrent(nn.Module):
    """A text ``Recurrent`` without packed sequences: (B, T) token ids -> (B, out_features)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.embed, self.drop, self.head, self.rnn = model.embed, model.drop, model.head, model.rnn
        self.bidirectional = model.rnn.bidirectional
        if self.bidirectional:
            layers = range(model.rnn.num_layers)
            self.forward_layers = nn.ModuleList(_direction(model.rnn, k, "") for k in layers)
            self.backward_layers = nn.ModuleList(_direction(model.rnn, k, "_reverse") for k in layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = x.long()  # (B, T)
        last = (ids != 0).sum(1).clamp_min(1) - 1  # (B,) each text's last token; an empty text reads one padding step
        h = self.embed(ids)  # (B, T, E)
        if not self.bidirectional:
            out, _ = self.rnn(h)  # (B, T, H): steps after a text's end never reach its last token's state
            return self.head(self.drop(_at(out, last)))
        # Reversed within each text's length; padding positions stay in place: (B, T) time indices.
        steps = torch.ones_like(ids).cumsum(1) - 1  # (B, T) 0, 1, ...: shaped from ids, so T stays symbolic in ONNX
        flip = torch.where(steps <= last.unsqueeze(1), last.unsqueeze(1) - steps, steps)
        flip = flip.unsqueeze(2)  # (B, T, 1), gathered along time
        for forward_rnn, backward_rnn in zip(self.forward_layers, self.backward_layers):
            ahead, _ = forward_rnn(h)  # (B, T, H)
            behind_reversed, _ = backward_rnn(h.gather(1, flip.expand(-1, -1, h.shape[2])))  # (B, T, H)
            behind = behind_reversed.gather(1, flip.expand(-1, -1, behind_reversed.shape[2]))  # back in text order
            h = torch.cat([ahead, behind], dim=2)  # (B, T, 2H)
        # The backward direction ends at the text's first token, step `last` of the reversed run.
        return self.head(self.drop(torch.cat([_at(ahead, last), _at(behind_reversed, last)], dim=1)))


# ── a while_loop decomposition for nn.RNN, as torch.export._patches has for LSTM and GRU ─────────
def _rnn_layer(nonlinearity):
    def layer(inp, hidden, params, has_biases, reverse=False):
        """One layer over inp (T, B, F) from hidden (B, H) -> (outputs (T, B, H), last state (B, H))."""
        ih_weight, hh_weight = params[0], params[1]
        ih_bias, hh_bias = (params[2], params[3]) if has_biases else (None, None)
        precomputed = F.linear(inp, ih_weight, ih_bias)  # (T, B, H): the input's share of every step at once
        precomputed = precomputed.flip(0) if reverse else precomputed
        hh_weight, hh_bias = _clone_tensors_that_alias((hh_weight, hh_bias))
        state = hidden.unsqueeze(0)  # (1, B, H)
        out = torch.empty(precomputed.size(0), *state.shape[1:], dtype=state.dtype, device=state.device)

        def cond_fn(idx, out, state):
            return idx < precomputed.size(0)

        def body_fn(idx, out, state):
            i = idx.item()
            torch._check_is_size(i, max=precomputed.size(0) - 1)
            state = nonlinearity(precomputed[i] + F.linear(state, hh_weight, hh_bias))
            out = out.clone()
            out[i] = state.squeeze(0)
            return idx + 1, out, state

        _, out, state = while_loop(cond_fn, body_fn, [torch.tensor(0, dtype=torch.int64), out, state])
        return (out.flip(0) if reverse else out), state.squeeze(0)

    return layer


def _rnn_impl(nonlinearity):
    def impl(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):
        grouped = gather_params(params, has_biases, False)
        out, finals = _rnn_helper(input, list(hx.unbind(0)), grouped, has_biases, num_layers, dropout, train, bidirectional,
                                  batch_first, _rnn_layer(nonlinearity))
        return out, torch.stack(finals, 0)

    return impl


@contextlib.contextmanager
def recurrent_loops() -> Iterator[None]:
    """While this is open, ``torch.export`` keeps the time loop of RNN/LSTM/GRU layers a loop
    (``while_loop``, an ONNX ``Loop``), so the sequence length stays dynamic."""
    ops = (torch.ops.aten.lstm.input, torch.ops.aten.gru.input, torch.ops.aten.rnn_tanh.input, torch.ops.aten.rnn_relu.input)
    with (
        register_lstm_while_loop_decomposition(),
        register_gru_while_loop_decomposition(),
        _register_rnn_while_loop_decomposition(torch.ops.aten.rnn_tanh.input, _rnn_impl(torch.tanh)),
        _register_rnn_while_loop_decomposition(torch.ops.aten.rnn_relu.input, _rnn_impl(torch.relu)),
    ):
        # torch's helpers swap the kernels but not each operator's dispatch cache: a kernel cached by an
        # earlier export (torch.onnx.export decomposes these ops with a Python loop over time) would
        # win and fix the sequence length. Clear the cache on the way in and out.
        _clear_dispatch_caches(ops)
        try:
            yield
        finally:
            _clear_dispatch_caches(ops)


def _clear_dispatch_caches(ops) -> None:
    for op in ops:
        op._dispatch_cache.clear()
