"""Strategies: the EWC penalty and Fisher, head widening, LwF's soft targets, replay's batches."""

import pytest
import torch
from torch import nn

from trainwright.config.continual import ContinualConfig
from trainwright.continual.buffer import ReplayBuffer
from trainwright.continual.scenarios import split_digits
from trainwright.continual.strategies import EWC, Joint, LwF, Naive, Replay, build_strategy, diagonal_fisher, widen_head
from trainwright.errors import TrainwrightError


def value(loss) -> float:
    """A loss term (a tensor, or 0.0 when a strategy adds nothing) as a float."""
    return float(torch.as_tensor(loss).detach())


def mlp(classes: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, classes))


@pytest.fixture(scope="module")
def scenario():
    return split_digits(seed=0)


def test_fisher_is_the_exact_expectation_over_classes():
    torch.manual_seed(0)
    model, x = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)), torch.randn(6, 5)
    expected = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    p = torch.softmax(model(x), 1).detach()
    for i in range(len(x)):  # by hand: one backward per row and class
        for c in range(3):
            model.zero_grad()
            torch.log_softmax(model(x[i : i + 1]), 1)[0, c].backward()
            for name, param in model.named_parameters():
                expected[name] += p[i, c] * param.grad.square() / len(x)
    fisher = diagonal_fisher(model, x, chunk=4)
    for name, value in expected.items():
        torch.testing.assert_close(fisher[name], value)
    sampled = diagonal_fisher(model, x, labels=torch.zeros(6, dtype=torch.long))  # the one-label form runs too
    assert sampled.keys() == fisher.keys()


def test_ewc_penalty_is_zero_at_the_old_weights_and_grows_away(scenario):
    model, ewc = mlp(2), EWC(strength=100.0)
    assert ewc.extra_loss(model, None, None) == 0.0  # nothing to hold before the first task ends
    ewc.end_task(model, scenario.tasks[0], scenario)
    assert value(ewc.penalty(model)) == 0.0
    direction = [torch.randn_like(p) for p in model.parameters()]
    penalties = []
    for step in (0.01, 0.02, 0.04):
        moved = mlp(2)
        with torch.no_grad():
            for p, d in zip(moved.parameters(), direction, strict=True):
                p.add_(step * d)
        penalties.append(value(ewc.penalty(moved)))
    assert 0 < penalties[0] < penalties[1] < penalties[2]
    assert penalties[1] / penalties[0] == pytest.approx(4.0, rel=1e-3)  # quadratic in the distance


def test_ewc_leaves_a_widened_heads_new_rows_free(scenario):
    model, ewc = mlp(2), EWC(strength=100.0)
    ewc.end_task(model, scenario.tasks[0], scenario)
    model = widen_head(model, 4)
    assert value(ewc.penalty(model)) == 0.0
    with torch.no_grad():
        model[2].weight[2:] += 1.0  # new classes' rows move: free
    assert value(ewc.penalty(model)) == 0.0
    with torch.no_grad():
        model[2].weight[:2] += 0.1  # old rows move: penalized
    assert value(ewc.penalty(model)) > 0
    ewc.end_task(model, scenario.tasks[1], scenario)  # the Fisher sums grow with the head
    assert ewc.fisher["2.weight"].shape == (4, 16)


def test_widening_keeps_the_old_rows_and_outputs():
    model = mlp(2)
    x = torch.randn(5, 64)
    before = model(x).detach()
    wide = widen_head(model, 5)
    assert wide[2].weight.shape == (5, 16) and wide[2].bias.shape == (5,)
    torch.testing.assert_close(wide(x)[:, :2], before)
    assert widen_head(wide, 3) is wide and wide[2].out_features == 5  # never narrows
    single = widen_head(nn.Linear(3, 2), 4)  # the model is the head itself: a new module comes back
    assert isinstance(single, nn.Linear) and single.out_features == 4
    with pytest.raises(TrainwrightError, match="no nn.Linear"):
        widen_head(nn.Sequential(nn.ReLU()), 3)


def test_widening_a_binary_head_keeps_its_probabilities():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    x = torch.randn(6, 4)
    p_binary = torch.sigmoid(model(x)).squeeze(1).detach()
    wide = widen_head(model, 2, from_binary=True)
    torch.testing.assert_close(torch.softmax(wide(x), 1)[:, 1], p_binary)
    assert widen_head(nn.Sequential(nn.Linear(4, 1)), 3, from_binary=True)[0].out_features == 3


def test_lwf_is_zero_for_the_old_model_itself_and_grows_as_it_moves(scenario):
    model, lwf = mlp(2), LwF(temperature=2.0, weight=1.0)
    assert lwf.extra_loss(model, scenario.tasks[1].x_train, None) == 0.0  # nothing to distill before a task ends
    lwf.end_task(model, scenario.tasks[0], scenario)
    model = widen_head(model, 4)
    x = scenario.tasks[1].x_train[:32]
    assert value(lwf.extra_loss(model, x, model(x))) == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        model[2].weight[:2] += 0.5 * torch.randn(2, 16)
    assert value(lwf.extra_loss(model, x, model(x))) > 1e-3
    assert [g.tolist() for g in lwf.groups] == [[0, 1]]


def test_lwf_distills_per_task_in_task_incremental():
    scenario, lwf = split_digits(seed=0, kind="task_incremental"), LwF()
    lwf.end_task(mlp(4), scenario.tasks[1], scenario)
    assert [g.tolist() for g in lwf.groups] == [[0, 1], [2, 3]]


def test_replay_batches_are_class_balanced(scenario):
    replay = Replay(ReplayBuffer(size=40, seed=0))
    generator = torch.Generator().manual_seed(0)
    assert replay.extra_rows(32, generator) is None  # nothing old yet
    for task in scenario.tasks[:3]:
        replay.end_task(None, task, scenario)
    replay.begin_task(None, scenario.tasks[3], scenario)  # 6 old classes beside 2 new ones
    x, y = replay.extra_rows(32, generator)
    assert x.shape == (96, 64) and set(y.tolist()) <= set(range(6))  # 16 rows per class, old and new alike
    assert Replay(replay.buffer, batch_size=10).extra_rows(32, generator)[0].shape == (10, 64)


def test_build_strategy_from_config():
    names = {name: type(build_strategy(ContinualConfig(strategy=name))) for name in ("naive", "replay", "ewc", "lwf", "joint")}
    assert names == {"naive": Naive, "replay": Replay, "ewc": EWC, "lwf": LwF, "joint": Joint}
    ewc = build_strategy(ContinualConfig.model_validate({"strategy": "ewc", "ewc": {"strength": 7, "fisher_samples": 11}}))
    assert (ewc.strength, ewc.fisher_samples) == (7, 11)
    replay = build_strategy(ContinualConfig.model_validate({"strategy": "replay", "replay": {"size": 30}}))
    assert (replay.buffer.size, replay.buffer.share) == (30, None)
