"""One image (a file or an array) -> one (C, H, W) uint8 array, and the cache that holds them.

Decoding is Pillow's; what is done here is what Pillow leaves to the caller: refuse files that
are empty, not images, truncated or too large to decode safely (a decompression bomb: a small
file that expands to gigapixels), apply the EXIF orientation, bring palette, alpha, 16-bit and
float images to one mode, and resize with a fixed policy. Every refusal is a ``Skip`` with a
short reason, which the caller counts; nothing here raises for a bad file.

Example:
    >>> spec = ImageSpec("rgb", (32, 32), "crop", max_pixels=50_000_000)
    >>> decode_image(Path("cat.jpg"), spec).shape
    (3, 32, 32)
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image, ImageOps

if TYPE_CHECKING:
    import torch

Source = Path | np.ndarray  # a file, or pixels already in memory (H, W[, C]) uint8

# Modes Pillow reports for single-channel images; "auto" mode picks grayscale when every image has one.
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
# Transparent pixels are laid over white before the alpha channel is dropped, in training and
# prediction alike, so a transparent background always reads the same.
BACKGROUND = (255, 255, 255, 255)


class Skip(Exception):
    """This source cannot be used; ``reason`` says why in a few words (it is counted, not raised further)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ImageSpec:
    """What every decoded image is brought to."""

    mode: Literal["rgb", "grayscale"]
    size: tuple[int, int]  # (H, W)
    resize: Literal["crop", "pad", "stretch"]
    max_pixels: int

    @property
    def channels(self) -> int:
        return 3 if self.mode == "rgb" else 1


@dataclass(frozen=True)
class Probe:
    """What the header says, without decoding the pixels."""

    size: tuple[int, int]  # (H, W) as stored
    mode: str  # Pillow's mode: "RGB", "L", "P", "I;16", ...
    format: str  # "PNG", "JPEG", ... or "array"
    digest: str  # hash of the file's bytes: identical files are duplicates


# ── opening ────────────────────────────────────────────────────────────────────────────────
def _open(fp: str | Path | io.BytesIO, max_pixels: int) -> Image.Image:
    """Open (header only) and check the pixel count before anything is decoded."""
    try:
        image = Image.open(fp)
    except Image.UnidentifiedImageError:
        raise Skip("not an image") from None
    except Image.DecompressionBombError:
        raise Skip("too large") from None
    except Exception:  # noqa: BLE001 - Pillow's decoders raise many types on malformed headers
        raise Skip("corrupt") from None
    width, height = image.size
    if width * height > max_pixels or width < 1 or height < 1:
        image.close()
        raise Skip("too large" if width * height > max_pixels else "corrupt")
    return image


def _array_image(array: np.ndarray) -> Image.Image:
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise Skip("unsupported array (expected uint8 (H, W) or (H, W, 1|3|4))")
    return Image.fromarray(array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array)


def probe(source: Source, max_pixels: int) -> Probe:
    """Size, mode and content hash of one source, reading only the header's pixels count.

    Raises ``Skip`` for a missing, empty, non-image, corrupt or too large file.
    """
    if isinstance(source, np.ndarray):
        image = _array_image(source)
        digest = hashlib.blake2b(np.ascontiguousarray(source).tobytes() + str(source.shape).encode(), digest_size=16)
        return Probe((image.height, image.width), image.mode, "array", digest.hexdigest())
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        raise Skip("missing") from None
    except OSError:
        raise Skip("unreadable") from None
    if not data:
        raise Skip("empty file")
    with _open(io.BytesIO(data), max_pixels) as image:
        return Probe(
            (image.height, image.width), image.mode, image.format or "?", hashlib.blake2b(data, digest_size=16).hexdigest()
        )


