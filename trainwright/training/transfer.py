"""Transfer learning: a new model starts from a trained run's layers, with a new head for its task.

``model.backbone: {from: runs/<run>, freeze: all|none|<n>}`` in a config:

- Architecture: the model section is the backbone run's own (from its ``config.yaml``, merged when the
  config is loaded: ``configure.with_backbone_architecture``), with any keys the user writes laid over
  it; the head is sized for the new task's outputs.
- Strict loading: every tensor except the head's must exist in both the run's weights and the
  new model, with the same shape, or nothing loads and the error lists what differs. The input
  shape must match too: a CNN's weights fit any image size (global pooling), so equal tensor
  shapes alone would let an 8x8 backbone load silently into a 32x32 model.
- The head (the last layer with parameters) is always new, initialized with the run's seed,
  even when the number of outputs is the same: the new task's classes are other classes.
- Normalization: images are normalized with the backbone's per-channel mean and std, not the
  new training split's, so the learned filters see pixels scaled as in their own training (and a
  small new split would give noisy statistics); ``preprocessor.json`` records those statistics.
  Tables are standardized on the new training split (each feature mean 0, std 1, as the
  backbone's first layer saw its own data); they must have the same input width.
- Layers: the network's modules with parameters in order, a normalization layer counted with
  the layer before it (Conv + BatchNorm is one layer, a residual block is one). ``freeze: n``
  freezes the first n; ``all`` every one but the head. Batch-norm running statistics of frozen
  layers still follow the new data in training mode, as in PyTorch's usual fine-tuning.
- Learning rates: two optimizer parameter groups, the head at ``optimizer.lr`` (first, so it is
  the lr that is logged) and the backbone at ``optimizer.lr x train.backbone_lr_scale``.
  Frozen parameters get no gradients, so the optimizer skips them until ``Unfreeze`` (at
  ``train.unfreeze_at_epoch``) lets them train.

Pretrained timm/torchvision weights (``model: {type: timm, name: resnet18, pretrained: PATH}``,
``models/pretrained.py`` and ``models/pretrained_weights.py``) follow the same rules: strict loading
under a new head, ``model.freeze``, the backbone's learning-rate group, ``Unfreeze``; images are
normalized with the mean and std of the weights' own pretrained config.

Example:
    >>> run = tw.train("examples/transfer.yaml", overrides=["model.backbone.from=runs/digits-0-4"])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from trainwright.config import BackboneConfig, Config, TrainConfig
from trainwright.data.prepare import Prepared
from trainwright.errors import TrainwrightError
from trainwright.models import pretrained_weights
from trainwright.models.loading import load_strictly
from trainwright.models.pretrained import PretrainedConfig, input_spec, starts_from_weights
from trainwright.rundir import RunDir
from trainwright.training.callbacks import Callback
from trainwright.training.state import TrainingState

NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)


# ── reading the backbone run ──────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class Backbone:
    path: Path
    model_type: str
    input_shape: tuple[int, ...]
    preprocessor: dict  # the run's preprocessor.json
    tensors: dict[str, torch.Tensor]  # its model.safetensors


def read_backbone(cfg: BackboneConfig) -> Backbone:
    """The trained run ``cfg.from_`` names; a missing or unfinished run is a clear error."""
    try:
        run = RunDir.open(cfg.from_)
    except TrainwrightError as error:
        raise TrainwrightError(f"model.backbone.from: {error}") from None
    info = run.read_json(run.model_info)
    facts = run.read_json(run.path / "preprocessor.json")
    try:
        tensors = load_file(str(run.weights))
    except FileNotFoundError:
        raise TrainwrightError(
            f"model.backbone.from: {run.weights} is missing; the run {run.path} did not finish training"
        ) from None
    except (SafetensorError, OSError) as error:
        raise TrainwrightError(f"model.backbone.from: {run.weights} is not a readable safetensors file ({error})") from None
    return Backbone(run.path, info["type"], tuple(info["input_shape"]), facts, tensors)


def check_inputs(backbone: Backbone, data: Prepared) -> None:
    """The new data must reach the backbone as its own did: same modality and input shape."""
    modality, here = backbone.preprocessor.get("modality", "tabular"), getattr(data.preprocessor, "modality", "tabular")
    if modality != here:
        raise TrainwrightError(
            f"model.backbone.from: {backbone.path} was trained on {modality}, this data is {here}; a backbone needs the same "
            "kind of input"
        )
    if backbone.input_shape != tuple(data.input_shape):
        what = "images (C, H, W)" if modality == "images" else "features"
        fix = (
            "set data.image.size and data.image.mode as the backbone's run had them"
            if modality == "images"
            else "use the same feature columns"
        )
        raise TrainwrightError(
            f"model.backbone.from: {backbone.path} takes {what} {backbone.input_shape}, this data gives "
            f"{tuple(data.input_shape)}; {fix}"
        )


def use_backbone_normalization(backbone: Backbone, data: Prepared) -> None:
    """Images: normalize with the backbone's statistics (see the module docstring); tables: unchanged."""
    if getattr(data.preprocessor, "modality", "tabular") == "images":
        facts = backbone.preprocessor
        data.preprocessor.use_statistics(facts["mean"], facts["std"], f"the backbone {backbone.path}")


