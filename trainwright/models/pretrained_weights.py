"""Starting a pretrained timm/torchvision model: its weights, strictly loaded, then frozen layers.

- Where the weights are: ``model.pretrained`` (a local file), or with ``model.cache`` the file in the
  library's own download cache (timm: the Hugging Face hub cache; torchvision: torch hub's
  ``checkpoints`` folder), found by reading folders only: nothing is ever downloaded.
- Reading: safetensors, or a PyTorch checkpoint with ``torch.load(..., weights_only=True)``.
- Strict loading: every tensor but the head's must be in the file with the same shape, or nothing
  loads and the error names what differs (as for a run backbone, ``transfer.py``).
- Layers and freezing: ``freeze: all | none | n`` as for a run backbone. A layer is one of timm's coarse
  parameter groups (``group_matcher(coarse=True)``: the stem, then each stage or block), or for
  torchvision a top-level child module (a norm layer joined to the one before). ``parameter_groups``
  puts the head first at ``lr`` and the backbone at ``lr x backbone_lr_scale``.

Example:
    >>> cfg = TimmConfig(name="resnet18", pretrained="weights/resnet18.safetensors")
    >>> model = build(cfg, (3, 224, 224), 5)           # new 5-way head, weights not read yet
    >>> facts = start_from_pretrained(model, cfg)      # strict load, then freeze all but the head
"""

from __future__ import annotations

import pickle
from pathlib import Path
from urllib.parse import urlparse

import torch
from safetensors import SafetensorError
from torch import nn

from trainwright.errors import TrainwrightError
from trainwright.models.loading import load_strictly
from trainwright.models.pretrained import (
    NORMS,
    PretrainedConfig,
    TorchvisionConfig,
    family_model,
    head_name,
    import_timm,
    input_spec,
    timm_pretrained_cfg,
    torchvision_weights,
)


# ── head, layers, freezing, learning rates ─────────────────────────────────────────────────
def head_keys(module: nn.Module) -> set[str]:
    """The head's state_dict keys, in the family model's naming."""
    model = family_model(module)
    head = head_name(model)
    return {f"{head}.{key}" for key in model.get_submodule(head).state_dict()}


