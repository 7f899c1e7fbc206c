"""Built-in data sets: small tables that ship with scikit-learn, text that ships with Python, and
generated sets (nothing is downloaded).

Each one is a frame of features (or a text column, or a time column and values) plus a target
column. ``config_defaults`` are config keys the data set suggests (``linear`` trains a single
neuron); ``configure.validate_config`` lays the user's own keys over them.

Example:
    >>> frame = BUILTINS["iris"].load()
    >>> frame.shape, BUILTINS["iris"].target
    ((150, 5), 'species')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Builtin:
    name: str
    description: str
    target: str
    task: str  # "binary" | "multiclass" | "regression"
    load: Callable[[], pd.DataFrame]
    config_defaults: dict = field(default_factory=dict)
    modality: str = "tabular"  # "images": the frame holds one image per row (see data/images.py); "text"; "series"
    text_column: str | None = None  # text: the column of raw text
    time_column: str | None = None  # series: the column of times
    gan_defaults: dict = field(default_factory=dict)  # config keys a GAN run (recipe: gan) on this set starts from
    # (under "unconditional": those only a GAN without gan.conditional: true starts from)


# scikit-learn is imported inside the loaders: config.py imports this module, and the CLI
# should not pay for importing scikit-learn just to validate a config.


def _sklearn_frame(loader_name: str, target: str, *, label_names: bool = False, **kwargs) -> pd.DataFrame:
    """A scikit-learn bundled data set as one frame, its target column renamed to ``target``.

    ``label_names`` replaces the integer codes by scikit-learn's class names (``setosa``, ...),
    so predictions read as words rather than codes.
    """
    from sklearn import datasets

    bunch = getattr(datasets, loader_name)(as_frame=True, **kwargs)
    frame = bunch.frame.rename(columns={"target": target})
    if label_names:
        names = [str(name) for name in bunch.target_names]
        frame[target] = [names[code] for code in frame[target]]
    return frame


def _linear() -> pd.DataFrame:
    """Six points on Y = 2X - 1: the smallest problem a single neuron solves exactly."""
    import pandas as pd

    x = [-1.0, 0.0, 1.0, 2.0, 3.0, 4.0]
    return pd.DataFrame({"x": x, "y": [2.0 * value - 1.0 for value in x]})


# With x and y both standardized, y_scaled == x_scaled exactly, so one neuron needs w = 1, b = 0.
# Full-batch gradient descent on the mean squared error contracts the error in w and b by a
# factor (1 - 2 * lr) per step: with lr = 0.1 that is 0.8 ** 300 ~ 1e-29, far inside the
# ±0.05 tolerance at x = 6 for any initial weight. Early stopping is off because all six rows
# are training rows (too few to hold any out).
LINEAR_DEFAULTS = {
    "data": {"preprocess": {"numeric": "standard", "scale_target": True}},
    "model": {"type": "mlp", "hidden": []},
    "train": {
        "batch_size": "full",
        "epochs": 300,
        "optimizer": {"name": "sgd", "lr": 0.1},
        "early_stopping": {"enabled": False},
    },
}


def _digits_images() -> pd.DataFrame:
    """scikit-learn's digits as (8, 8) uint8 arrays (0..16 scaled to 0..255) in an ``image`` column."""
    import numpy as np
    import pandas as pd
    from sklearn import datasets

    bunch = datasets.load_digits()
    pixels = np.rint(bunch.images * (255 / 16)).astype(np.uint8)  # (1797, 8, 8)
    return pd.DataFrame({"image": list(pixels), "digit": bunch.target})


# The images are 8x8 grayscale; keep them so (no upscaling) and read the arrays from "image".
# Small rotations and one-pixel shifts keep a digit a digit; with them the default CNN reaches
# 0.993 test accuracy (split seed 0) against 0.978 without (it overfits 1257 images in 6 epochs).
DIGITS_IMAGES_DEFAULTS = {
    "data": {
        "image_column": "image",
        "image": {"mode": "grayscale", "size": 8},
        "augment": [{"name": "rotation", "degrees": 10}, {"name": "pad_crop", "padding": 1}],
    }
}