def use_pretrained_normalization(cfg: PretrainedConfig, data: Prepared) -> None:
    """Images: normalize with the mean and std the weights were trained with (their pretrained config)."""
    if getattr(data.preprocessor, "modality", "tabular") == "images":
        spec = input_spec(cfg)
        if len(spec.mean) == data.input_shape[0]:  # other channel counts: building the model says what to set
            data.preprocessor.use_statistics(spec.mean, spec.std, spec.source)


# ── layers, head, strict loading ──────────────────────────────────────────────────────────
def layers(module: nn.Module) -> list[list[tuple[str, nn.Module]]]:
    """The network's layers in order, each a list of (state_dict prefix, module); the last is the head.

    A child module with parameters starts a layer; a normalization layer joins the one before it.
    The image input stage (``normalize``: buffers only) is not a layer.
    """
    net, prefix = (module.model, "model.") if hasattr(module, "normalize") and hasattr(module, "model") else (module, "")
    found: list[list[tuple[str, nn.Module]]] = []
    for name, child in net.named_children():
        if next(child.parameters(), None) is None:
            continue
        if isinstance(child, NORMS) and found:
            found[-1].append((prefix + name, child))
        else:
            found.append([(prefix + name, child)])
    if len(found) < 2:
        raise TrainwrightError("model.backbone needs a model with layers before its head; this one has a single layer")
    return found


def head_keys(module: nn.Module) -> set[str]:
    return {f"{prefix}.{key}" for prefix, child in layers(module)[-1] for key in child.state_dict()}


def load_backbone(module: nn.Module, backbone: Backbone) -> int:
    """Copy every tensor but the head's from the backbone into ``module``, strictly; returns how many."""
    return load_strictly(
        module,
        backbone.tensors,
        head_keys(module),
        f"model.backbone.from: the weights in {backbone.path} do not fit this model ({backbone.model_type} there)",
        "Leave the model's architecture keys out to take them from the backbone's config.yaml",
    )


def frozen_count(module: nn.Module, freeze: str | int) -> int:
    """How many layers ``freeze`` means for this model: all = every layer but the head."""
    body = len(layers(module)) - 1
    if freeze == "all":
        return body
    if freeze == "none":
        return 0
    if freeze > body:
        raise TrainwrightError(
            f"model.backbone.freeze = {freeze}, but the backbone has {body} layers before its head; use all, none or 0..{body}"
        )
    return int(freeze)


def freeze_layers(module: nn.Module, freeze: str | int) -> list[nn.Parameter]:
    """Stop gradients to the first layers ``freeze`` names; returns their parameters."""
    frozen = [p for layer in layers(module)[: frozen_count(module, freeze)] for _, child in layer for p in child.parameters()]
    for p in frozen:
        p.requires_grad_(False)
    return frozen


def start_from_backbone(module: nn.Module, cfg: BackboneConfig, backbone: Backbone) -> None:
    """Load the backbone into ``module`` (all but the head) and freeze the layers ``cfg.freeze`` names."""
    load_backbone(module, backbone)
    freeze_layers(module, cfg.freeze)


