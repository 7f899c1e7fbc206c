"""The ``model`` section's base: ``type`` names a family in the model registry (``models/registry.py``),
whose own config class validates the rest; ``backbone`` starts from a trained run's layers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from trainwright.config.base import Frozen


class BackboneConfig(Frozen):
    """``model.backbone: {from: runs/<run>, freeze: all}``: start from a trained run's layers (see transfer.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)

    from_: str = Field(alias="from", description="the run directory whose trained layers this model starts from")
    # all: every layer but the new head; none: nothing; n: the first n layers (blocks) of the backbone.
    freeze: Literal["all", "none"] | int = "all"

    @field_validator("freeze")
    @classmethod
    def _not_negative(cls, value: Any) -> Any:
        if isinstance(value, int) and value < 0:
            raise ValueError("freeze must be all, none or a number of layers >= 0")
        return value


class ModelConfig(Frozen):
    """Base of every model family's config; ``type`` picks the family in the registry."""

    type: str
    backbone: BackboneConfig | None = None

    @property
    def starts_frozen(self) -> bool:
        """Whether some layers start frozen (``train.unfreeze_at_epoch`` can then let them train);
        families that load weights of their own (timm, torchvision) add their ``freeze``."""
        return self.backbone is not None and self.backbone.freeze not in ("none", 0)


