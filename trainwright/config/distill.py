"""The ``distill`` section of a student's config (``trainwright distill``)."""

from __future__ import annotations

from pydantic import Field

from trainwright.config.base import Frozen


class DistillConfig(Frozen):
    temperature: float = Field(4.0, gt=0, description="softens both distributions; 2-8 is usual")
    alpha: float = Field(0.7, ge=0, le=1, description="weight of the soft (teacher) term")
