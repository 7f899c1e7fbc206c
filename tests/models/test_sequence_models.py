"""Recurrent and Transformer models: shapes, padding that never leaks into the result, config checks."""

from __future__ import annotations

import pytest
import torch

from trainwright.configure import load_config
from trainwright.errors import TrainwrightError
from trainwright.models.registry import build_model
from trainwright.models.rnn import RNNConfig
from trainwright.models.transformer import TransformerConfig

CONFIGS = [
    RNNConfig(type="rnn"), RNNConfig(type="lstm", layers=2, dropout=0.1), RNNConfig(type="gru", bidirectional=True),
    TransformerConfig(pooling="mean"), TransformerConfig(pooling="cls", layers=1),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.type}-{getattr(c, 'pooling', '')}")
def test_padding_does_not_change_the_output(cfg):
    torch.manual_seed(0)
    model = build_model(cfg, (12,), 3, vocab_size=50).eval()
    tokens = torch.tensor([[5, 9, 7, 3, 0, 0, 0, 0], [4, 4, 8, 2, 11, 6, 13, 1]])  # padded to 8
    longer = torch.cat([tokens, torch.zeros(2, 4, dtype=torch.long)], dim=1)  # the same texts padded to 12
    with torch.no_grad():
        assert torch.allclose(model(tokens), model(longer), atol=1e-5)
        empty = model(torch.zeros(2, 12, dtype=torch.long))  # an all-padding text gives a number, not NaN
    assert model(tokens).shape == (2, 3) and torch.isfinite(empty).all()


@pytest.mark.parametrize("cfg", [RNNConfig(type="gru"), TransformerConfig(d_model=16, heads=2)], ids=["gru", "transformer"])
def test_forecasters_map_windows_to_the_horizon_around_the_last_value(cfg):
    model = build_model(cfg, (24, 2), 6)
    for p in model.head.parameters():
        torch.nn.init.zeros_(p)  # with a zero head the forecast is the naive one: repeat the last value
    x = torch.randn(4, 24, 2)
    assert torch.allclose(model(x), x[:, -1, :1].expand(-1, 6))


def test_recurrent_models_clip_gradients_by_default_and_pick_sequence_defaults():
    assert load_config({"data": {"source": "word-order"}}).model.type == "lstm"
    assert load_config({"data": {"source": "seasonal"}, "model": {"type": "gru"}}).train.clip_grad_norm == 1.0
    assert (
        load_config(
            {"data": {"source": "seasonal"}, "model": {"type": "gru"}, "train": {"clip_grad_norm": 5}}
        ).train.clip_grad_norm
        == 5
    )
    assert load_config({"data": {"source": "seasonal"}, "model": {"type": "transformer"}}).train.clip_grad_norm is None
    with pytest.raises(TrainwrightError, match="multiple of heads"):
        load_config({"data": {"source": "word-order"}, "model": {"type": "transformer", "d_model": 30, "heads": 4}})
    with pytest.raises(TrainwrightError, match="cannot read text"):
        build_model(load_config({"data": {"source": "iris"}}).model, (10,), 2, vocab_size=30)
