"""Loading a config: YAML files, ``--set key=value`` overrides, built-in and per-modality defaults,
and the model section typed by its family.

This is the edge where configs are read and validated once; everything below receives the typed,
frozen ``trainwright.config`` objects. Unlike the schema, this module reads files: the YAML, the
disk to guess a source's modality (``data/modality.py``), a backbone run's ``config.yaml``, and for
pretrained timm/torchvision weights the image size and channels of their pretrained config.

Example:
    >>> cfg = load_config({"data": {"source": "digits"}}, overrides=["train.epochs=5"])
    >>> cfg.train.epochs, cfg.model.type
    (5, 'mlp')
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from trainwright.config import Config, Frozen, ModelConfig
from trainwright.config.base import deep_merge
from trainwright.config.gan import GANRunConfig
from trainwright.data.builtin import BUILTINS
from trainwright.data.modality import source_modality
from trainwright.errors import TrainwrightError, quote
from trainwright.models.pretrained import PretrainedConfig, input_spec, starts_from_weights
from trainwright.models.registry import MODELS


def load_config(source: str | Path | dict | Config, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Build a validated Config from a YAML path, a dict or a Config, applying ``key=value`` overrides.

    Built-in data sets contribute their own defaults (e.g. ``linear`` trains one neuron), which
    anything the user writes takes precedence over.
    """
    return validate_config(read_raw(source, overrides))


