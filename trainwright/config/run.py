"""The whole supervised run: ``data``, ``model``, ``train``, ``evaluate``, an optional ``calibrate``, ``track``
(experiment tracking), and the optional ``continual`` (``trainwright continual`` and ``continue``) and ``tune``
(``trainwright tune``) sections that other commands read.

``model`` arrives here already typed: its family's config class comes from the model registry, which
``trainwright.configure`` consults (this schema imports nothing of the package but itself).
"""

from __future__ import annotations

from typing import Any, Literal

import yaml
from pydantic import Field, SerializeAsAny, field_validator, model_validator

from trainwright.config.base import Frozen
from trainwright.config.continual import ContinualConfig
from trainwright.config.data import DataConfig
from trainwright.config.model import ModelConfig
from trainwright.config.track import TrackConfig
from trainwright.config.train import TrainConfig
from trainwright.config.tune import TuneConfig


class EvaluateConfig(Frozen):
    batch_size: int = Field(4096, ge=1)
    baseline: bool = Field(True, description="also fit logistic/ridge regression and HistGradientBoosting on the same split")
    gradient_every: int = Field(
        10,
        ge=1,
        description="per-layer gradient norms (gradients.json) on the first optimizer step of each epoch and every Nth after it; "
        "1 = every step",
    )
    # Binary tasks: predict the second class when its probability reaches this; auto: the threshold with
    # the best balanced accuracy on the validation split (saved in threshold.json); none: the likelier class.
    threshold: float | Literal["auto", "none"] = "none"

    @field_validator("threshold")
    @classmethod
    def _probability(cls, value: Any) -> Any:
        if isinstance(value, float) and not 0 < value < 1:
            raise ValueError("threshold must be none, auto or a probability between 0 and 1")
        return value


class CalibrateConfig(Frozen):
    """``calibrate: {method: temperature}`` in a config calibrates as the last stage of train."""

    method: Literal["temperature", "vector", "isotonic"] = "temperature"


class Config(Frozen):
    data: DataConfig
    model: SerializeAsAny[ModelConfig]
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    calibrate: CalibrateConfig | None = None
    continual: ContinualConfig | None = None
    tune: TuneConfig | None = None  # trainwright tune: the search space; train ignores it
    track: TrackConfig = TrackConfig()

    @field_validator("model", mode="before")
    @classmethod
    def _typed_model(cls, value: Any) -> ModelConfig:
        # The family's class is chosen by trainwright.configure (load_config / validate_config).
        if not isinstance(value, ModelConfig):
            raise ValueError("build configs with trainwright.load_config, which types the model section by its family")  # noqa: TRY004 - pydantic reports ValueErrors
        return value

    @model_validator(mode="after")
    def _threshold_or_calibrate(self) -> Config:
        if self.evaluate.threshold != "none" and self.calibrate is not None:
            raise ValueError(
                "evaluate.threshold is set on the model's own probabilities, which calibrate would then move; use one of them"
            )
        return self

    @model_validator(mode="after")
    def _unfreeze_needs_a_frozen_backbone(self) -> Config:
        if self.train.unfreeze_at_epoch is not None and not self.model.starts_frozen:
            raise ValueError(
                "train.unfreeze_at_epoch unfreezes a frozen model.backbone (or pretrained weights' model.freeze); set "
                "model.backbone.freeze (or model.freeze), or remove train.unfreeze_at_epoch"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as written to the run directory's ``config.yaml``."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)
