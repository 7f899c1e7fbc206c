"""FLOPs of a training step, counted on the real module: the textbook numbers for Linear layers."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from trainwright.compute.flops import profile_step
from trainwright.config import OptimizerConfig

B, IN, HID, OUT = 5, 8, 16, 4


def two_layers() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(IN, HID), nn.ReLU(), nn.Dropout(0.5), nn.Linear(HID, OUT))


def batch(n: int = B) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, IN), torch.randint(0, OUT, (n,))


def test_linear_layers_count_2_b_in_out_forward_and_twice_that_backward():
    x, y = batch()
    profile = profile_step(two_layers(), x, y, F.cross_entropy)
    first, second = profile.layers
    assert (first.name, first.kind, second.name, second.kind) == ("0", "Linear", "3", "Linear")
    assert first.forward == 2 * B * IN * HID
    assert second.forward == 2 * B * HID * OUT
    # Backward: the weight gradient, plus the input gradient except for the first layer (its input is data).
    assert first.backward == first.forward
    assert second.backward == 2 * second.forward and second.total == 3 * second.forward
    assert profile.forward == first.forward + second.forward
    assert profile.total == profile.forward + profile.backward == first.total + second.total
    assert profile.batch_size == B


def test_flops_grow_linearly_with_the_batch():
    small, large = profile_step(two_layers(), *batch(4), F.cross_entropy), profile_step(two_layers(), *batch(12), F.cross_entropy)
    assert large.total == 3 * small.total


class Functional(nn.Module):
    """A Linear submodule and a matmul of its own: the latter lands in the "(other)" row."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(IN, HID), nn.Tanh())
        self.mix = nn.Parameter(torch.randn(HID, OUT))

    def forward(self, x):
        return self.body(x) @ self.mix  # (B, HID) @ (HID, OUT)


def test_nested_names_and_functional_work():
    profile = profile_step(Functional(), *batch(), F.cross_entropy)
    rows = {layer.name: layer for layer in profile.layers}
    assert set(rows) == {"body.0", "(other)"}
    assert rows["body.0"].forward == 2 * B * IN * HID
    assert rows["(other)"].forward == 2 * B * HID * OUT
    assert rows["(other)"].backward == 2 * rows["(other)"].forward


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, IN)
        self.rnn = nn.LSTM(IN, HID, num_layers=2, batch_first=True)
        self.head = nn.Linear(HID, OUT)

    def forward(self, tokens):  # (B, T) -> (B, OUT)
        return self.head(self.rnn(self.embed(tokens))[0][:, -1])


def test_recurrent_layers_are_counted_from_their_weights():
    tokens, y = torch.randint(0, 20, (B, 7)), torch.randint(0, OUT, (B,))
    profile = profile_step(Recurrent(), tokens, y, F.cross_entropy)
    rows = {layer.name: layer for layer in profile.layers}
    # 2 layers x (W_ih + W_hh), 4 gates each: per token 2 FLOPs per weight.
    weights = 4 * HID * IN + 4 * HID * HID + 2 * 4 * HID * HID
    assert rows["rnn"].kind == "LSTM" and rows["rnn"].forward == 2 * B * 7 * weights
    assert rows["head"].forward == 2 * B * HID * OUT


def test_the_model_and_the_random_stream_are_untouched():
    model = nn.Sequential(nn.Linear(IN, HID), nn.BatchNorm1d(HID), nn.ReLU(), nn.Dropout(0.5), nn.Linear(HID, OUT))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = batch()
    rng = torch.get_rng_state()
    profile_step(model, x, y, F.cross_entropy, optimizer=OptimizerConfig(name="adam"))
    assert torch.equal(rng, torch.get_rng_state())  # dropout drew from a forked stream
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # weights and running stats
    assert all(p.grad is None for p in model.parameters())


def test_saved_activations_scale_with_the_batch_and_operators_are_counted():
    small, large = (
        profile_step(two_layers(), *batch(32), F.cross_entropy),
        profile_step(two_layers(), *batch(64), F.cross_entropy),
    )
    assert small.saved_bytes >= 32 * HID * 4  # at least the ReLU output, fp32
    assert abs(large.saved_bytes / small.saved_bytes - 2) < 0.05
    sgd = profile_step(two_layers(), *batch(), F.cross_entropy, optimizer=OptimizerConfig(name="sgd"))
    adam = profile_step(two_layers(), *batch(), F.cross_entropy, optimizer=OptimizerConfig(name="adam"))
    assert 0 < sgd.forward_operators < sgd.operators < adam.operators  # Adam does more per parameter
