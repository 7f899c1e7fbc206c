"""A user's own ``nn.Module`` passed to ``tw.train(config, model=module)``.

The run records the class name; the weights are saved as usual, but only the user's code can
rebuild the module, so ``tw.load(run_dir, model=MyNet())`` takes a fresh instance to fill.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from trainwright.config import ModelConfig
from trainwright.errors import TrainwrightError


class CustomConfig(ModelConfig):
    type: Literal["custom"] = "custom"
    class_name: str = ""


def build(cfg: CustomConfig, input_shape: tuple[int, ...], out_features: int) -> nn.Module:
    raise TrainwrightError(
        f"this run trained your own module {cfg.class_name or '(unnamed)'}, which trainwright cannot rebuild; "
        "pass a fresh instance: tw.load(run_dir, model=YourModule(...))"
    )
