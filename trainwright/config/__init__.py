"""The typed run configuration: schema, YAML loading and ``--set key=value`` overrides.

A config is parsed and validated once, at the edge (CLI or API), into frozen objects that
are passed down; nothing deeper reads files, globals or the environment for settings.

Example:
    >>> cfg = load_config({"data": {"source": "digits"}}, overrides=["train.epochs=5"])
    >>> cfg.train.epochs
    5
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, field_validator, model_validator

from trainwright.errors import TrainwrightError


class Frozen(BaseModel):
    """Base for config sections: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ── data ────────────────────────────────────────────────────────────────────────────────
class SplitConfig(Frozen):
    train: float = Field(0.70, gt=0, lt=1)
    val: float = Field(0.15, ge=0, lt=1)
    test: float = Field(0.15, ge=0, lt=1)
    stratify: bool = True
    seed: int = 0

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> SplitConfig:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must be 1.0, got {total:g}")
        return self


class CleanConfig(Frozen):
    drop_duplicates: bool = True
    drop_constant: bool = True
    # Rows with missing feature values: impute them (fit on train) or drop them.
    missing: Literal["impute", "drop"] = "impute"
    impute_numeric: Literal["mean", "median", "most_frequent"] = "median"


class PreprocessConfig(Frozen):
    numeric: Literal["standard", "minmax", "robust", "none"] = "standard"
    categorical: Literal["onehot", "ordinal"] = "onehot"
    # Regression targets are standardized for training and mapped back for metrics/predictions.
    scale_target: bool = True


class ImageConfig(Frozen):
    """How every image becomes one (C, H, W) uint8 array; applies to image sources only."""

    # auto: grayscale when every image is grayscale, else rgb (decided on the data, then saved).
    mode: Literal["auto", "rgb", "grayscale"] = "auto"
    # [H, W] or one int for squares; auto: the most common image size, shrunk (aspect kept) so
    # its longer side is at most AUTO_IMAGE_SIDE pixels.
    size: int | tuple[int, int] | Literal["auto"] = "auto"
    # crop: scale to cover, cut the centre; pad: scale to fit, pad the borders; stretch: ignore aspect.
    resize: Literal["crop", "pad", "stretch"] = "crop"
    # Decompression-bomb guard: an image with more pixels than this is skipped, never decoded.
    max_pixels: int = Field(50_000_000, ge=1)
    # Where decoded images live: memory when they fit, else a memory-mapped temporary file.
    cache: Literal["auto", "memory", "disk"] = "auto"

    @field_validator("size")
    @classmethod
    def _sane_size(cls, value: Any) -> Any:
        sides = (value, value) if isinstance(value, int) else value
        if sides != "auto" and not all(4 <= side <= 4096 for side in sides):
            raise ValueError("size must be auto, one int or [H, W], each side between 4 and 4096 pixels")
        return value


AUTO_IMAGE_SIDE = 64


class TokenizerConfig(Frozen):
    """How text becomes token ids (``data/text.py``); the vocabulary is learned on the training split only."""

    # bpe / wordpiece: a Hugging Face ``tokenizers`` subword vocabulary; char: one token per character.
    # bpe and char train the same vocabulary every time; the WordPiece trainer (tokenizers 0.23)
    # breaks ties between equally frequent merges differently from run to run, so two trainings of
    # one config can differ slightly (the saved tokenizer.json keeps each run's predictions exact).
    kind: Literal["bpe", "wordpiece", "char"] = "bpe"
    vocab_size: int = Field(8000, ge=8, le=1_000_000, description="at most this many tokens, special tokens included")
    max_length: int = Field(128, ge=2, le=8192, description="tokens per text: longer texts are cut, shorter padded")
    lowercase: bool = True


class WindowConfig(Frozen):
    """Sliding windows over a time series (``data/series.py``): ``lookback`` rows in, ``horizon`` rows out."""

    lookback: int = Field(48, ge=1)
    horizon: int = Field(1, ge=1)
    stride: int = Field(1, ge=1, description="rows between the starts of consecutive windows")
    # The seasonal-naive baseline's period in rows; auto: the strongest autocorrelation lag of the
    # training part, up to lookback.
    season: int | Literal["auto"] = "auto"


# ── augmentation (image training batches only; built by data/augment.py) ───────────────
class Augment(Frozen):
    p: float = Field(1.0, ge=0, le=1, description="probability of applying it to each image")


class HFlip(Augment):
    name: Literal["hflip"] = "hflip"
    p: float = Field(0.5, ge=0, le=1)


