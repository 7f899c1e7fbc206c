"""The ``data`` section: where the data come from and how they are cleaned, split and preprocessed.

Which modality a source is (a table, images, text or a series) is decided by the data layer
(``data/modality.py``), which may look at the disk; this schema never does.
"""

from __future__ import annotations

import codecs
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from trainwright.config.base import Frozen


class SplitConfig(Frozen):
    train: float = Field(0.70, gt=0, lt=1)
    val: float = Field(0.15, ge=0, lt=1)
    test: float = Field(0.15, ge=0, lt=1)
    stratify: bool = True
    seed: int = 0
    # Rows sharing this column's value stay on one side of every cross-validation fold (cv, tune).
    groups: str | None = Field(None, description="a column whose groups (e.g. patients) cv folds never split")

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> SplitConfig:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must be 1.0, got {total:g}")
        return self


class CleanConfig(Frozen):
    # Rows identical to another row. group: keep them, each set of identical rows on one side of the
    # split (copies cannot leak into the test split); keep: keep them and split as usual (repeated
    # observations); drop: keep the first of each set. auto: group when a feature column is
    # continuous (an exact copy of a measured row is no coincidence), keep when every feature takes
    # few values (identical rows are then what such data look like).
    duplicates: Literal["auto", "group", "keep", "drop"] = "auto"
    drop_constant: bool = True
    drop_identifiers: bool = Field(True, description="drop identifier-like columns (unique text, integer ids)")
    # Rows with missing feature values: impute them (fit on train) or drop them.
    missing: Literal["impute", "drop"] = "impute"
    impute_numeric: Literal["mean", "median", "most_frequent"] = "median"
    max_missing: float = Field(0.8, ge=0, le=1, description="drop feature columns missing in more than this share of rows")
    missing_indicator: float = Field(
        0.1, ge=0, le=1, description="columns missing in at least this share of rows get an indicator (numbers) "
        "or a 'missing' category (categories)")
    max_dropped: float = Field(0.5, ge=0, le=1, description="cleaning that removes more than this share of the rows is an error")

    @model_validator(mode="before")
    @classmethod
    def _drop_duplicates(cls, value: Any) -> Any:
        """``drop_duplicates: true | false`` (older configs) is ``duplicates: drop | auto``."""
        if isinstance(value, dict) and "drop_duplicates" in value:
            value = dict(value)
            drop = value.pop("drop_duplicates")
            if not isinstance(drop, bool):
                raise ValueError("drop_duplicates must be true or false (or use duplicates: auto | group | keep | drop)")
            value.setdefault("duplicates", "drop" if drop else "auto")
        return value


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
    # The seasonal-naive baseline's period in rows (and MASE's); auto: searched over the training part
    # (peaks of its autocorrelation), preferring the season the calendar suggests: 12 for monthly rows,
    # 4 quarterly, 52 weekly, 7 daily, 24 hourly. Independent of the lookback.
    season: int | Literal["auto"] = Field("auto", description="rows per season, or auto")

    @field_validator("season")
    @classmethod
    def _season_at_least_two(cls, value: Any) -> Any:
        if isinstance(value, int) and value < 2:
            raise ValueError("season must be auto or a number of rows >= 2")
        return value


class SeriesConfig(Frozen):
    """Repairs a series may need, each counted and printed (``data/series.py``)."""

    # Missing values (and, with a calendar frequency, missing times: their rows are added first):
    # none: an error that names them; interpolate: straight lines between the neighbours (it uses the
    # next known value too); ffill: repeat the last known value (only the past).
    fill: Literal["none", "interpolate", "ffill"] = "none"


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


AugmentStep = Annotated[
    HFlip | VFlip | Rotation | ResizedCrop | PadCrop | ColorJitter | Noise | Cutout, Field(discriminator="name")
]
AUGMENTATIONS: dict[str, type[Augment]] = {cls.model_fields["name"].default: cls for cls in get_args(get_args(AugmentStep)[0])}


class DataConfig(Frozen):
    source: str = Field(description="a built-in data set name, a path to a CSV/Parquet/JSONL table, or a folder of images")
    # Text files (CSV/TSV tables, .txt texts): a byte-order mark wins; else auto = UTF-8, or a codec such as latin-1.
    encoding: str = Field("auto", description="auto (UTF-8, or what a byte-order mark says) or a Python codec: latin-1, cp1252")
    target: str | None = None
    delimiter: str | None = Field(None, min_length=1, description="a CSV/TSV file's delimiter, e.g. ';' (default: by suffix)")
    task: Literal["auto", "binary", "multiclass", "regression"] = "auto"
    features: list[str] | None = None
    drop_columns: list[str] = Field(default_factory=list)
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
    series: SeriesConfig = SeriesConfig()
    # Subsets, for experiments such as transfer learning: keep only the rows with these labels
    # (before the split), then train on a stratified fraction of the training split (validation
    # and test stay whole).
    classes: list[int | str] | None = Field(None, description="keep only the rows whose label is one of these")
    train_fraction: float = Field(1.0, gt=0, le=1, description="stratified share of the training split to train on")

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        if value != "auto":
            try:
                codecs.lookup(value)
            except LookupError:
                raise ValueError("encoding must be auto or a codec Python knows: utf-8, latin-1, cp1252, utf-16, ...") from None
        return value

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
            raise ValueError("augment must be a list such as [{name: hflip, p: 0.5}, {name: rotation, degrees: 15}]")  # noqa: TRY004 - pydantic reports ValueErrors
        steps = [{"name": item} if isinstance(item, str) else item for item in value]
        for step in steps:
            name = step.name if isinstance(step, Augment) else step.get("name") if isinstance(step, dict) else None
            if name not in AUGMENTATIONS:
                raise ValueError(f"unknown augmentation {name!r}; allowed: {', '.join(AUGMENTATIONS)}")
        return steps  # each validated by the class its name picks, errors located as data.augment.<i>.<name>
