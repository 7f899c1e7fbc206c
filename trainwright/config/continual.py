"""The ``continual:`` section: which strategy updates a model on new tasks, and how tasks are cut.

A leaf of the schema: it imports pydantic, typing and ``trainwright.config.base`` only. ``trainwright continual``
reads it from a config; ``trainwright continue`` from ``--strategy`` and ``--set continual.KEY=VALUE``.

Example:
    >>> cfg = ContinualConfig.model_validate({"strategy": "replay", "replay": {"share": 0.1}})
    >>> cfg.scenario, cfg.replay.share, cfg.split.classes_per_task
    ('class_incremental', 0.1, 2)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from trainwright.config.base import Frozen

Strategy = Literal["naive", "replay", "ewc", "lwf", "joint"]
Scenario = Literal["task_incremental", "class_incremental"]


class ReplayConfig(Frozen):
    """A class-balanced buffer of old training rows, replayed beside every new batch.

    Give ``size`` (rows) or ``share`` (of the old training rows seen so far), not both.
    """

    size: int | None = Field(None, ge=1, description="rows kept in the buffer; at most the old training rows")
    share: float | None = Field(None, gt=0, le=1, description="buffer rows as a share of the old training rows, e.g. 0.1")
    batch_size: int | None = Field(None, ge=1, description="replayed rows per batch; default: class-balanced, "
                                   "new rows x buffered classes / the task's classes")
    seed: int = Field(0, description="which old rows the buffer keeps")

    @model_validator(mode="before")
    @classmethod
    def _one_size(cls, data: Any) -> Any:
        if isinstance(data, dict):
            size, share = data.get("size"), data.get("share")
            if size is not None and share is not None:
                raise ValueError("set continual.replay.size (rows) or continual.replay.share (of the old data), not both")
            if size is None and share is None:
                return {**data, "share": 0.1}  # the default: 10% of the old training rows
        return data


class EWCConfig(Frozen):
    """Elastic weight consolidation (Kirkpatrick et al. 2017): lambda/2 * sum F (theta - theta_old)^2."""

    strength: float = Field(1000.0, gt=0, description="lambda: how strongly the old weights are held")
    fisher_samples: int = Field(1000, ge=1, description="training rows of each old task used for its diagonal Fisher")


class LwFConfig(Frozen):
    """Learning without forgetting (Li & Hoiem 2016): the old model's outputs on new data as soft targets."""

    temperature: float = Field(2.0, gt=0, description="softens both distributions; Li & Hoiem use 2")
    weight: float = Field(1.0, ge=0, description="weight of the distillation term beside the cross-entropy")


class TaskSplitConfig(Frozen):
    """How the classes of one labelled data set become a sequence of tasks (each task's rows are then
    split train/val/test as ``data.split`` says, stratified)."""

    classes_per_task: int = Field(2, ge=1, description="consecutive classes (in sorted order) per task")
    tasks: list[list[int | str]] | None = Field(None, description="explicit class lists, one per task, e.g. [[0, 1], [2, 3]]")

    @model_validator(mode="after")
    def _valid(self) -> TaskSplitConfig:
        if self.tasks is not None:
            flat = [c for task in self.tasks for c in task]
            if not all(self.tasks) or len(flat) != len(set(flat)):
                raise ValueError("continual.split.tasks must be non-empty class lists, no class in two tasks")
        return self


class ContinualConfig(Frozen):
    """``continual:``: strategy, scenario, how tasks are made and each strategy's settings."""

    strategy: Strategy = "replay"
    # task_incremental: the task is known at test time (logits masked to its classes);
    # class_incremental: one head over every class seen, the task is not known.
    scenario: Scenario = "class_incremental"
    split: TaskSplitConfig = TaskSplitConfig()
    then: list[str] | None = Field(None, description="later tasks, one data source each (tables or folders of the same "
                                   "kind as data.source, which is the first task); instead of cutting data.source by classes")
    replay: ReplayConfig = ReplayConfig()
    ewc: EWCConfig = EWCConfig()
    lwf: LwFConfig = LwFConfig()

    @model_validator(mode="after")
    def _one_way_to_make_tasks(self) -> ContinualConfig:
        if self.then is not None and self.split.tasks is not None:
            raise ValueError("continual.then (one task per data source) and continual.split.tasks (one data set cut by "
                             "classes) are two ways to make tasks; give one")
        if self.then is not None and not self.then:
            raise ValueError("continual.then must list at least one data source (the tasks after data.source)")
        return self