class VFlip(Augment):
    name: Literal["vflip"] = "vflip"
    p: float = Field(0.5, ge=0, le=1)


class Rotation(Augment):
    name: Literal["rotation"] = "rotation"
    degrees: float = Field(15.0, gt=0, le=180, description="uniform in [-degrees, degrees]")


class ResizedCrop(Augment):
    name: Literal["resized_crop"] = "resized_crop"
    scale: tuple[float, float] = Field((0.8, 1.0), description="area of the crop as a fraction of the image")
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    @model_validator(mode="after")
    def _ordered(self) -> ResizedCrop:
        if not (0 < self.scale[0] <= self.scale[1] <= 1 and 0 < self.ratio[0] <= self.ratio[1]):
            raise ValueError("resized_crop needs 0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1]")
        return self


class PadCrop(Augment):
    name: Literal["pad_crop"] = "pad_crop"
    padding: int = Field(4, ge=1, description="pixels of reflection padding before a random crop back to size")


class ColorJitter(Augment):
    name: Literal["color_jitter"] = "color_jitter"
    brightness: float = Field(0.2, ge=0)
    contrast: float = Field(0.2, ge=0)
    saturation: float = Field(0.2, ge=0, description="rgb only")
    hue: float = Field(0.0, ge=0, le=0.5, description="rgb only")


class Noise(Augment):
    name: Literal["noise"] = "noise"
    std: float = Field(0.05, gt=0, description="Gaussian noise, in pixel units of 0..1")
    p: float = Field(0.5, ge=0, le=1)


class Cutout(Augment):
    name: Literal["cutout"] = "cutout"
    size: float = Field(0.25, gt=0, lt=1, description="side of the square cut out, as a fraction of the image side")
    value: float = Field(0.5, ge=0, le=1, description="fill, in pixel units of 0..1")
    p: float = Field(0.5, ge=0, le=1)


AugmentStep = Annotated[Union[HFlip, VFlip, Rotation, ResizedCrop, PadCrop, ColorJitter, Noise, Cutout], Field(discriminator="name")]
AUGMENTATIONS: dict[str, type[Augment]] = {cls.model_fields["name"].default: cls for cls in get_args(get_args(AugmentStep)[0])}


class DataConfig(Frozen):
    source: str = Field(description="a built-in data set name, a path to a CSV/Parquet/JSONL table, or a folder of images")
    target: str | None = None
    task: Literal["auto", "binary", "multiclass", "regression"] = "auto"
    features: list[str] | None = None
    drop_columns: list[str] = []
    clean: CleanConfig = CleanConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    split: SplitConfig = SplitConfig()
    # Images: a table's column of image paths (relative to the table), the decoding settings,
    # and the augmentations applied to training batches (in this order).
    image_column: str | None = None
    image: ImageConfig = ImageConfig()
    augment: tuple[AugmentStep, ...] = ()
    # Text: a table's column of raw text (or a folder of .txt files per class), its tokenizer,
    # and the longest text kept (in characters) before tokenizing.
    text_column: str | None = None
    tokenizer: TokenizerConfig = TokenizerConfig()
    max_chars: int = Field(10_000, ge=1)
    # Time series: the table's time column, the windows, and the value columns fed to the model
    # (default: every numeric column; the target is always one of them).
    time_column: str | None = None
    window: WindowConfig = WindowConfig()
    # Subsets, for experiments such as transfer learning: keep only the rows with these labels
    # (before the split), then train on a stratified fraction of the training split (validation
    # and test stay whole).
    classes: list[int | str] | None = Field(None, description="keep only the rows whose label is one of these")
    train_fraction: float = Field(1.0, gt=0, le=1, description="stratified share of the training split to train on")

    @field_validator("classes")
    @classmethod
    def _two_distinct_classes(cls, value: list | None) -> list | None:
        if value is not None and len({str(c) for c in value}) != len(value):
            raise ValueError("classes must not repeat a label")
        if value is not None and len(value) < 2:
            raise ValueError("classes must name at least two labels (a classifier needs two classes)")
        return value

    @field_validator("augment", mode="before")
    @classmethod
    def _augmentations(cls, value: Any) -> Any:
        """Each step by its ``name``; a bare name takes the defaults (``[hflip, rotation]``)."""
        if value is None:
            return ()
        if not isinstance(value, (list, tuple)):
            raise ValueError("augment must be a list such as [{name: hflip, p: 0.5}, {name: rotation, degrees: 15}]")
        steps = [{"name": item} if isinstance(item, str) else item for item in value]
        for step in steps:
            name = step.name if isinstance(step, Augment) else step.get("name") if isinstance(step, dict) else None
            if name not in AUGMENTATIONS:
                raise ValueError(f"unknown augmentation {name!r}; allowed: {', '.join(AUGMENTATIONS)}")
        return steps  # each validated by the class its name picks, errors located as data.augment.<i>.<name>

    @property
    def is_images(self) -> bool:
        return is_image_source(self.source, self.image_column)

    @property
    def modality(self) -> str:
        """tabular, images, text or series: which ``data/`` module prepares this source."""
        return source_modality(self.source, self.image_column, self.text_column, self.time_column)