def read_raw(source: str | Path | dict | Frozen, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """A config as plain data (a YAML path, a dict or a config object), with ``key=value`` overrides applied.

    Its ``recipe`` key (``supervised`` when absent) names the way of training, whose schema validates it.
    """
    if isinstance(source, Frozen):
        raw = source.model_dump(mode="json")
    elif isinstance(source, dict):
        raw = copy.deepcopy(source)
    else:
        raw = read_yaml(Path(source))
    for item in overrides:
        apply_override(raw, item)
    return raw


# What differs for image sources, under anything the user writes: a CNN rather than an MLP, and
# evaluation batches small enough for convolution activations (4096 images of 64x64 through a
# 64-wide conv layer would need 4 GB).
IMAGE_DEFAULTS = {"model": {"type": "cnn"}, "evaluate": {"batch_size": 256}}
# Text and series train a recurrent network unless told otherwise; recurrent networks clip their
# gradient norm by default (exploding gradients through time, Pascanu et al. 2013).
SEQUENCE_DEFAULTS = {"model": {"type": "lstm"}, "evaluate": {"batch_size": 512}}
RECURRENT = ("rnn", "lstm", "gru")
RECURRENT_DEFAULTS = {"train": {"clip_grad_norm": 1.0}}


def validate_config(raw: dict) -> Config:
    """A Config from plain data: built-in and per-modality defaults under the user's keys, the model
    section typed by its family, every problem named in one line."""
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    source = data.get("source")
    if "model" in raw:
        raw = {**raw, "model": with_backbone_architecture(raw["model"])}
    if isinstance(source, str) and source in BUILTINS:
        raw = deep_merge(BUILTINS[source].config_defaults, raw)
    modality = source_modality(source, data.get("image_column"), data.get("text_column"), data.get("time_column"))
    if modality == "images":
        raw = deep_merge(IMAGE_DEFAULTS, raw)
    elif modality in ("text", "series"):
        raw = deep_merge(SEQUENCE_DEFAULTS, raw)
    model_raw = raw.get("model") if isinstance(raw.get("model"), dict) else {}
    if model_raw.get("type") in RECURRENT:
        raw = deep_merge(RECURRENT_DEFAULTS, raw)
    problems: list[str] = []
    try:
        model = model_config(raw.get("model", {"type": "mlp"}))
    except ValidationError as error:
        problems, model = validation_problems(error, prefix="model."), None
    except ValueError as error:
        problems, model = [str(error)], None
    if model is not None and modality == "images" and starts_from_weights(model):
        raw = with_pretrained_inputs(raw, model, data.get("image", {}))
    try:
        # An invalid model section is reported with the rest; a placeholder lets the rest be checked.
        config = Config.model_validate({**raw, "model": model or MODELS["mlp"].config(type="mlp")})
    except ValidationError as error:
        problems = validation_problems(error) + problems
    if problems:
        raise TrainwrightError(describe_problems(problems))
    return config


def validate_gan_config(raw: dict) -> GANRunConfig:
    """A GAN run's config (``recipe: gan``) from plain data: a built-in data set's own data keys (an image
    column, a size) and its GAN defaults under the user's keys, every problem named in one line.

    Example:
        >>> validate_gan_config({"recipe": "gan", "data": {"source": "digits-images"}}).data.image.size
        8
    """
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    if isinstance(raw.get("train"), dict) and "epochs" in raw["train"]:
        raise TrainwrightError("a GAN trains for a number of generator steps, not epochs: set train.steps (e.g. --set "
                               "train.steps=10000) instead of train.epochs")
    builtin = BUILTINS.get(data.get("source")) if isinstance(data.get("source"), str) else None
    if builtin is not None:
        gan_defaults = {key: value for key, value in builtin.gan_defaults.items() if key != "unconditional"}
        gan = raw.get("gan") if isinstance(raw.get("gan"), dict) else {}
        if gan.get("conditional") is not True:  # the set's defaults for a GAN without labels, e.g. packing
            gan_defaults = deep_merge(gan_defaults, builtin.gan_defaults.get("unconditional", {}))
        defaults = deep_merge({"data": builtin.config_defaults.get("data", {})}, gan_defaults)
        raw = deep_merge(defaults, raw)
    try:
        return GANRunConfig.model_validate(raw)
    except ValidationError as error:
        raise TrainwrightError(describe_validation_error(error)) from None


def model_config(value: Any) -> ModelConfig:
    """The ``model`` section validated by the config class its ``type`` names (``mlp`` by default);
    raises ValueError (not a model mapping, an unknown type) or pydantic's ValidationError."""
    if not isinstance(value, dict):
        raise ValueError("model must be a mapping such as {type: mlp, hidden: [128, 64]}")  # noqa: TRY004 - reported with pydantic's errors
    name = value.get("type", "mlp")
    if name not in MODELS:
        raise ValueError(f"unknown model type {name!r}; available: {', '.join(sorted(MODELS))}")
    return MODELS[name].config.model_validate({**value, "type": name})


def read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise TrainwrightError(f"config file {path} does not exist; pass a YAML file such as examples/digits.yaml")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        detail = str(error).replace("\n", " ")
        raise TrainwrightError(f"config file {path} is not valid YAML: {detail}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise TrainwrightError(f"config file {path} must hold a mapping with sections data, model, train, evaluate")
    return raw


def apply_override(raw: dict, item: str) -> None:
    """Apply one ``dotted.key=value`` override in place; the value is parsed as YAML."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise TrainwrightError(f"--set {item!r} must look like section.key=value, e.g. train.epochs=20")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise TrainwrightError(f"--set {item!r}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def describe_validation_error(error: ValidationError, prefix: str = "") -> str:
    """One line naming each bad key, its value and what is allowed."""
    return describe_problems(validation_problems(error, prefix))


def validation_problems(error: ValidationError, prefix: str = "") -> list[str]:
    """Each bad key with its value and what is allowed (``prefix``: the section the error came from)."""
    problems = []
    for item in error.errors():
        key = prefix + ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown key {key!r} (check its spelling and section)")
        elif item["type"] == "missing":
            hint = ": give data.source, a built-in name (trainwright datasets) or a table path" if key == "data" else ""
            problems.append(f"{key} is required{hint}")
        else:
            problems.append(f"{key} = {quote(item.get('input'))}: {message}" if key else message)
    return problems


def describe_problems(problems: list[str]) -> str:
    return "invalid config: " + "; ".join(problems)


def with_pretrained_inputs(raw: dict, model: PretrainedConfig, image: Any) -> dict:
    """Images for pretrained weights: the size and channels the weights were trained on (their pretrained
    config, ``models/pretrained.input_spec``) where the user's ``data.image`` (``image``) leaves size or mode
    at auto; over a built-in set's own defaults.

    Example:
        >>> with_pretrained_inputs({"data": {"source": "pics"}}, TimmConfig(name="resnet18", cache=True), {})["data"]["image"]
        {'size': [224, 224], 'mode': 'rgb'}
    """
    if not isinstance(image, dict):
        return raw  # reported by the validation
    spec = input_spec(model)
    chosen: dict[str, Any] = {}
    if image.get("size", "auto") == "auto":
        chosen["size"] = list(spec.size)
    if image.get("mode", "auto") == "auto":
        chosen["mode"] = "rgb" if spec.channels == 3 else "grayscale"
    return deep_merge(raw, {"data": {"image": chosen}})


def with_backbone_architecture(model: Any) -> Any:
    """The raw ``model`` section with the backbone run's model keys under the user's own
    (``model.backbone: {from: runs/<run>}``: the architecture is the backbone run's).

    Left as it is when there is no backbone, its run has no config.yaml (training then stops
    with a clear message), or the user names another family (strict loading then says what differs).
    """
    backbone = model.get("backbone") if isinstance(model, dict) else None
    if not isinstance(backbone, dict) or not isinstance(backbone.get("from"), str):
        return model
    path = Path(backbone["from"]).expanduser() / "config.yaml"
    if not path.is_file():
        return model
    saved = read_yaml(path).get("model")
    if not isinstance(saved, dict) or model.get("type", saved.get("type")) != saved.get("type"):
        return model
    return deep_merge({k: v for k, v in saved.items() if k != "backbone"}, model)