def describe(cfg: Config, module: nn.Module) -> dict | None:
    """What model.json records about the backbone (a run's or pretrained weights), read from the model
    as it starts training; None for a model that starts from its own initialization."""
    if starts_from_weights(cfg.model):
        return {**pretrained_weights.describe(module, cfg.model), "normalization": "the weights'"}
    if cfg.model.backbone is None:
        return None
    return describe_backbone(cfg.model.backbone, module)


def describe_backbone(cfg: BackboneConfig, module: nn.Module) -> dict:
    return {
        "from": cfg.from_,
        "freeze": cfg.freeze,
        "layers": len(layers(module)) - 1,
        "frozen_layers": frozen_count(module, cfg.freeze),
        "frozen_parameters": sum(p.numel() for p in module.parameters() if not p.requires_grad),
        # Images: the input stage holds the backbone's statistics (see use_backbone_normalization).
        "normalization": "the backbone's" if hasattr(module, "normalize") else "this training split's",
    }


def summary_line(facts: dict, train: TrainConfig) -> str:
    """One console line: where the layers come from, what is frozen, when it unfreezes."""
    if "from" in facts:
        line = (
            f"backbone: {facts['from']}, {facts['frozen_layers']} of {facts['layers']} layers frozen "
            f"({facts['frozen_parameters']:,} parameters), new head, inputs normalized with {facts['normalization']} statistics"
        )
    else:
        spec = facts["input"]
        mean, std = (" ".join(f"{v:.3f}" for v in spec[key]) for key in ("mean", "std"))
        height, width = spec["size"]
        line = (
            f"pretrained: {facts['library']} {facts['name']} from {facts['weights']}, {facts['frozen_layers']} of "
            f"{facts['layers']} layers frozen ({facts['frozen_parameters']:,} parameters), new head {facts['head']}; inputs "
            f"normalized with the weights' mean {mean}, std {std} ({spec['source']}, trained at {height}x{width})"
        )
    if train.unfreeze_at_epoch is not None:
        line += f"; all train from epoch {train.unfreeze_at_epoch}"
    if facts["frozen_layers"] < facts["layers"] or train.unfreeze_at_epoch is not None:
        line += f" (backbone lr = {train.optimizer.lr:g} x {train.backbone_lr_scale:g})"
    return line


# ── training: learning rates and unfreezing ───────────────────────────────────────────────
def parameter_groups(module: nn.Module, cfg: Config) -> list[dict] | list[nn.Parameter]:
    """The optimizer's parameters: one group, or with a backbone (a run's or pretrained weights) the head at
    lr and the rest at lr x scale."""
    if starts_from_weights(cfg.model):
        return pretrained_weights.parameter_groups(module, cfg.train.optimizer.lr, cfg.train.backbone_lr_scale)
    if cfg.model.backbone is None:
        return list(module.parameters())
    head = [p for _, child in layers(module)[-1] for p in child.parameters()]
    ids = {id(p) for p in head}
    body = [p for p in module.parameters() if id(p) not in ids]
    return [{"params": head}, {"params": body, "lr": cfg.train.optimizer.lr * cfg.train.backbone_lr_scale}]


class Unfreeze(Callback):
    """From epoch ``at`` on, the frozen backbone layers train too (at the backbone group's lr).

    Which layers are frozen follows from the config, so a resumed run needs no saved state:
    past ``at`` it unfreezes when training begins.
    """

    order = -10  # before the others: a resumed run unfreezes before they look at the model

    def __init__(self, at: int, module: nn.Module):
        self.at, self.module = at, module

    def on_train_begin(self, state: TrainingState) -> None:
        if state.epoch + 1 >= self.at:
            self.unfreeze()

    def on_epoch_end(self, state: TrainingState, logs: dict) -> None:
        if state.epoch + 1 == self.at:
            self.unfreeze()

    def unfreeze(self) -> None:
        for p in self.module.parameters():
            p.requires_grad_(True)


def transfer_callbacks(cfg: Config, module: nn.Module) -> list[Callback]:
    at = cfg.train.unfreeze_at_epoch
    return [Unfreeze(at, module)] if at is not None and cfg.model.starts_frozen else []