def _word_order(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """Generated sentences holding the words "red" and "blue" once each among random filler words;
    the label is which of the two comes first. Every sentence has the same colour words, so a bag
    of words cannot tell the classes apart (about 50%); a sequence model must read the order."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    fillers = ["the", "a", "cat", "sat", "on", "mat", "and", "then", "we", "saw", "big", "small", "dog", "ran", "home", "slowly"]
    texts, labels = [], []
    for _ in range(n):
        words = list(rng.choice(fillers, size=int(rng.integers(4, 9))))
        i, j = sorted(rng.choice(len(words) + 1, size=2, replace=False))
        first, second = ("red", "blue") if rng.random() < 0.5 else ("blue", "red")
        words.insert(j, second)
        words.insert(i, first)
        texts.append(" ".join(words))
        labels.append(f"{first} first")
    return pd.DataFrame({"text": texts, "label": labels})


def _seasonal(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """Hourly load: a daily cycle (period 24) on a slow upward trend, with Gaussian noise."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    t = np.arange(n)
    load = 20 + 0.004 * t + 4 * np.sin(2 * np.pi * t / 24) + 1.5 * np.sin(2 * np.pi * t / 12 + 1) + rng.normal(0, 0.4, n)
    return pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=n, freq="h"), "load": load.round(4)})


# Topics of the standard library, by the modules whose documentation belongs to them.
PYTHON_DOCS_TOPICS = {
    "text": ["string", "re", "textwrap", "difflib", "unicodedata", "codecs", "html", "html.parser", "str"],
    "files": ["os", "os.path", "shutil", "pathlib", "glob", "tempfile", "filecmp", "zipfile", "tarfile", "io"],
    "numbers": ["math", "cmath", "statistics", "fractions", "decimal", "random", "numbers", "float", "int"],
    "network": [
        "socket",
        "ssl",
        "http.client",
        "http.server",
        "urllib.request",
        "urllib.parse",
        "smtplib",
        "ftplib",
        "email.message",
    ],
    "concurrency": ["threading", "multiprocessing", "queue", "asyncio", "concurrent.futures", "sched", "subprocess"],
}


def _python_docs() -> pd.DataFrame:
    """Real English text that ships with Python: the first paragraph of the docstring of every public
    function, class and method of the modules in ``PYTHON_DOCS_TOPICS``, labelled by the topic of its
    module. Nothing is downloaded; the exact rows depend on the Python version."""
    import builtins
    import importlib
    import inspect

    import pandas as pd

    rows, seen = [], set()
    for topic, modules in PYTHON_DOCS_TOPICS.items():
        for module_name in modules:
            module = getattr(builtins, module_name) if hasattr(builtins, module_name) else importlib.import_module(module_name)
            # Sub-modules are left out: whether a package holds one depends on what was imported before.
            members = [module] + [getattr(module, n) for n in sorted(dir(module)) if not n.startswith("_")]
            for member in members:
                parts = [member] + (
                    [getattr(member, n) for n in sorted(vars(member)) if not n.startswith("_")] if inspect.isclass(member) else []
                )
                for item in parts:
                    doc = inspect.getdoc(item) if callable(item) or item is module else None
                    text = " ".join((doc or "").split("\n\n")[0].split())
                    if len(text) >= 20 and text not in seen:
                        seen.add(text)
                        rows.append((text, topic))
    return pd.DataFrame(rows, columns=["text", "topic"])


def _mixture(name: str, n: int = 100_000, seed: int = 0) -> pd.DataFrame:
    """``n`` points of a built-in 2-D Gaussian mixture (``data/mixtures.py``) and the mode each was drawn
    from; 100,000 as in PacGAN's protocol."""
    import pandas as pd

    from trainwright.data.mixtures import MIXTURES

    points, modes = MIXTURES[name].labelled(n, seed=seed)
    return pd.DataFrame({"x": points[:, 0].numpy(), "y": points[:, 1].numpy(), "mode": modes.numpy()})


# A GAN (recipe: gan) on these sets starts from the batch and steps benchmarks/gan_quality.py measured (README, "GANs").
MIXTURE_GAN_DEFAULTS = {"train": {"batch_size": 256}}
# The grid: 100,000 generator steps (the high-quality share keeps rising with them: seed 0's generator alone 51.6%
# after 10,000, 75.4% after 30,000, 91.6% after 100,000; PacGAN trains 400,000), torch's default init for the MLPs
# (see models/gan.py's MLP_INIT_NOTE) and discriminator rejection sampling of the kept generator's samples
# (config/gan.py's GANSampleConfig); measured in benchmarks/gan_quality.py (README, "GANs").
GRID_GAN_DEFAULTS = {"train": {"batch_size": 256, "steps": 100_000},
                     "gan": {"mlp_init": "torch", "sample": {"rejection": True}}}
