"""Scenarios: one labelled data set cut into a sequence of tasks by classes.

Class indices are given in order of first appearance over the tasks, so after task ``i`` the
classes seen are exactly ``0 .. head_size(i) - 1`` and the output layer grows at its end.

- task-incremental: the task is known at test time; logits are masked to the task's classes
  (one head over all classes, masked, is the same as one small head per task).
- class-incremental: one head over every class seen so far; the task is not known.

Example:
    >>> scenario = split_digits(seed=0, kind="class_incremental")
    >>> len(scenario.tasks), scenario.tasks[1].classes.tolist(), scenario.head_size(1)
    (5, [2, 3], 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from trainwright.config.continual import ContinualConfig
from trainwright.errors import TrainwrightError

Kind = Literal["task_incremental", "class_incremental"]


@dataclass(frozen=True)
class Task:
    """One task's splits: x (N, *features) float, y (N,) long global class indices."""

    index: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: torch.Tensor = field(default=None)  # (K,) long, sorted; the classes of its rows when not given

    def __post_init__(self) -> None:
        if self.classes is None:
            present = torch.cat([self.y_train, self.y_val, self.y_test]).unique()
            object.__setattr__(self, "classes", present)


@dataclass(frozen=True)
class Scenario:
    """A sequence of tasks, the scenario kind and the original label of each class index."""

    tasks: list[Task]
    kind: Kind
    class_names: list = field(default_factory=list)  # class index -> original label

    def __post_init__(self) -> None:
        if self.kind == "task_incremental":
            flat = torch.cat([task.classes for task in self.tasks])
            if len(flat) != len(flat.unique()):
                raise TrainwrightError("task-incremental tasks must not share classes; use continual.scenario: "
                                       "class_incremental for new rows of old classes")

    @property
    def num_classes(self) -> int:
        return self.head_size(len(self.tasks) - 1)

    def head_size(self, upto: int) -> int:
        """Classes seen through task ``upto`` (0-based): the output layer's width then."""
        return int(max(task.classes.max() for task in self.tasks[: upto + 1])) + 1

    def class_task(self) -> torch.Tensor:
        """(num_classes,) long: the (first) task each class belongs to."""
        owner = torch.full((self.num_classes,), -1, dtype=torch.long)
        for task in reversed(self.tasks):
            owner[task.classes] = task.index
        return owner

    def train_mask(self, y: torch.Tensor, width: int) -> torch.Tensor | None:
        """(B, width) bool: the classes of each row's own task (task-IL); None (no mask) in class-IL."""
        if self.kind == "class_incremental":
            return None
        owner = self.class_task().to(y.device)[:width]  # (width,)
        return owner.unsqueeze(0) == owner[y].unsqueeze(1)

    def test_mask(self, task_index: int, width: int) -> torch.Tensor | None:
        """(width,) bool: the classes of task ``task_index`` (task-IL, the task is known); None in class-IL."""
        if self.kind == "class_incremental":
            return None
        mask = torch.zeros(width, dtype=torch.bool)
        mask[self.tasks[task_index].classes[self.tasks[task_index].classes < width]] = True
        return mask


