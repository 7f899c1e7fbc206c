"""The callback list: order in code, hooks dispatched only to callbacks that define them, state keys that never collide."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from trainwright.config import EarlyStoppingConfig
from trainwright.training.callbacks import (
    Callback,
    CallbackList,
    Checkpoint,
    EarlyStopping,
    GradientStats,
    HistoryCSV,
    ProgressBar,
)


class Counter(Callback):
    order = 5

    def __init__(self, log: list, name: str):
        self.log, self.name, self.seen = log, name, 0

    def on_epoch_end(self, state, logs):
        self.log.append(self.name)
        self.seen += 1

    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, state):
        self.seen = state.get("seen", 0)


def test_callbacks_run_in_their_order_whatever_the_list_order():
    assert [cb.order for cb in (EarlyStopping, GradientStats, HistoryCSV, Checkpoint, ProgressBar)] == [0, 10, 20, 30, 40]
    log: list = []

    class Late(Counter):
        order = 100

    callbacks = CallbackList([Late(log, "late"), Counter(log, "first"), Counter(log, "second")])
    callbacks.on_epoch_end(SimpleNamespace(), {})
    assert log == ["first", "second", "late"]  # by order, and stable among equals


def test_per_batch_hooks_reach_only_the_callbacks_that_define_them():
    log: list = []
    callbacks = CallbackList([Counter(log, "a")])
    assert callbacks._hooks["on_batch_end"] == [] and callbacks._hooks["on_after_backward"] == []
    assert len(callbacks._hooks["on_epoch_end"]) == 1


def test_two_callbacks_of_one_class_keep_their_own_state():
    first, second = Counter([], "a"), Counter([], "b")
    first.seen, second.seen = 3, 7
    state = CallbackList([first, second]).state_dict()
    assert state == {"Counter": {"seen": 3}, "Counter#2": {"seen": 7}}
    again = CallbackList([Counter([], "a"), Counter([], "b")])
    again.load_state_dict(state)
    assert [cb.seen for cb in again] == [3, 7]


def test_early_stopping_keeps_and_restores_the_best_weights_of_every_module():
    generator, critic = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    state = SimpleNamespace(epoch=0, modules={"generator": generator, "critic": critic}, stop_reason=None)
    state.request_stop = lambda reason: setattr(state, "stop_reason", reason)
    stopper = EarlyStopping(EarlyStoppingConfig(monitor="score", mode="max", patience=2))
    best = {name: {k: v.clone() for k, v in m.state_dict().items()} for name, m in state.modules.items()}
    for epoch, score in enumerate([0.9, 0.5, 0.4], start=1):
        state.epoch = epoch
        stopper.on_epoch_end(state, {"score": score})
        with torch.no_grad():  # training moves the weights on after the best epoch
            generator.weight.add_(1.0)
            critic.weight.add_(1.0)
    assert stopper.best_epoch == 1 and "has not improved for 2 epochs" in state.stop_reason
    stopper.on_train_end(state)
    assert torch.equal(generator.weight, best["generator"]["weight"]) and torch.equal(critic.weight, best["critic"]["weight"])