# Unconditional (the "unconditional" keys apply only without gan.conditional: true): PacGAN's packs of 2 and an
# evaluation every 250 steps to keep the generator by, measured in the README's GANs section (smallest class 5.3%
# of the samples against 3.4% with neither).
DIGITS_IMAGES_GAN_DEFAULTS = {
    "train": {"steps": 2000},
    "unconditional": {"gan": {"pack": 2, "evaluate": {"every_steps": 250}}},
}

WORD_ORDER_DEFAULTS = {"data": {"tokenizer": {"kind": "bpe", "vocab_size": 128}}}
PYTHON_DOCS_DEFAULTS = {"data": {"tokenizer": {"max_length": 48}}}
SEASONAL_DEFAULTS = {"data": {"window": {"lookback": 48, "horizon": 12, "stride": 1}}}

BUILTINS: dict[str, Builtin] = {
    builtin.name: builtin
    for builtin in [
        Builtin(
            "digits",
            "8x8 images of handwritten digits as 64 pixel intensities (0-16); 1797 rows, 10 classes",
            "digit",
            "multiclass",
            lambda: _sklearn_frame("load_digits", "digit"),
        ),
        Builtin(
            "digits-images",
            "the same digits as 1x8x8 grayscale images, for convolutional networks; 1797 images, 10 classes",
            "digit",
            "multiclass",
            _digits_images,
            DIGITS_IMAGES_DEFAULTS,
            modality="images",
            gan_defaults=DIGITS_IMAGES_GAN_DEFAULTS,
        ),
        Builtin(
            "iris",
            "sepal and petal measurements of three iris species; 150 rows, 3 classes",
            "species",
            "multiclass",
            lambda: _sklearn_frame("load_iris", "species", label_names=True),
        ),
        Builtin(
            "wine",
            "chemical analysis of wines from three cultivars (0, 1, 2); 178 rows, 13 features",
            "cultivar",
            "multiclass",
            lambda: _sklearn_frame("load_wine", "cultivar"),
        ),
        Builtin(
            "breast_cancer",
            "cell-nucleus measurements, malignant or benign; 569 rows, 30 features",
            "diagnosis",
            "binary",
            lambda: _sklearn_frame("load_breast_cancer", "diagnosis", label_names=True),
        ),
        Builtin(
            # Raw units (age in years, sex as 1/2, ...), not scikit-learn's pre-scaled copy:
            # our preprocessor scales on the training split itself, and raw units read better.
            "diabetes",
            "disease progression one year after baseline from 10 patient measurements; 442 rows",
            "progression",
            "regression",
            lambda: _sklearn_frame("load_diabetes", "progression", scaled=False),
        ),
        Builtin(
            "linear",
            "six points of y = 2x - 1 (x = -1..4); trains one neuron that predicts 11 at x = 6",
            "y",
            "regression",
            _linear,
            LINEAR_DEFAULTS,
        ),
        Builtin(
            "word-order",
            "generated sentences labelled by whether 'red' or 'blue' comes first: only word order tells; 1200 texts",
            "label",
            "binary",
            _word_order,
            WORD_ORDER_DEFAULTS,
            modality="text",
            text_column="text",
        ),
        Builtin(
            "python-docs",
            "docstrings of the Python standard library (real text shipped with Python) labelled by topic; 5 classes",
            "topic",
            "multiclass",
            _python_docs,
            PYTHON_DOCS_DEFAULTS,
            modality="text",
            text_column="text",
        ),
        Builtin(
            "ring",
            "8 Gaussians on a circle of radius 1, std 0.01 (PacGAN's mode-collapse benchmark); 100,000 2-D points",
            "mode",
            "multiclass",
            lambda: _mixture("ring"),
            gan_defaults=MIXTURE_GAN_DEFAULTS,
        ),
        Builtin(
            "grid",
            "25 Gaussians at {-4,-2,0,2,4}^2, std 0.05 (PacGAN's mode-collapse benchmark); 100,000 2-D points",
            "mode",
            "multiclass",
            lambda: _mixture("grid"),
            gan_defaults=GRID_GAN_DEFAULTS,
        ),
        Builtin(
            "seasonal",
            "generated hourly load: daily cycle on a trend with noise; 1500 rows, forecast 12 hours from 48",
            "load",
            "regression",
            _seasonal,
            SEASONAL_DEFAULTS,
            modality="series",
            time_column="timestamp",
        ),
    ]
}
