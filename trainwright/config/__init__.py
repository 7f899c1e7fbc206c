"""The typed run configuration: the schema, and nothing else.

A config is parsed and validated once, at the edge (CLI or API, through ``trainwright.configure``),
into frozen objects that are passed down; nothing deeper reads files, globals or the environment
for settings. This package is a leaf: it imports no other part of trainwright and reads no files.

Example:
    >>> from trainwright.configure import load_config
    >>> load_config({"data": {"source": "digits"}}, overrides=["train.epochs=5"]).train.epochs
    5
"""

from trainwright.config.base import Frozen
from trainwright.config.continual import ContinualConfig
from trainwright.config.data import (
    AUGMENTATIONS,
    AUTO_IMAGE_SIDE,
    Augment,
    AugmentStep,
    CleanConfig,
    ColorJitter,
    Cutout,
    DataConfig,
    HFlip,
    ImageConfig,
    Noise,
    PadCrop,
    PreprocessConfig,
    ResizedCrop,
    Rotation,
    SeriesConfig,
    SplitConfig,
    TokenizerConfig,
    VFlip,
    WindowConfig,
)
from trainwright.config.distill import DistillConfig
from trainwright.config.model import BackboneConfig, ModelConfig
from trainwright.config.run import CalibrateConfig, Config, EvaluateConfig
from trainwright.config.track import TrackConfig
from trainwright.config.train import EarlyStoppingConfig, OptimizerConfig, ScheduleConfig, TrainConfig
from trainwright.config.tune import Dimension, TuneConfig

__all__ = [
    "AUGMENTATIONS",
    "AUTO_IMAGE_SIDE",
    "Augment",
    "AugmentStep",
    "BackboneConfig",
    "CalibrateConfig",
    "CleanConfig",
    "ColorJitter",
    "Config",
    "ContinualConfig",
    "Cutout",
    "DataConfig",
    "Dimension",
    "DistillConfig",
    "EarlyStoppingConfig",
    "EvaluateConfig",
    "Frozen",
    "HFlip",
    "ImageConfig",
    "ModelConfig",
    "Noise",
    "OptimizerConfig",
    "PadCrop",
    "PreprocessConfig",
    "ResizedCrop",
    "Rotation",
    "ScheduleConfig",
    "SeriesConfig",
    "SplitConfig",
    "TokenizerConfig",
    "TrackConfig",
    "TrainConfig",
    "TuneConfig",
    "VFlip",
    "WindowConfig",
]
