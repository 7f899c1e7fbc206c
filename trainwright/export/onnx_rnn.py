"""``nn.RNN`` as ONNX ``RNN`` nodes, which torch 2.13's ONNX exporter lacks.

onnxscript's torch library translates ``aten::lstm`` and ``aten::gru`` into ONNX ``LSTM`` and
``GRU`` nodes (any sequence length), but has nothing for ``aten::rnn_tanh``/``aten::rnn_relu``:
the exporter then decomposes the RNN into a Python loop unrolled over the example's length, and
the graph fails (or silently reads the wrong steps) at any other length. These functions, passed
as ``custom_translation_table``, emit ONNX ``RNN`` nodes instead, one per layer, modelled on
onnxscript's own ``aten_gru``. Only imported when exporting to ONNX (onnxscript is in the
``export`` extra).

Example:
    >>> torch.onnx.export(program, custom_translation_table=RNN_TRANSLATIONS)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from onnxscript import opset18 as op
from onnxscript.function_libs.torch_lib.tensor_typing import TFloat


def _rnn(activation: str):
    def translate(input: TFloat, hx: TFloat, params: Sequence[TFloat], has_biases: bool, num_layers: int, dropout: float,
                  train: bool, bidirectional: bool, batch_first: bool) -> tuple[TFloat, TFloat]:
        directions = 2 if bidirectional else 1
        x = op.Transpose(input, perm=[1, 0, 2]) if batch_first else input  # (T, B, F)
        per_direction = 4 if has_biases else 2  # W_ih, W_hh[, b_ih, b_hh]
        finals = []
        for layer in range(num_layers):
            start = layer * per_direction * directions
            groups = [params[start + d * per_direction : start + (d + 1) * per_direction] for d in range(directions)]
            w = op.Concat(*[op.Unsqueeze(g[0], [0]) for g in groups], axis=0)  # (D, H, F)
            r = op.Concat(*[op.Unsqueeze(g[1], [0]) for g in groups], axis=0)  # (D, H, H)
            h0 = op.Slice(hx, [layer * directions], [(layer + 1) * directions], axes=[0])  # (D, B, H)
            kwargs = {"direction": "bidirectional" if bidirectional else "forward", "hidden_size": hx.shape[2],
                      "activations": [activation] * directions}
            if has_biases:
                b = op.Concat(*[op.Unsqueeze(op.Concat(g[2], g[3], axis=0), [0]) for g in groups], axis=0)  # (D, 2H)
                y, y_h = op.RNN(x, w, r, b, None, h0, **kwargs)
            else:
                y, y_h = op.RNN(x, w, r, None, None, h0, **kwargs)
            # y: (T, D, B, H) -> (T, B, D * H), the next layer's input
            y = op.Transpose(y, perm=[0, 2, 1, 3])
            x = op.Reshape(y, op.Concat(op.Slice(op.Shape(y), [0], [2]), op.Constant(value_ints=[-1]), axis=0))
            finals.append(y_h)
        out = op.Transpose(x, perm=[1, 0, 2]) if batch_first else x
        return out, (finals[0] if len(finals) == 1 else op.Concat(*finals, axis=0))

    translate.__name__ = f"aten_rnn_{activation.lower()}"
    return translate


RNN_TRANSLATIONS = {torch.ops.aten.rnn_tanh.input: _rnn("Tanh"), torch.ops.aten.rnn_relu.input: _rnn("Relu")}
