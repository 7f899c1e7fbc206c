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
from typing import Any, Literal

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


class DataConfig(Frozen):
    source: str = Field(description="a built-in data set name or a path to a CSV/Parquet/JSONL table")
    target: str | None = None
    task: Literal["auto", "binary", "multiclass", "regression"] = "auto"
    features: list[str] | None = None
    drop_columns: list[str] = []
    clean: CleanConfig = CleanConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    split: SplitConfig = SplitConfig()


# ── model ───────────────────────────────────────────────────────────────────────────────
class ModelConfig(Frozen):
    """Base of every model family's config; ``type`` picks the family in the registry."""

    type: str


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


# ── the whole run ───────────────────────────────────────────────────────────────────────
class Config(Frozen):
    data: DataConfig
    model: SerializeAsAny[ModelConfig] = Field(default_factory=lambda: _model_config({"type": "mlp"}))
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()

    @field_validator("model", mode="before")
    @classmethod
    def _dispatch_model(cls, value: Any) -> ModelConfig:
        return value if isinstance(value, ModelConfig) else _model_config(value)

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


def validate_config(raw: dict) -> Config:
    from trainwright.data.builtin import BUILTINS

    source = (raw.get("data") or {}).get("source") if isinstance(raw.get("data"), dict) else None
    if isinstance(source, str) and source in BUILTINS:
        raw = deep_merge(BUILTINS[source].config_defaults, raw)
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