# ── decoding ───────────────────────────────────────────────────────────────────────────────
def _to_mode(image: Image.Image, mode: str) -> Image.Image:
    """Any Pillow mode -> "RGB" or "L" (8 bits per channel)."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        # 16-bit pixels: Pillow's own convert("L") clips at 255 instead of scaling, so scale here.
        values = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(values / 257.0, 0, 255).round().astype(np.uint8))
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scale = 255.0 if np.nanmax(values, initial=0.0) <= 1.0 else 1.0  # 0..1 floats, else already 0..255
        image = Image.fromarray(np.clip(np.nan_to_num(values * scale), 0, 255).round().astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA")  # a palette may carry transparency
    if image.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        background = Image.new("RGBA", image.size, BACKGROUND)
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB" if mode == "rgb" else "L")


def _resize(image: Image.Image, size: tuple[int, int], policy: str) -> Image.Image:
    height, width = size
    if image.size == (width, height):
        return image
    method = Image.Resampling.BILINEAR  # antialiased when shrinking (Pillow widens the filter)
    if policy == "crop":
        return ImageOps.fit(image, (width, height), method=method)
    if policy == "pad":
        fill = BACKGROUND[:3] if image.mode == "RGB" else BACKGROUND[0]
        return ImageOps.pad(image, (width, height), method=method, color=fill)
    return image.resize((width, height), method)


def decode_image(source: Source, spec: ImageSpec) -> np.ndarray:
    """Decode, orient, convert and resize one image: uint8 (C, H, W). Raises ``Skip`` if it cannot."""
    height, width = spec.size
    try:
        if isinstance(source, np.ndarray):
            image = _array_image(source)
        else:
            image = _open(source, spec.max_pixels)
        with image:
            if image.format == "JPEG":
                # Decode at 1/2, 1/4 or 1/8 scale when that still covers the target size: much faster.
                image.draft("RGB" if spec.mode == "rgb" else "L", (width, height))
            image = ImageOps.exif_transpose(image)  # phones store rotated pixels plus an orientation tag
            image = _resize(_to_mode(image, spec.mode), spec.size, spec.resize)
            pixels = np.asarray(image, dtype=np.uint8)  # (H, W) or (H, W, 3)
    except Skip:
        raise
    except FileNotFoundError:
        raise Skip("missing") from None
    except Exception:  # noqa: BLE001 - truncated or malformed data fails inside Pillow's decoders in many ways
        raise Skip("corrupt or truncated") from None
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def parallel_map(function: Callable, items: Iterable, workers: int | None = None) -> Iterator:
    """``map`` over threads, results in order. Pillow releases the GIL while decoding."""
    workers = workers or min(8, os.cpu_count() or 1)
    if workers == 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(workers) as pool:
        yield from pool.map(function, items, chunksize=64)


def _or_skip(function: Callable, item) -> object:
    try:
        return function(item)
    except Skip as skip:
        return skip


def map_or_skip(function: Callable, items: Iterable) -> Iterator:
    """``parallel_map`` where a ``Skip`` is returned in the item's place instead of raised."""
    return parallel_map(lambda item: _or_skip(function, item), items)


# ── the cache ──────────────────────────────────────────────────────────────────────────────
_decoded_total = 0
_lock = threading.Lock()


def decode_count() -> int:
    """Images decoded in this process so far (every ``ImageCache.put`` and prediction input).

    A counter, not a timer: a training epoch that reads the cache leaves it unchanged.
    """
    return _decoded_total


def count_decoded(n: int = 1) -> None:
    global _decoded_total
    with _lock:
        _decoded_total += n


def available_memory() -> int:
    """Bytes of memory free now (Linux, macOS); 4 GiB where the system does not say."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


class ImageCache:
    """Decoded images, uint8 (N, C, H, W), in memory or in a memory-mapped temporary file.

    Images are decoded once, into it; every epoch after reads tensors that are views of it.
    ``decoded`` counts the images written. ``where``: ``memory``, ``disk``, or ``auto`` (memory
    when the images take at most a quarter of the memory free now, else disk).

    Example:
        >>> cache = ImageCache(100, (3, 32, 32), "auto")
        >>> cache.put(0, decode_image(Path("cat.png"), spec)); cache.decoded
        1
    """

    def __init__(self, n: int, shape: tuple[int, int, int], where: str = "auto"):
        self.shape = (n, *shape)
        self.nbytes = int(np.prod(self.shape))
        if where == "auto":
            where = "memory" if self.nbytes <= available_memory() // 4 else "disk"
        self.where = where
        self.decoded = 0
        if where == "memory":
            self.array = np.empty(self.shape, dtype=np.uint8)
        else:
            with tempfile.NamedTemporaryFile(prefix="trainwright-images-", suffix=".u8", delete=False) as handle:
                pass
            self.array = np.memmap(handle.name, dtype=np.uint8, mode="w+", shape=self.shape)
            try:
                os.unlink(handle.name)  # POSIX keeps the mapped data until it is unmapped: nothing left behind
            except OSError:  # pragma: no cover - Windows: removed when the process ends
                pass

    def put(self, index: int, image: np.ndarray) -> None:
        self.array[index] = image
        self.decoded += 1
        count_decoded()

    def tensor(self, start: int, stop: int) -> torch.Tensor:
        """Images ``start:stop`` as a tensor sharing the cache's memory (no copy)."""
        import torch  # lazy, a heavy dependency: predicting from an export decodes images without torch

        return torch.from_numpy(self.array[start:stop])