def split_parameters(module: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(backbone parameters, head parameters), each in the model's order.

    Example:
        >>> body, head = split_parameters(build(TimmConfig(name="test_resnet"), (3, 32, 32), 4))
        >>> [tuple(p.shape) for p in head]
        [(4, 96), (4,)]
    """
    model = family_model(module)
    head = list(model.get_submodule(head_name(model)).parameters())
    ids = {id(p) for p in head}
    return [p for p in model.parameters() if id(p) not in ids], head


def layers(module: nn.Module) -> list[list[nn.Parameter]]:
    """The backbone's layers in order (from the input), each a list of parameters; the head is not one.

    timm: its coarse parameter groups (``group_matcher(coarse=True)``: the stem, then each stage or
    block). torchvision: each top-level child with parameters, a norm layer joined to the one before,
    parameters held by the model itself (a ViT's class token) with the first.
    """
    model = family_model(module)
    head = {id(p) for p in model.get_submodule(head_name(model)).parameters()}
    groups: list[list[nn.Parameter]]
    if callable(getattr(model, "group_matcher", None)):
        from timm.models import group_parameters

        named = dict(model.named_parameters())
        groups = [[named[name] for name in names] for names in group_parameters(model, model.group_matcher(coarse=True)).values()]
    else:
        groups = []
        for child in model.children():
            params = list(child.parameters())
            if not params:
                continue
            if isinstance(child, NORMS) and groups:
                groups[-1] += params
            else:
                groups.append(params)
        own = list(model.parameters(recurse=False))
        groups = [own + groups[0], *groups[1:]] if groups else [own]
    return [kept for group in groups if (kept := [p for p in group if id(p) not in head])]


def frozen_count(module: nn.Module, freeze: str | int) -> int:
    """How many layers ``freeze`` means for this model: all = every layer but the head."""
    body = len(layers(module))
    if freeze == "all":
        return body
    if freeze == "none":
        return 0
    if int(freeze) > body:
        raise TrainwrightError(
            f"model.freeze = {freeze}, but the backbone has {body} layers before its head; use all, none or 0..{body}"
        )
    return int(freeze)


def freeze_layers(module: nn.Module, freeze: str | int) -> list[nn.Parameter]:
    """Stop gradients to the first layers ``freeze`` names; returns their parameters.

    Batch-norm running statistics of frozen layers still follow the new data in training mode, as
    for a run backbone; ``transfer.Unfreeze`` lets them train again.
    """
    frozen = [p for layer in layers(module)[: frozen_count(module, freeze)] for p in layer]
    for p in frozen:
        p.requires_grad_(False)
    return frozen


def parameter_groups(module: nn.Module, lr: float, backbone_lr_scale: float) -> list[dict]:
    """Two optimizer groups: the head at ``lr`` (first, so it is the lr that is logged), the backbone at ``lr x scale``."""
    body, head = split_parameters(module)
    return [{"params": head}, {"params": body, "lr": lr * backbone_lr_scale}]


# ── the weights ─────────────────────────────────────────────────────────────────────────────
def weights_file(cfg: PretrainedConfig) -> Path | None:
    """Where the weights are read from: ``cfg.pretrained``, or the file in the library's cache; None without weights.

    A missing file is an error naming where it was looked for and how to put it there.
    """
    if cfg.pretrained is not None:
        path = Path(cfg.pretrained).expanduser()
        if not path.is_file():
            raise TrainwrightError(
                f"model.pretrained: {path} does not exist; {_how_to_get(cfg)}, and set model.pretrained to that file"
            )
        return path
    if cfg.cache is False:
        return None
    folder = None if cfg.cache is True else Path(str(cfg.cache)).expanduser()
    return _timm_cached(cfg, folder) if cfg.type == "timm" else _torchvision_cached(cfg, folder)


def _how_to_get(cfg: PretrainedConfig) -> str:
    if cfg.type == "timm":
        pretrained_cfg = timm_pretrained_cfg(import_timm(), cfg.name)
        hub = pretrained_cfg.hf_hub_id if pretrained_cfg else None
        if hub:
            return f"download it on a machine with internet access (hf download {hub} model.safetensors --local-dir DIR)"
        url = pretrained_cfg.url if pretrained_cfg else ""
        return f"download it ({url})" if url else f"timm publishes no weights for {cfg.name}: use one of your own"
    return f"download it ({torchvision_weights(cfg).url})"


def _timm_cached(cfg: PretrainedConfig, folder: Path | None) -> Path:
    from huggingface_hub import constants, try_to_load_from_cache

    pretrained_cfg = timm_pretrained_cfg(import_timm(), cfg.name)
    hub = pretrained_cfg.hf_hub_id if pretrained_cfg else None
    if not hub:
        raise TrainwrightError(
            f"model.cache: timm has no Hugging Face hub copy of {cfg.name}'s weights; {_how_to_get(cfg)} and set model.pretrained"
        )
    names = [pretrained_cfg.hf_hub_filename] if pretrained_cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
    for name in names:
        # Reads the cache's folders only: no network access, whatever HF_HUB_OFFLINE says.
        found = try_to_load_from_cache(hub, name, cache_dir=folder)
        if isinstance(found, str):
            return Path(found)
    where = folder or Path(constants.HF_HUB_CACHE)
    raise TrainwrightError(
        f"model.cache: the weights of {hub} are not in the Hugging Face cache {where}; fill it once on a machine with internet "
        f"access (hf download {hub} model.safetensors) and copy the cache here, or download the file and set model.pretrained"
    )


def _torchvision_cached(cfg: TorchvisionConfig, folder: Path | None) -> Path:
    weights = torchvision_weights(cfg)
    where = (folder or Path(torch.hub.get_dir())) / "checkpoints"
    path = where / Path(urlparse(weights.url).path).name
    if not path.is_file():
        raise TrainwrightError(
            f"model.cache: {weights} is not in torch hub's cache ({path} does not exist); download {weights.url} "
            "there, or anywhere and set model.pretrained"
        )
    return path


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in a weights file: safetensors, or a PyTorch checkpoint read with ``weights_only=True``.

    timm's loader: a checkpoint's ``state_dict_ema``/``model_ema``, ``state_dict`` or ``model`` entry is
    taken when there is one, and DataParallel/compile prefixes are removed.
    """
    import_timm()
    from timm.models import load_state_dict

    try:
        tensors = load_state_dict(str(path), weights_only=True)
    except (SafetensorError, OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as error:
        # safetensors' header errors; torch.load's zip, pickle and weights_only refusals (timm raises RuntimeError for those)
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TrainwrightError(f"model.pretrained: {path} is not a readable weights file ({detail}); give a .safetensors file, "
                               "or a PyTorch state dict saved with torch.save(model.state_dict(), path)") from None
    if not isinstance(tensors, dict) or not tensors or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        raise TrainwrightError(
            f"model.pretrained: {path} holds no state dict of tensors; save one with torch.save(model.state_dict(), path)"
        )
    return tensors


def load_weights(module: nn.Module, tensors: dict[str, torch.Tensor], source: str) -> int:
    """Copy every tensor but the head's into the model, strictly (``loading.load_strictly``); returns how many."""
    model = family_model(module)
    what = f"model.pretrained: the weights in {source} do not fit {type(model).__name__}"
    fix = "Check model.name (and for torchvision model.weights) against the file's architecture"
    return load_strictly(model, tensors, head_keys(model), what, fix)


def start_from_pretrained(module: nn.Module, cfg: PretrainedConfig) -> dict:
    """Load the weights ``cfg`` names (all but the head), freeze what ``cfg.freeze`` says; facts for ``model.json``.

    Without weights (``pretrained: null``, ``cache: false``) the architecture trains from its own
    initialization and nothing is frozen.
    """
    path = weights_file(cfg)
    loaded = load_weights(module, read_weights(path), str(path)) if path is not None else 0
    freeze_layers(module, cfg.freezes)
    return {**describe(module, cfg), "tensors_loaded": loaded}


def describe(module: nn.Module, cfg: PretrainedConfig) -> dict:
    """What ``model.json`` records of the weights a model starts from, read from the model as it starts training.

    Example:
        >>> describe(model, cfg)["frozen_layers"], describe(model, cfg)["input"]["size"]
        (5, [160, 160])
    """
    path = weights_file(cfg)
    return {
        "library": cfg.type, "name": cfg.name, "weights": str(path) if path is not None else None, "head": head_name(module),
        "freeze": cfg.freezes, "layers": len(layers(module)), "frozen_layers": frozen_count(module, cfg.freezes),
        "frozen_parameters": sum(p.numel() for p in family_model(module).parameters() if not p.requires_grad),
        "input": input_spec(cfg).to_dict(),
    }
