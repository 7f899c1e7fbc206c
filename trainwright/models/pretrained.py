"""Pretrained image backbones from timm and torchvision, with a new head for the task (the family file).

``model: {type: timm, name: resnet18, pretrained: weights/resnet18.safetensors}``, or ``type: torchvision``
with ``weights: IMAGENET1K_V1`` naming the weights whose meta data describe the file:

- Architecture: ``timm.create_model`` / ``torchvision.models.get_model``, built with the task's number of
  outputs, so the classifier head is new (seeded like every model) even when the classes number 1000.
  ``build`` reads no weights: ``pretrained_weights.start_from_pretrained`` loads them strictly and
  freezes, so a trained run reloads its own weights without the original file.
- Inputs: the size, channels and normalization the weights expect come from the model's own
  pretrained config (timm's ``pretrained_cfg`` through ``resolve_data_config``, torchvision's weights
  ``transforms()``), as an ``InputSpec`` for the image input stage to apply and record.

timm and torchvision are the ``vision`` extra, imported on first use.

Example:
    >>> cfg = TimmConfig(name="resnet18", pretrained="weights/resnet18.safetensors")
    >>> input_spec(cfg).size, input_spec(cfg).mean
    ((224, 224), (0.485, 0.456, 0.406))
    >>> build(cfg, (3, 224, 224), 5)(torch.zeros(1, 3, 224, 224)).shape
    torch.Size([1, 5])
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from trainwright.config import ModelConfig
from trainwright.errors import TrainwrightError

NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)
EXTRA = "pip install 'trainwright[vision]'"


# ── the config ──────────────────────────────────────────────────────────────────────────────
class PretrainedConfig(ModelConfig):
    """Shared by ``type: timm`` and ``type: torchvision``."""

    name: str = Field(min_length=1, description="the library's model name, e.g. resnet18 (timm takes a tag: resnet18.a1_in1k)")
    pretrained: str | None = Field(None, description="a local weights file: .safetensors, or a PyTorch state dict (.pth, .pt)")
    cache: bool | str = Field(
        False, description="take the weights from the library's download cache (true, or the cache folder); never downloads"
    )
    # all: every layer but the new head; none: nothing; n: the first n layers. Default: all with weights, none without.
    freeze: Literal["all", "none"] | int | None = None

    @model_validator(mode="after")
    def _one_source_and_a_sane_freeze(self) -> PretrainedConfig:
        if self.pretrained is not None and self.cache is not False:
            raise ValueError("model.pretrained and model.cache both name weights; keep one")
        if isinstance(self.freeze, int) and self.freeze < 0:
            raise ValueError("freeze must be all, none or a number of layers >= 0")
        if not self.has_weights and self.freeze not in (None, "none", 0):
            raise ValueError("freeze needs pretrained weights: set model.pretrained: PATH or model.cache: true, or remove freeze")
        return self

    @property
    def has_weights(self) -> bool:
        return self.pretrained is not None or self.cache is not False

    @property
    def freezes(self) -> str | int:
        """What ``freeze`` means once resolved: all with weights, none without, unless set."""
        if self.freeze is not None:
            return self.freeze
        return "all" if self.has_weights else "none"

    @property
    def starts_frozen(self) -> bool:
        """A run backbone (``model.backbone``) replaces the pretrained weights, and its ``freeze`` applies."""
        return super().starts_frozen if self.backbone is not None else self.freezes not in ("none", 0)


def starts_from_weights(cfg: ModelConfig) -> bool:
    """Whether a run starts from timm/torchvision weights: pretrained or cached ones, and no run backbone
    (``model.backbone`` replaces them with its own, trained from them)."""
    return isinstance(cfg, PretrainedConfig) and cfg.has_weights and cfg.backbone is None


class TimmConfig(PretrainedConfig):
    type: Literal["timm"] = "timm"


class TorchvisionConfig(PretrainedConfig):
    type: Literal["torchvision"] = "torchvision"
    weights: str = Field("DEFAULT", description="the weights enum member whose meta data (input size, mean, std) fit the file")


# ── the libraries, imported on first use ───────────────────────────────────────────────────
def import_timm() -> ModuleType:
    """timm (which imports torchvision), or a TrainwrightError saying how to install it."""
    try:
        import timm
    except ImportError as error:
        raise TrainwrightError(f"model.type timm needs timm and torchvision ({error}); install them with: {EXTRA}") from None
    except RuntimeError as error:
        raise _broken_torchvision(error) from None
    return timm


def import_torchvision() -> ModuleType:
    """torchvision, or a TrainwrightError saying how to install it."""
    try:
        import torchvision
    except ImportError as error:
        raise TrainwrightError(f"model.type torchvision needs torchvision ({error}); install it with: {EXTRA}") from None
    except RuntimeError as error:
        raise _broken_torchvision(error) from None
    return torchvision


def _broken_torchvision(error: RuntimeError) -> TrainwrightError:
    # A torchvision wheel built for CUDA cannot load its compiled ops into a CPU-only torch: its import
    # fails with "operator torchvision::nms does not exist" (pytorch/vision#9085).
    return TrainwrightError(
        f"torchvision does not load with torch {torch.__version__} ({error}); install the torchvision build made for this torch, "
        "from the same package index as torch (a CPU torch needs the CPU torchvision)"
    )


# ── what the weights expect as input ───────────────────────────────────────────────────────
@dataclass(frozen=True)
class InputSpec:
    """The images a pretrained model was trained on, from the model's own pretrained config.

    ``size`` (H, W) and ``channels`` are what the weights saw; ``mean``/``std`` normalize pixels in
    0..1 per channel; ``crop_pct`` is the share of the resized image its evaluation transform keeps
    (resize to size / crop_pct, then centre crop); ``fixed_size``: the model takes no other size
    (a ViT's position embeddings). ``source`` says where these numbers come from.
    """

    channels: int
    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str
    crop_pct: float
    fixed_size: bool
    source: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``preprocessor.json`` / ``model.json``."""
        return {**asdict(self), "size": list(self.size), "mean": list(self.mean), "std": list(self.std)}


def input_spec(cfg: PretrainedConfig) -> InputSpec:
    """What the weights ``cfg`` names expect, read from the library's registry (no model is built).

    Example:
        >>> input_spec(TimmConfig(name="resnet18")).size, input_spec(TimmConfig(name="resnet18")).mean
        ((224, 224), (0.485, 0.456, 0.406))
    """
    if cfg.type == "timm":
        timm = import_timm()
        pretrained_cfg = timm_pretrained_cfg(timm, cfg.name)
        data = timm.data.resolve_data_config(pretrained_cfg=pretrained_cfg.to_dict() if pretrained_cfg else {})
        channels, height, width = data["input_size"]
        source = (
            f"timm pretrained_cfg of {pretrained_cfg.hf_hub_id or cfg.name}"
            if pretrained_cfg
            else f"timm defaults ({cfg.name} has no pretrained_cfg)"
        )
        return InputSpec(channels, (height, width), tuple(data["mean"]), tuple(data["std"]), data["interpolation"],
                         float(data["crop_pct"]), bool(pretrained_cfg and pretrained_cfg.fixed_input_size), source)
    weights = torchvision_weights(cfg)
    preset = weights.transforms()  # torchvision's ImageClassification evaluation preset
    crop = _pair(preset.crop_size)
    resize = _pair(preset.resize_size)
    return InputSpec(3, crop, tuple(preset.mean), tuple(preset.std), preset.interpolation.value, round(crop[0] / resize[0], 4),
                     tuple(weights.meta.get("min_size", (1, 1))) == crop, f"torchvision {weights}")


def _pair(size: list[int] | int) -> tuple[int, int]:
    sides = [size] if isinstance(size, int) else list(size)
    return (sides[0], sides[-1])


def timm_pretrained_cfg(timm: ModuleType, name: str) -> Any:
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
        hint = f"; close names: {', '.join(close)}" if close else "; timm.list_models('*pattern*') lists them"
        raise TrainwrightError(f"model.name {name!r} is not a timm model{hint}")
    return timm.models.get_pretrained_cfg(name)


def torchvision_weights(cfg: TorchvisionConfig) -> Any:
    torchvision = import_torchvision()
    names = torchvision.models.list_models(module=torchvision.models)  # classification models only
    if cfg.name not in names:
        close = difflib.get_close_matches(cfg.name, names, n=5, cutoff=0.6)
        shown = ", ".join(close) or ", ".join(names[:8])
        raise TrainwrightError(f"model.name {cfg.name!r} is not a torchvision classification model; close names: {shown}")
    enum = torchvision.models.get_model_weights(cfg.name)
    if cfg.weights not in enum.__members__:
        raise TrainwrightError(f"model.weights {cfg.weights!r} is not one of {cfg.name}'s weights: {', '.join(enum.__members__)}")
    return enum[cfg.weights]


# ── the architecture ────────────────────────────────────────────────────────────────────────
def build(cfg: PretrainedConfig, input_shape: tuple[int, ...], out_features: int, vocab_size: int | None = None) -> nn.Module:
    """The library's architecture mapping (B, C, H, W) -> (B, out_features), with a new head; no weights read.

    The weights are loaded by ``start_from_pretrained`` (so a trained run reloads its own weights
    without the original file). With weights, the input must be what they expect: the same channels,
    and for a fixed-size model (a ViT) the same height and width.

    Example:
        >>> build(TimmConfig(name="test_resnet"), (3, 32, 32), 4)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 4])
    """
    if len(input_shape) != 3:
        raise TrainwrightError(f"model.type {cfg.type} takes images (C, H, W); these inputs have shape {tuple(input_shape)}")
    channels, height, width = input_shape
    if cfg.has_weights:
        spec = input_spec(cfg)
        if channels != spec.channels:
            raise TrainwrightError(f"{cfg.name}'s weights take {spec.channels}-channel images, these have {channels}; "
                                   f"set data.image.mode: {'rgb' if spec.channels == 3 else 'grayscale'}")
        if spec.fixed_size and (height, width) != spec.size:
            raise TrainwrightError(f"{cfg.name} takes only {spec.size[0]}x{spec.size[1]} images (its weights fix the size), "
                                   f"these are {height}x{width}; set data.image.size: [{spec.size[0]}, {spec.size[1]}]")
    if cfg.type == "timm":
        timm = import_timm()
        timm_pretrained_cfg(timm, cfg.name)  # a clear error for an unknown name
        return timm.create_model(cfg.name, pretrained=False, num_classes=out_features, in_chans=channels)
    torchvision = import_torchvision()
    torchvision_weights(cfg)
    if channels != 3:
        raise TrainwrightError(f"torchvision's {cfg.name} takes 3-channel images, not {channels}; set data.image.mode: rgb")
    model = torchvision.models.get_model(cfg.name, weights=None, num_classes=out_features)
    head_name(model)  # a model without a Linear classifier cannot get a new head
    return model


# ── the head ────────────────────────────────────────────────────────────────────────────────
def family_model(module: nn.Module) -> nn.Module:
    """The timm/torchvision model itself, also when the image input stage wraps it (normalize, model)."""
    inner = getattr(module, "model", None)
    return inner if hasattr(module, "normalize") and isinstance(inner, nn.Module) else module


def head_name(module: nn.Module) -> str:
    """The qualified name of the classifier head: timm's ``get_classifier()``, else the last Linear (torchvision)."""
    model = family_model(module)
    if callable(getattr(model, "get_classifier", None)):
        head = model.get_classifier()
        names = [name for name, m in model.named_modules() if m is head and name]
    else:
        names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)][-1:]
    if not names or next(model.get_submodule(names[0]).parameters(), None) is None:
        raise TrainwrightError(f"{type(model).__name__} has no classifier layer with weights to replace; pick another model.name")
    return names[0]
