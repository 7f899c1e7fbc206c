"""The memory arithmetic: parameters, gradients and optimizer state against what torch really keeps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainwright.compute.memory import human_bytes, state_copies, training_memory
from trainwright.config import OptimizerConfig
from trainwright.training.optim import build_optimizer


@pytest.mark.parametrize(
    ("cfg", "copies"),
    [
        (OptimizerConfig(name="sgd"), 0),
        (OptimizerConfig(name="sgd", momentum=0.9), 1),
        (OptimizerConfig(name="adam"), 2),
        (OptimizerConfig(name="adamw"), 2),
        (OptimizerConfig(name="rmsprop"), 1),
        (OptimizerConfig(name="rmsprop", momentum=0.5), 2),
        (OptimizerConfig(name="adagrad"), 1),
    ],
)
def test_optimizer_state_matches_what_torch_keeps(cfg, copies):
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 3))
    optimizer = build_optimizer(cfg, model.parameters())
    model(torch.randn(4, 10)).sum().backward()
    optimizer.step()
    # Per-parameter tensors of the parameter's shape; scalar step counters are not memory that scales.
    kept = sum(t.numel() * t.element_size() for p, state in optimizer.state.items()
               for t in state.values() if torch.is_tensor(t) and t.shape == p.shape)
    params = sum(p.numel() * 4 for p in model.parameters())
    assert state_copies(cfg) == copies
    assert kept == copies * params
    memory = training_memory(model, cfg, activations=1000, data=5000)
    assert (memory.parameters, memory.gradients, memory.optimizer) == (params, params, copies * params)
    assert memory.total == 2 * params + copies * params + 1000 + 5000


def test_frozen_parameters_have_no_gradients_or_state():
    model = nn.Sequential(nn.Linear(10, 20), nn.Linear(20, 3))
    model[0].requires_grad_(False)
    memory = training_memory(model, OptimizerConfig(name="adam"), activations=0, data=0)
    assert memory.parameters == (10 * 20 + 20 + 20 * 3 + 3) * 4
    assert memory.gradients == (20 * 3 + 3) * 4 and memory.optimizer == 2 * memory.gradients


def test_human_bytes():
    assert [human_bytes(n) for n in (512, 1536, 3 * 1024**2, 80 * 1024**3, 5 * 1024**4)] == [
        "512 B",
        "1.5 KB",
        "3.0 MB",
        "80.0 GB",
        "5.0 TB",
    ]
