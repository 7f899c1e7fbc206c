"""The ``tune`` section: what ``trainwright tune`` searches and how it judges a trial.

```yaml
tune:
  metric: val_accuracy            # val_loss | val_accuracy | val_r2 | auto (accuracy or R²)
  space:
    train.optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}
    model.hidden: {choice: [[64], [128, 64], [256, 256]]}
    model.dropout: {uniform: [0.0, 0.5]}
    train.batch_size: {choice: [32, 64, 128]}
  pruner: median                  # median | hyperband | none
```

The keys of ``space`` are config keys as ``--set`` writes them; ``trainwright tune`` checks each one
against the schema before the first trial (``recipes/study.py``), since a key's meaning depends on
the model family, which this leaf schema does not know.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_serializer, model_validator

from trainwright.config.base import Frozen

KINDS = ("log_uniform", "uniform", "integer", "choice")


class Dimension(Frozen):
    """One searched key: exactly one of ``log_uniform``, ``uniform``, ``int`` ([low, high]) or ``choice``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)

    log_uniform: tuple[float, float] | None = None
    uniform: tuple[float, float] | None = None
    integer: tuple[int, int] | None = Field(None, alias="int")
    choice: list[Any] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Dimension:
        given = [name for name in KINDS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("a search dimension is one of {log_uniform: [low, high]}, {uniform: [low, high]}, "
                             "{int: [low, high]} or {choice: [a, b, ...]}")
        kind = given[0]
        if kind == "choice":
            if not self.choice:
                raise ValueError("choice needs at least one value")
            return self
        low, high = getattr(self, kind)
        if not low < high:
            raise ValueError(f"{kind.replace('integer', 'int')} needs low < high, got [{low}, {high}]")
        if kind == "log_uniform" and low <= 0:
            raise ValueError(f"log_uniform needs low > 0, got {low}")
        return self

    @model_serializer(mode="wrap")
    def _only_the_kind(self, handler) -> dict:
        """``{log_uniform: [low, high]}`` in a saved config, not four keys with three nulls."""
        return {key: value for key, value in handler(self).items() if value is not None}

    @property
    def kind(self) -> str:
        return next(name for name in KINDS if getattr(self, name) is not None)

    def values_to_check(self) -> list[Any]:
        """The values whose configs must validate: every choice, or both ends of a range."""
        return list(self.choice) if self.choice is not None else list(getattr(self, self.kind))


class TuneConfig(Frozen):
    metric: Literal["auto", "val_loss", "val_accuracy", "val_r2"] = Field(
        "auto", description="a trial's value: this metric at its best epoch; auto is val_accuracy (val_r2 for regression)"
    )
    space: dict[str, Dimension] = Field(description="config key -> its range or choices")
    pruner: Literal["median", "hyperband", "none"] = "median"
    cv_folds: int | None = Field(
        None, ge=2, le=50, description="score each trial by k-fold cross-validation of the training and validation rows"
    )
    seed: int = Field(0, description="seeds the TPE sampler")
    start_from_config: bool = Field(True, description="the config's own values are the first trial when they lie in the space")
    heartbeat_seconds: int = Field(60, ge=1, description="RDB storages: a running trial's heartbeat interval")
    grace_seconds: int = Field(120, ge=1, description="a trial without a heartbeat this long is failed and retried")
    max_retry: int = Field(3, ge=0, description="retries of a trial whose worker died")

    @field_validator("space")
    @classmethod
    def _not_empty(cls, value: dict) -> dict:
        if not value:
            raise ValueError("the search space is empty; add a key such as train.optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}")
        return value

    @model_validator(mode="after")
    def _grace_after_heartbeat(self) -> TuneConfig:
        if self.grace_seconds <= self.heartbeat_seconds:
            raise ValueError("grace_seconds must be longer than heartbeat_seconds, or a live trial could be failed")
        return self
