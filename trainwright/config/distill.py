"""The ``distill`` section of a student's config (``trainwright distill``)."""

from __future__ import annotations

from pydantic import Field

from trainwright.config.base import Frozen


class DistillConfig(Frozen):
    temperature: float = Field(4.0, gt=0, description="softens both distributions; 2-8 is usual")
    alpha: float = Field(0.7, ge=0, le=1, description="weight of the soft (teacher) term")
    # Function matching (Beyer et al. 2022, "Knowledge distillation: A good teacher is patient and
    # consistent"): each training input is blended with another of its batch, lam * x + (1 - lam) * x',
    # lam ~ Beta(mixup, mixup), and the teacher labels the blend. On its own training images a teacher's
    # targets are nearly one-hot; on blends they carry what it knows. 0 turns it off.
    mixup: float = Field(0.0, ge=0, description="Beta parameter of the blends; 0: off, 1: lam uniform")
