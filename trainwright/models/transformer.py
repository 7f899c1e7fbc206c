"""A Transformer encoder for text classification and forecasting.

Text: token embeddings + learned positional embeddings -> pre-norm encoder layers (multi-head
self-attention that ignores padding through ``src_key_padding_mask``, then a feed-forward
block) -> mean pooling over the real tokens, or a learned [CLS] vector prepended to every text
-> a linear head. Series: each row of a window (F values) is projected to ``d_model`` and gets a
positional embedding; the encoded window is flattened into the head, which outputs ``horizon``
values added to the last observed target value (as in ``rnn.py``).

Example:
    >>> build(TransformerConfig(), (16,), 3, vocab_size=100)(torch.randint(0, 100, (4, 16))).shape
    torch.Size([4, 3])
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from trainwright.config import ModelConfig


class TransformerConfig(ModelConfig):
    type: Literal["transformer"] = "transformer"
    d_model: int = Field(64, ge=2, description="embedding width, a multiple of heads")
    heads: int = Field(4, ge=1)
    layers: int = Field(2, ge=1)
    ff: int = Field(128, ge=1, description="feed-forward hidden width")
    dropout: float = Field(0.1, ge=0, lt=1)
    pooling: Literal["mean", "cls"] = Field("mean", description="text: mean over real tokens, or a learned [CLS] vector")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> TransformerConfig:
        if self.d_model % self.heads:
            raise ValueError(f"d_model {self.d_model} must be a multiple of heads {self.heads}")
        return self


class Transformer(nn.Module):
    """(B, T) token ids or (B, T, F) windows -> (B, out_features)."""

    def __init__(self, cfg: TransformerConfig, input_shape: tuple[int, ...], out_features: int, vocab_size: int | None):
        super().__init__()
        self.text, self.pooling = vocab_size is not None, cfg.pooling
        length = input_shape[0] + (1 if self.text and cfg.pooling == "cls" else 0)
        self.embed = (
            nn.Embedding(vocab_size, cfg.d_model, padding_idx=0) if self.text else nn.Linear(input_shape[-1], cfg.d_model)
        )
        self.position = nn.Parameter(torch.randn(1, length, cfg.d_model) * 0.02)
        self.cls = nn.Parameter(torch.randn(1, 1, cfg.d_model) * 0.02) if self.text and cfg.pooling == "cls" else None
        layer = nn.TransformerEncoderLayer(
            cfg.d_model, cfg.heads, cfg.ff, cfg.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, norm=nn.LayerNorm(cfg.d_model), enable_nested_tensor=False)
        width = cfg.d_model if self.text else cfg.d_model * input_shape[0]
        self.head = nn.Linear(width, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.text:
            h = self.encoder(self.embed(x) + self.position)  # (B, T, d)
            return self.head(h.flatten(1)) + x[:, -1, :1]  # (B, horizon): the change from the last target value
        ids = x.long()  # (B, T); float zeros when a shape check probes the model
        pad = ids == 0  # (B, T) True where padding
        pad[:, 0] = False  # an empty text still attends to one position (no all-masked rows, no NaN)
        start = 0 if self.cls is None else 1  # position 0 is the [CLS] vector's
        h = self.embed(ids) + self.position[:, start : start + ids.shape[1]]  # (B, T, d)
        if self.cls is not None:
            # .shape[0], not len(): len() makes the batch size a Python int, which torch.export would fix. Exported,
            # the batch is dynamic; the length stays static: torch.export cannot prove the (B, 1 + T) padding mask's
            # shape checks inside nn.MultiheadAttention for a symbolic T (texts are padded to the trained length anyway).
            h = torch.cat([self.cls.expand(h.shape[0], -1, -1) + self.position[:, :1], h], dim=1)  # (B, 1 + T, d)
            pad = torch.cat([pad.new_zeros(pad.shape[0], 1), pad], dim=1)
        h = self.encoder(h, src_key_padding_mask=pad)
        if self.cls is not None:
            return self.head(h[:, 0])
        keep = (~pad).unsqueeze(-1).to(h.dtype)  # (B, T, 1)
        return self.head((h * keep).sum(1) / keep.sum(1))  # mean over the real tokens only


def build(cfg: TransformerConfig, input_shape: tuple[int, ...], out_features: int, vocab_size: int | None = None) -> nn.Module:
    """Text when ``vocab_size`` is given (input (T,) token ids), else series windows (input (T, F))."""
    if vocab_size is None and len(input_shape) != 2:
        raise ValueError(
            f"transformer reads sequences: token ids (text) or (lookback, features) windows, not input shape {input_shape}"
        )
    return Transformer(cfg, input_shape, out_features, vocab_size)