def is_image_source(source: Any, image_column: Any = None) -> bool:
    """Images come from a folder, a table with ``data.image_column``, or an image built-in."""
    from trainwright.data.builtin import BUILTINS

    if image_column is not None:
        return True
    if not isinstance(source, str):
        return False
    if source in BUILTINS:
        return BUILTINS[source].modality == "images"
    return Path(source).expanduser().is_dir() and not text_folder(source)


def source_modality(source: Any, image_column: Any = None, text_column: Any = None, time_column: Any = None) -> str:
    """A text or time column names the modality; else a built-in's own, a folder (images) or a table."""
    from trainwright.data.builtin import BUILTINS

    if text_column is not None:
        return "text"
    if time_column is not None:
        return "series"
    if isinstance(source, str) and source in BUILTINS and BUILTINS[source].modality in ("text", "series"):
        return BUILTINS[source].modality
    if isinstance(source, str) and text_folder(source):
        return "text"
    return "images" if is_image_source(source, image_column) else "tabular"


def text_folder(source: str) -> bool:
    """A folder whose class sub-folders hold mostly .txt files is a text source, not an image one
    (an image folder with a stray notes.txt stays an image folder, and its skipped files are reported)."""
    path = Path(source).expanduser()
    if not path.is_dir():
        return False
    files = [f for f in path.glob("*/*") if not f.name.startswith(".") and f.is_file()]
    return sum(f.suffix.lower() == ".txt" for f in files) > len(files) / 2


# ── model ───────────────────────────────────────────────────────────────────────────────
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


# ── train ───────────────────────────────────────────────────────────────────────────────
class OptimizerConfig(Frozen):
    name: Literal["sgd", "adam", "adamw", "rmsprop", "adagrad"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> OptimizerConfig:
        if self.nesterov and (self.name != "sgd" or self.momentum == 0):
            raise ValueError("nesterov needs name: sgd and momentum > 0")
        return self


class ScheduleConfig(Frozen):
    name: Literal["none", "step", "exponential", "cosine", "one_cycle", "plateau"] = "none"
    warmup_epochs: int = Field(0, ge=0, description="linear warmup from lr/10 before the schedule")
    step_size: int = Field(10, ge=1, description="step: epochs between decays")
    gamma: float = Field(0.1, gt=0, le=1, description="step/exponential/plateau decay factor")
    patience: int = Field(5, ge=0, description="plateau: epochs without improvement")
    min_lr: float = Field(0.0, ge=0)
    max_lr: float | None = Field(None, gt=0, description="one_cycle peak (default 10 x lr)")

    @model_validator(mode="after")
    def _warmup_compatible(self) -> ScheduleConfig:
        if self.warmup_epochs and self.name in ("plateau", "one_cycle"):
            raise ValueError(f"warmup_epochs cannot be combined with {self.name} (one_cycle warms up itself)")
        return self


class EarlyStoppingConfig(Frozen):
    enabled: bool = True
    monitor: str = "val_loss"
    mode: Literal["auto", "min", "max"] = "auto"
    patience: int = Field(20, ge=1)
    min_delta: float = Field(0.0, ge=0)
    restore_best: bool = True


class TrainConfig(Frozen):
    epochs: int = Field(100, ge=1)
    batch_size: int | Literal["full"] = 64
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    loss: Literal["auto", "mse", "mae", "huber", "bce", "cross_entropy"] = "auto"
    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)
    clip_grad_norm: float | None = Field(None, gt=0)
    clip_grad_value: float | None = Field(None, gt=0)
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    seed: int = 0
    device: str = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="bf16/fp16: autocast; fp16 adds loss scaling")
    compile: bool = Field(False, description="torch.compile the model (the first steps compile it)")
    accumulate: int = Field(1, ge=1, description="batches per optimizer step (gradient accumulation)")
    data_placement: Literal["auto", "device", "stream"] = Field(
        "auto", description="device: training data resident on the device; stream: DataLoader workers, pinned memory, "
        "non-blocking copies; auto: device unless the training data would take over half the GPU's free memory")
    loader_workers: int = Field(2, ge=0, description="DataLoader worker processes when the data is streamed")
    # Transfer learning (model.backbone): the epoch from which frozen backbone layers train too,
    # and their learning rate as a share of optimizer.lr whenever they train.
    unfreeze_at_epoch: int | None = Field(None, ge=2, description="model.backbone only: unfreeze the backbone from this epoch")
    backbone_lr_scale: float = Field(0.1, gt=0, le=1, description="model.backbone only: backbone lr = optimizer.lr x this")

    @field_validator("batch_size", mode="before")
    @classmethod
    def _batch_size(cls, value: Any) -> int | str:
        if value == "full" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        raise ValueError("batch_size must be an integer >= 1 (1 is stochastic) or 'full' (full-batch)")

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value not in ("auto", "cpu", "mps") and not value.startswith("cuda"):
            raise ValueError("device must be auto, cpu, cuda, cuda:N or mps")
        return value