def restrict(logits: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
    """Logits (B, C) with the classes not ``allowed`` ((C,) or (B, C) bool) set to -inf.

    Example:
        >>> restrict(torch.tensor([[3.0, 1.0, 2.0]]), torch.tensor([False, True, True])).argmax(1).item()
        2
    """
    if allowed is None:
        return logits
    return logits.masked_fill(~allowed.to(logits.device), float("-inf"))


def class_lists(labels: Sequence, classes_per_task: int = 2, tasks: Sequence[Sequence] | None = None) -> list[list]:
    """The classes of each task: explicit ``tasks``, or the sorted labels cut ``classes_per_task`` at a time.

    Example:
        >>> class_lists([3, 1, 0, 2, 1], classes_per_task=2)
        [[0, 1], [2, 3]]
    """
    present = sorted(set(np.asarray(labels).tolist()))
    if tasks is None:
        return [present[i : i + classes_per_task] for i in range(0, len(present), classes_per_task)]
    missing = [c for task in tasks for c in task if c not in present]
    if missing:
        raise TrainwrightError(f"continual.split.tasks names classes the data does not have: {missing}; "
                               f"the classes are: {present}")
    return [list(task) for task in tasks]


def split_by_classes(x: np.ndarray, y: np.ndarray, tasks: Sequence[Sequence], *, kind: Kind = "class_incremental",
                     train: float = 0.7, val: float = 0.15, seed: int = 0,
                     standardize: Literal["features", "pixels", "none"] = "features") -> Scenario:
    """Cut (x, y) into one task per class list, each split train/val/test (stratified, seeded).

    Standardization is fitted on the first task's training rows only (what a model trained on
    task 1 had) and applied to every task: ``features``, a mean and std per column (sklearn's
    StandardScaler); ``pixels``, one mean and std over all values, as MNIST pipelines do, so a
    pixel that never lights up in task 1 is not blown up by a near-zero std in later tasks.

    Example:
        >>> from sklearn.datasets import load_iris
        >>> iris = load_iris()
        >>> s = split_by_classes(iris.data, iris.target, [[0, 1], [2]], seed=0)
        >>> [len(t.y_train) for t in s.tasks], s.class_names
        ([70, 35], [0, 1, 2])
    """
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y)
    order = [c for task in tasks for c in task]
    index = {c: i for i, c in enumerate(order)}
    parts = []
    for classes in tasks:
        rows = np.flatnonzero(np.isin(y, classes))
        labels = np.array([index[c] for c in y[rows].tolist()], dtype=np.int64)
        n_train, n_val = round(train * len(rows)), round(val * len(rows))  # counts, not float shares: 0.7 of 100 is 70
        tr, rest = train_test_split(np.arange(len(rows)), train_size=n_train, stratify=labels, random_state=seed)
        va, te = (train_test_split(rest, train_size=n_val, stratify=labels[rest], random_state=seed)
                  if n_val > 0 else (rest[:0], rest))
        parts.append([(x[rows[s]], labels[s]) for s in (tr, va, te)])
    first = parts[0][0][0]  # task 1's training rows
    if standardize == "features":
        scaler = StandardScaler().fit(first)  # a constant column gets scale 1
        shift, scale = scaler.mean_, scaler.scale_
    elif standardize == "pixels":
        shift, scale = first.mean(), first.std()
    elif standardize == "none":
        shift, scale = 0.0, 1.0
    else:
        raise ValueError(f"standardize must be features, pixels or none, got {standardize!r}")
    built = []
    for i, (classes, splits) in enumerate(zip(tasks, parts, strict=True)):
        tensors = []
        for xs, ys in splits:
            tensors += [torch.from_numpy(((xs - shift) / scale).astype(np.float32)), torch.from_numpy(ys)]
        built.append(Task(i, *tensors, classes=torch.tensor(sorted(index[c] for c in classes))))
    return Scenario(built, kind, class_names=order)


def split_digits(seed: int = 0, *, kind: Kind = "class_incremental", classes_per_task: int = 2,
                 train: float = 0.7, val: float = 0.15) -> Scenario:
    """The built-in split-digits: sklearn's 8x8 digits (1797 rows, 64 features), two digits per task.

    The digits analogue of split MNIST (Zenke et al. 2017; van de Ven & Tolias 2019): tasks
    {0, 1}, {2, 3}, ..., {8, 9}, pixels standardized with the first task's training rows' mean and
    std (12 of the 64 pixels never light up in task 1; a per-pixel std would blow them up later).

    Example:
        >>> [t.classes.tolist() for t in split_digits(seed=1).tasks][:2]
        [[0, 1], [2, 3]]
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    tasks = class_lists(digits.target, classes_per_task)
    return split_by_classes(digits.data, digits.target, tasks, kind=kind, train=train, val=val, seed=seed, standardize="pixels")


def build_scenario(x: np.ndarray, y: np.ndarray, cfg: ContinualConfig, seed: int = 0, *, train: float = 0.7, val: float = 0.15,
                   standardize: Literal["features", "pixels", "none"] = "features") -> Scenario:
    """The scenario a ``continual:`` section describes, over a labelled data set (x, y) of numbers.

    Example:
        >>> from sklearn.datasets import load_wine
        >>> wine = load_wine()
        >>> cfg = ContinualConfig.model_validate({"scenario": "task_incremental", "split": {"tasks": [[0, 1], [2]]}})
        >>> s = build_scenario(wine.data, wine.target, cfg)
        >>> s.kind, [t.classes.tolist() for t in s.tasks]
        ('task_incremental', [[0, 1], [2]])
    """
    tasks = class_lists(y, cfg.split.classes_per_task, cfg.split.tasks)
    return split_by_classes(x, y, tasks, kind=cfg.scenario, train=train, val=val, seed=seed, standardize=standardize)


def joint_task(scenario: Scenario) -> Task:
    """Every task's rows in one task: the offline upper bound trains on it once.

    Example:
        >>> len(joint_task(split_digits()).classes)
        10
    """
    tasks = scenario.tasks
    cat = [torch.cat([getattr(t, name) for t in tasks]) for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")]
    return Task(-1, *cat, classes=torch.cat([t.classes for t in tasks]).unique())


def extend_classes(old: Sequence, labels: Sequence) -> list:
    """The old class order with the new labels' unseen classes appended (sorted): old indices keep their meaning.

    Example:
        >>> extend_classes(["setosa", "versicolor"], ["virginica", "setosa"])
        ['setosa', 'versicolor', 'virginica']
    """
    new = sorted(set(np.asarray(labels).tolist()) - set(old))
    return [*old, *new]
