"""Scenarios: split-digits, tasks by classes, task-IL masking and class-IL heads."""

import pytest
import torch
from sklearn.datasets import load_iris

from trainwright.config.continual import ContinualConfig
from trainwright.continual.scenarios import (
    Scenario,
    Task,
    build_scenario,
    class_lists,
    extend_classes,
    joint_task,
    restrict,
    split_by_classes,
    split_digits,
)
from trainwright.errors import TrainwrightError


def test_split_digits_is_five_tasks_of_two_digits():
    scenario = split_digits(seed=0)
    assert [t.classes.tolist() for t in scenario.tasks] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert scenario.num_classes == 10 and [scenario.head_size(i) for i in range(5)] == [2, 4, 6, 8, 10]
    for task in scenario.tasks:
        assert set(task.y_train.tolist()) == set(task.y_test.tolist()) == set(task.classes.tolist())
        assert task.x_train.shape[1] == 64 and task.x_train.dtype == torch.float32
    rows = sum(len(t.y_train) + len(t.y_val) + len(t.y_test) for t in scenario.tasks)
    assert rows == 1797
    # Standardized with task 1's training rows only: their pixels have mean 0 and std 1 there, not elsewhere.
    first = scenario.tasks[0].x_train
    assert first.mean().abs() < 1e-4 and (first.std() - 1).abs() < 1e-2


def test_the_split_is_seeded():
    a, b, c = split_digits(seed=0), split_digits(seed=0), split_digits(seed=1)
    assert torch.equal(a.tasks[2].x_train, b.tasks[2].x_train)
    assert not torch.equal(a.tasks[2].x_train, c.tasks[2].x_train)


def test_labels_are_renumbered_in_order_of_appearance():
    x = torch.randn(60, 3).numpy()
    y = ["cat", "dog", "eel"] * 20
    scenario = split_by_classes(x, y, [["eel"], ["cat", "dog"]], seed=0)
    assert scenario.class_names == ["eel", "cat", "dog"]
    assert scenario.tasks[0].classes.tolist() == [0] and scenario.tasks[1].classes.tolist() == [1, 2]


def test_class_lists_cut_sorted_labels_and_check_explicit_ones():
    assert class_lists([5, 1, 3, 2, 4], 2) == [[1, 2], [3, 4], [5]]
    with pytest.raises(TrainwrightError, match=r"does not have: \[7\]"):
        class_lists([0, 1, 2], tasks=[[0, 7]])
    assert extend_classes(["a", "b"], ["c", "a", "d"]) == ["a", "b", "c", "d"]


def test_a_continual_section_builds_its_scenario():
    iris = load_iris()
    cfg = ContinualConfig.model_validate({"split": {"classes_per_task": 1}})
    scenario = build_scenario(iris.data, iris.target, cfg, seed=0, train=0.6, val=0.2)
    assert [t.classes.tolist() for t in scenario.tasks] == [[0], [1], [2]] and scenario.kind == "class_incremental"
    assert [(len(t.y_train), len(t.y_val), len(t.y_test)) for t in scenario.tasks] == [(30, 10, 10)] * 3


def test_task_incremental_masks_logits_to_the_task_classes():
    scenario = split_digits(seed=0, kind="task_incremental")
    logits = torch.tensor([[5.0, 0.0, 1.0, 2.0, 9.0, 0.0]])  # head over 6 classes, after task 3
    mask = scenario.test_mask(1, 6)
    assert mask.tolist() == [False, False, True, True, False, False]
    assert restrict(logits, mask).argmax(1).item() == 3  # among {2, 3}, whatever classes 0 and 4 say
    # Training rows of different tasks in one batch (replay): each row masked to its own task.
    train = scenario.train_mask(torch.tensor([0, 5]), 6)
    assert train.tolist() == [[True, True, False, False, False, False], [False, False, False, False, True, True]]
    assert torch.isfinite(torch.nn.functional.cross_entropy(restrict(logits.repeat(2, 1), train), torch.tensor([0, 5])))


def test_class_incremental_does_not_mask():
    scenario = split_digits(seed=0, kind="class_incremental")
    assert scenario.test_mask(1, 6) is None and scenario.train_mask(torch.tensor([0]), 6) is None


def test_task_incremental_tasks_cannot_share_classes():
    x, y = torch.randn(4, 2), torch.tensor([0, 1, 1, 2])
    tasks = [Task(0, x[:2], y[:2], x[:0], y[:0], x[:2], y[:2]), Task(1, x[2:], y[2:], x[:0], y[:0], x[2:], y[2:])]
    with pytest.raises(TrainwrightError, match="must not share classes"):
        Scenario(tasks, "task_incremental")
    assert Scenario(tasks, "class_incremental").num_classes == 3  # new rows of an old class are fine in class-IL


def test_joint_task_holds_every_row():
    scenario = split_digits(seed=0)
    joint = joint_task(scenario)
    assert len(joint.y_train) == sum(len(t.y_train) for t in scenario.tasks) and joint.classes.tolist() == list(range(10))
