"""The reference continual loop: tasks in order, one plain supervised step, the strategy's additions.

This is the loop the benchmark and the tests run; a recipe can call ``run_sequence`` as it is
or copy its few lines around its own supervised step (same optimizer per task, same hooks).

Example:
    >>> from torch import nn
    >>> scenario = split_digits(seed=0)
    >>> make = lambda classes: nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, classes))
    >>> r = run_sequence(scenario, Naive(), make, epochs=1)
    >>> r.shape
    torch.Size([5, 5])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from trainwright.continual.scenarios import Scenario, Task, joint_task, restrict, split_digits  # noqa: F401 (doc example)
from trainwright.continual.strategies import Joint, Naive, Strategy, widen_head  # noqa: F401 (doc example)


def strategy_step(model: nn.Module, strategy: Strategy, scenario: Scenario, generator: torch.Generator
                  ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The training loss of a batch (xb, yb) under ``strategy``: the plain cross-entropy plus what the strategy adds.

    Replay appends buffered old rows to the batch; EWC and LwF add a term; task-IL masks each row's
    logits to its own task's classes. The recipes give it to the supervised loop as its step loss.

    Example:
        >>> scenario, model = split_digits(seed=0), nn.Sequential(nn.Linear(64, 2))
        >>> step = strategy_step(model, Naive(), scenario, torch.Generator())
        >>> task = scenario.tasks[0]
        >>> step(task.x_train[:8], task.y_train[:8]).shape
        torch.Size([])
    """

    def step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        extra = strategy.extra_rows(len(yb), generator)  # replay: old rows beside the new ones
        if extra is not None:
            xb, yb = torch.cat([xb, extra[0]]), torch.cat([yb, extra[1]])
        logits = model(xb)  # (B, classes seen so far)
        loss = F.cross_entropy(restrict(logits, scenario.train_mask(yb, logits.shape[1])), yb)
        return loss + strategy.extra_loss(model, xb, logits)  # EWC penalty, LwF distillation

    return step


def train_task(model: nn.Module, task: Task, scenario: Scenario, strategy: Strategy, *, epochs: int, batch_size: int = 32,
               lr: float = 1e-3, generator: torch.Generator) -> None:
    """Train ``model`` on one task with a fresh Adam, between the strategy's begin and end hooks.

    Example:
        >>> scenario, model = split_digits(seed=0), nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 2))
        >>> train_task(model, scenario.tasks[0], scenario, Naive(), epochs=5, generator=torch.Generator().manual_seed(0))
        >>> float(task_accuracies(model, scenario, upto=0)[0]) > 0.95
        True
    """
    strategy.begin_task(model, task, scenario)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    step = strategy_step(model, strategy, scenario, generator)
    x, y = task.x_train, task.y_train
    model.train()
    for _ in range(epochs):
        for rows in torch.randperm(len(y), generator=generator).split(batch_size):
            loss = step(x[rows], y[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    strategy.end_task(model, task, scenario)


def task_accuracies(model: nn.Module, scenario: Scenario, upto: int) -> torch.Tensor:
    """(T,) test accuracy on each task j <= ``upto``; NaN for the tasks not trained on yet.

    Task-IL masks the logits to task j's classes (the task is known); class-IL takes the argmax
    over every class of the head.

    Example:
        >>> scenario, model = split_digits(seed=0), nn.Sequential(nn.Linear(64, 2))
        >>> task_accuracies(model, scenario, upto=0).isnan().tolist()
        [False, True, True, True, True]
    """
    accuracies = torch.full((len(scenario.tasks),), float("nan"))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for j, task in enumerate(scenario.tasks[: upto + 1]):
            logits = model(task.x_test)  # (N_j, classes seen)
            predicted = restrict(logits, scenario.test_mask(j, logits.shape[1])).argmax(1)
            accuracies[j] = (predicted == task.y_test).float().mean().cpu()
    model.train(was_training)
    return accuracies


def run_sequence(scenario: Scenario, strategy: Strategy, make_model: Callable[[int], nn.Module], *, epochs: int,
                 batch_size: int = 32, lr: float = 1e-3, seed: int = 0) -> torch.Tensor:
    """The accuracy matrix R (T, T) of training on the tasks in order; (1, T) for the joint upper bound.

    ``make_model(classes)`` builds the network with a head of ``classes`` outputs; the head grows
    before each task with new classes. Joint trains once on all tasks' rows with the same epochs,
    so it sees as many rows as the sequence.
    """
    torch.manual_seed(seed)  # model initialization, new head rows
    generator = torch.Generator().manual_seed(seed)  # batch order, replay draws
    if isinstance(strategy, Joint):
        model = make_model(scenario.num_classes)
        train_task(model, joint_task(scenario), scenario, strategy, epochs=epochs, batch_size=batch_size, lr=lr,
                   generator=generator)
        return task_accuracies(model, scenario, len(scenario.tasks) - 1).unsqueeze(0)
    model, rows = make_model(scenario.head_size(0)), []
    for i, task in enumerate(scenario.tasks):
        model = widen_head(model, scenario.head_size(i))
        train_task(model, task, scenario, strategy, epochs=epochs, batch_size=batch_size, lr=lr, generator=generator)
        rows.append(task_accuracies(model, scenario, i))
    return torch.stack(rows)
