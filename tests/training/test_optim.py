import itertools

import pytest
import torch

from trainwright.config import OptimizerConfig, ScheduleConfig
from trainwright.training import optim
from trainwright.training.optim import Schedule, build_optimizer, weight_penalty


@pytest.mark.parametrize(
    ("cfg", "kind"),
    [
        (OptimizerConfig(name="sgd", lr=0.1, momentum=0.9, nesterov=True), torch.optim.SGD),
        (OptimizerConfig(name="adam"), torch.optim.Adam),
        (OptimizerConfig(name="adamw", weight_decay=0.01), torch.optim.AdamW),
        (OptimizerConfig(name="rmsprop", momentum=0.5), torch.optim.RMSprop),
        (OptimizerConfig(name="adagrad", lr=0.05), torch.optim.Adagrad),
    ],
)
def test_each_optimizer_takes_its_settings(cfg, kind):
    optimizer = build_optimizer(cfg, torch.nn.Linear(2, 1).parameters())
    assert isinstance(optimizer, kind)
    assert optimizer.param_groups[0]["lr"] == cfg.lr
    if cfg.nesterov:
        assert optimizer.param_groups[0]["nesterov"] and optimizer.param_groups[0]["momentum"] == 0.9


@pytest.mark.parametrize(
    "cfg",
    [
        OptimizerConfig(name="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        OptimizerConfig(name="adam", lr=0.01, weight_decay=0.01),
        OptimizerConfig(name="adamw", lr=0.01, weight_decay=0.1),
        OptimizerConfig(name="adagrad", lr=0.05),
    ],
)
def test_fused_optimizers_on_the_cpu_take_the_same_steps_as_torchs_default(cfg, monkeypatch):
    """Where torch has a fused kernel it is chosen, with the same settings: 5 steps land where the default lands."""
    torch.manual_seed(0)
    model, x = torch.nn.Linear(8, 3), torch.randn(16, 8)
    reference = torch.nn.Linear(8, 3)
    reference.load_state_dict(model.state_dict())
    start = model.weight.detach().clone()
    fused = build_optimizer(cfg, [{"params": [model.weight]}, {"params": [model.bias], "lr": cfg.lr / 2}])
    assert all(group["fused"] for group in fused.param_groups)
    monkeypatch.setattr(optim, "FUSED", ())  # torch's default implementation, as before fused kernels were chosen
    plain = build_optimizer(cfg, [{"params": [reference.weight]}, {"params": [reference.bias], "lr": cfg.lr / 2}])
    assert not any(group["fused"] for group in plain.param_groups)
    for _ in range(5):
        for m, opt in ((model, fused), (reference, plain)):
            opt.zero_grad()
            m(x).pow(2).mean().backward()
            opt.step()
    torch.testing.assert_close(model.weight, reference.weight)
    torch.testing.assert_close(model.bias, reference.bias)
    assert not torch.equal(model.weight, start)  # the steps did move the weights


def test_rmsprop_has_no_fused_kernel_and_keeps_torchs_default():
    assert not build_optimizer(OptimizerConfig(name="rmsprop"), torch.nn.Linear(2, 1).parameters()).defaults.get("fused")


def lrs(cfg: ScheduleConfig, epochs=6, steps=2, val_losses=None):
    optimizer = build_optimizer(OptimizerConfig(name="sgd", lr=1.0), torch.nn.Linear(1, 1).parameters())
    schedule = Schedule(cfg, optimizer, epochs, steps)
    seen = []
    for epoch in range(epochs):
        for _ in range(steps):
            optimizer.step()
            schedule.step_batch()
        seen.append(optimizer.param_groups[0]["lr"])
        schedule.step_epoch(val_losses[epoch] if val_losses else 1.0)
    return seen


def test_schedules_shape_the_learning_rate():
    assert lrs(ScheduleConfig(name="none")) == [1.0] * 6
    assert lrs(ScheduleConfig(name="step", step_size=2, gamma=0.5)) == [1, 1, 0.5, 0.5, 0.25, 0.25]
    assert lrs(ScheduleConfig(name="exponential", gamma=0.5))[:3] == [1, 0.5, 0.25]
    cosine = lrs(ScheduleConfig(name="cosine"))
    assert cosine[0] == 1.0 and all(a > b for a, b in itertools.pairwise(cosine))
    warm = lrs(ScheduleConfig(name="none", warmup_epochs=3))
    assert warm[0] == pytest.approx(0.1) and warm[1] < warm[2] < warm[3] == 1.0
    plateau = lrs(ScheduleConfig(name="plateau", patience=1, gamma=0.5), val_losses=[1, 1, 1, 1, 1, 1])
    assert plateau[-1] < 1.0
    cycle = lrs(ScheduleConfig(name="one_cycle", max_lr=2.0), epochs=4, steps=5)
    assert max(cycle) > 1.0 and cycle[-1] < cycle[1]


def test_penalties_cover_weights_not_biases():
    layer = torch.nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0]]))
        layer.bias.fill_(5.0)
    assert weight_penalty(layer, 0.0, 0.0) == 0.0
    assert float(weight_penalty(layer, 0.5, 0.0).detach()) == pytest.approx(1.5)
    assert float(weight_penalty(layer, 0.0, 0.1).detach()) == pytest.approx(0.5)