class EvaluateConfig(Frozen):
    batch_size: int = Field(4096, ge=1)
    baseline: bool = Field(True, description="also fit logistic/ridge regression and HistGradientBoosting on the same split")
    gradient_every: int = Field(10, ge=1, description="per-layer gradient norms (gradients.json) on the first optimizer step of each epoch and every Nth after it; 1 = every step")


class CalibrateConfig(Frozen):
    """``calibrate: {method: temperature}`` in a config calibrates as the last stage of train."""

    method: Literal["temperature", "vector", "isotonic"] = "temperature"


# ── the whole run ───────────────────────────────────────────────────────────────────────
class Config(Frozen):
    data: DataConfig
    model: SerializeAsAny[ModelConfig] = Field(default_factory=lambda: _model_config({"type": "mlp"}))
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    calibrate: CalibrateConfig | None = None

    @field_validator("model", mode="before")
    @classmethod
    def _dispatch_model(cls, value: Any) -> ModelConfig:
        return value if isinstance(value, ModelConfig) else _model_config(value)

    @model_validator(mode="after")
    def _unfreeze_needs_a_frozen_backbone(self) -> Config:
        backbone = self.model.backbone
        if self.train.unfreeze_at_epoch is not None and (backbone is None or backbone.freeze in ("none", 0)):
            raise ValueError("train.unfreeze_at_epoch unfreezes a frozen model.backbone; set model.backbone.freeze, or remove train.unfreeze_at_epoch")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as written to the run directory's ``config.yaml``."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _model_config(value: Any) -> ModelConfig:
    """Validate the ``model`` section with the config class its ``type`` names."""
    from trainwright.models.registry import MODELS  # the registry imports model files, which import us

    if not isinstance(value, dict):
        raise ValueError("model must be a mapping such as {type: mlp, hidden: [128, 64]}")
    name = value.get("type", "mlp")
    if name not in MODELS:
        raise ValueError(f"unknown model type {name!r}; available: {', '.join(sorted(MODELS))}")
    return MODELS[name].config.model_validate({**value, "type": name})


# ── loading ─────────────────────────────────────────────────────────────────────────────
def load_config(source: str | Path | dict | Config, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Build a validated Config from a YAML path, a dict or a Config, applying ``key=value`` overrides.

    Built-in data sets contribute their own defaults (e.g. ``linear`` trains one neuron), which
    anything the user writes takes precedence over.
    """
    if isinstance(source, Config):
        raw = source.to_dict()
    elif isinstance(source, dict):
        raw = copy.deepcopy(source)
    else:
        raw = read_yaml(Path(source))
    for item in overrides:
        apply_override(raw, item)
    return validate_config(raw)


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
    from trainwright.data.builtin import BUILTINS

    from trainwright.transfer import with_backbone_architecture

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
    model = raw.get("model") if isinstance(raw.get("model"), dict) else {}
    if model.get("type") in RECURRENT:
        raw = deep_merge(RECURRENT_DEFAULTS, raw)
    try:
        return Config.model_validate(raw)
    except ValidationError as error:
        raise TrainwrightError(describe_validation_error(error)) from None


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


def deep_merge(base: dict, top: dict) -> dict:
    """A new dict with ``top`` laid over ``base``, section by section."""
    merged = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each bad key, its value and what is allowed."""
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown key {key!r} (check its spelling and section)")
        elif item["type"] == "missing":
            hint = ": give data.source, a built-in name (trainwright datasets) or a table path" if key == "data" else ""
            problems.append(f"{key} is required{hint}")
        else:
            problems.append(f"{key} = {item.get('input')!r}: {message}" if key else message)
    return "invalid config: " + "; ".join(problems)
