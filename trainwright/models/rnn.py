"""Recurrent networks (``rnn``, ``lstm``, ``gru``) for text classification and forecasting.

Text: token ids (B, T) -> embeddings -> a packed sequence (each text only as long as its own
tokens, so padding never reaches the recurrence) -> the last hidden state of the top layer (both
directions when bidirectional) -> a linear head. Series: windows (B, T, F) -> the recurrence ->
the last hidden state -> ``horizon`` values, added to the window's last observed target value
(the network learns the change from the naive forecast, which keeps it right under a trend that
leaves the training range). LSTM and GRU gates keep gradients alive over long sequences; all
three have their gradient norm clipped by default (``train.clip_grad_norm: 1.0``).

Example:
    >>> build(RNNConfig(type="lstm"), (16,), 2, vocab_size=100)(torch.randint(0, 100, (4, 16))).shape
    torch.Size([4, 2])
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from trainwright.config import ModelConfig

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RNNConfig(ModelConfig):
    type: Literal["rnn", "lstm", "gru"] = "lstm"
    hidden: int = Field(64, ge=1, description="hidden units per layer and direction")
    layers: int = Field(1, ge=1)
    bidirectional: bool = False
    dropout: float = Field(0.0, ge=0, lt=1, description="between stacked layers, and before the head")
    embedding: int = Field(64, ge=1, description="text only: token embedding width")


class Recurrent(nn.Module):
    """(B, T) token ids or (B, T, F) windows -> (B, out_features)."""

    def __init__(self, cfg: RNNConfig, features: int, out_features: int, vocab_size: int | None):
        super().__init__()
        self.text = vocab_size is not None
        # padding_idx=0: the [PAD] embedding stays zero and gets no gradient.
        self.embed = nn.Embedding(vocab_size, cfg.embedding, padding_idx=0) if self.text else None
        self.rnn = CELLS[cfg.type](cfg.embedding if self.text else features, cfg.hidden, num_layers=cfg.layers, batch_first=True,
                                   dropout=cfg.dropout if cfg.layers > 1 else 0.0, bidirectional=cfg.bidirectional)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden * (2 if cfg.bidirectional else 1), out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.text:
            ids = x.long()  # (B, T); float zeros when a shape check probes the model
            lengths = (ids != 0).sum(1).clamp_min(1).cpu()  # an empty text still reads one (padding) step
            packed = pack_padded_sequence(self.embed(ids), lengths, batch_first=True, enforce_sorted=False)
            _, state = self.rnn(packed)
        else:
            _, state = self.rnn(x)  # x: (B, T, F)
        h = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c); h: (layers * directions, B, hidden)
        last = torch.cat([h[-2], h[-1]], dim=1) if self.rnn.bidirectional else h[-1]  # (B, directions * hidden)
        out = self.head(self.drop(last))  # (B, out_features)
        return out if self.text else out + x[:, -1, :1]  # series: the change from the last target value


def build(cfg: RNNConfig, input_shape: tuple[int, ...], out_features: int, vocab_size: int | None = None) -> nn.Module:
    """Text when ``vocab_size`` is given (input (T,) token ids), else series windows (input (T, F))."""
    if vocab_size is None and len(input_shape) != 2:
        raise ValueError(
            f"{cfg.type} reads sequences: token ids (text) or (lookback, features) windows, not input shape {input_shape}"
        )
    return Recurrent(cfg, input_shape[-1], out_features, vocab_size)
