"""One image file -> one (C, H, W) uint8 array: modes, resize policies, and every kind of bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainwright.data.decode import ImageCache, ImageSpec, Skip, decode_count, decode_image, probe

RGB8 = ImageSpec("rgb", (8, 8), "stretch", max_pixels=1_000_000)
GRAY8 = ImageSpec("grayscale", (8, 8), "stretch", max_pixels=1_000_000)


def save(tmp_path: Path, image: Image.Image, name: str) -> Path:
    path = tmp_path / name
    image.save(path)
    return path


def test_rgb_and_grayscale_become_one_mode(tmp_path):
    red = save(tmp_path, Image.new("RGB", (8, 8), (255, 0, 0)), "red.png")
    gray = save(tmp_path, Image.new("L", (8, 8), 100), "gray.jpg")
    assert decode_image(red, RGB8).shape == (3, 8, 8) and decode_image(red, RGB8)[:, 0, 0].tolist() == [255, 0, 0]
    assert decode_image(red, GRAY8).shape == (1, 8, 8)
    assert decode_image(gray, RGB8).shape == (3, 8, 8)  # gray replicated into three channels
    assert abs(int(decode_image(gray, GRAY8)[0, 4, 4]) - 100) <= 2  # JPEG is lossy, barely


def test_palette_alpha_and_16_bit_images(tmp_path):
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    assert decode_image(save(tmp_path, palette, "p.png"), RGB8)[:, 0, 0].tolist() == [0, 255, 0]
    # Fully transparent pixels are laid over white, whatever colour they hold.
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert decode_image(save(tmp_path, clear, "clear.png"), RGB8)[:, 0, 0].tolist() == [255, 255, 255]
    # 16-bit grayscale is scaled to 8 bits (Pillow's own conversion would clip at 255).
    deep = Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16))
    path = save(tmp_path, deep, "deep.png")
    assert Image.open(path).mode.startswith("I")
    assert int(decode_image(path, GRAY8)[0, 0, 0]) == 128


@pytest.mark.parametrize(("policy", "expected"), [("stretch", (0, 255)), ("crop", (255, 255)), ("pad", (255, 255))])
def test_resize_policies_on_a_wide_image(tmp_path, policy, expected):
    # 16x8: black left half, white right half... cropping keeps the centre, padding adds white bars.
    pixels = np.zeros((8, 16), dtype=np.uint8)
    pixels[:, 8:] = 255
    path = save(tmp_path, Image.fromarray(pixels), "wide.png")
    out = decode_image(path, ImageSpec("grayscale", (8, 8), policy, 1_000_000))  # type: ignore[arg-type]
    assert out.shape == (1, 8, 8)
    corners = (int(out[0, 4, 0]), int(out[0, 4, 7]))
    if policy == "stretch":
        assert corners == expected  # the whole width squeezed in: still black left, white right
    elif policy == "crop":
        assert int(out[0, 4, 0]) < 64 and corners[1] == 255  # the centre 8x8: half black, half white
    else:
        assert int(out[0, 0, 4]) == 255 and int(out[0, 4, 0]) < 64  # white bars above and below


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((4, 8), dtype=np.uint8)  # stored 8 wide, 4 high
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees to display"
    path = tmp_path / "turned.jpg"
    image.save(path, exif=exif.tobytes())
    spec = ImageSpec("grayscale", (8, 4), "stretch", 1_000_000)  # (H, W): displayed 4 wide, 8 high
    assert probe(path, 1_000_000).size == (4, 8)  # the header's stored size
    assert decode_image(path, spec).shape == (1, 8, 4)


def _png_bytes(tmp_path: Path) -> bytes:
    rng = np.random.default_rng(0)
    return save(tmp_path, Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)), "ok.png").read_bytes()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p, good: b"", "empty file"),
        (lambda p, good: b"just some notes\n", "not an image"),
        (lambda p, good: good[:60] + b"\x00" * 40, "corrupt"),
    ],
    ids=["zero-byte", "not-an-image", "corrupt-header"],
)
def test_bad_files_are_skipped_with_a_reason(tmp_path, make, reason):
    path = tmp_path / "bad.png"
    path.write_bytes(make(tmp_path, _png_bytes(tmp_path)))
    with pytest.raises(Skip) as info:
        probe(path, 1_000_000)
        decode_image(path, RGB8)
    assert info.value.reason.startswith(reason)


def test_truncated_file_passes_the_header_but_fails_to_decode(tmp_path):
    good = _png_bytes(tmp_path)
    path = tmp_path / "cut.png"
    path.write_bytes(good[: len(good) // 2])
    assert probe(path, 1_000_000).size == (64, 64)
    with pytest.raises(Skip, match="corrupt or truncated"):
        decode_image(path, RGB8)


def test_decompression_bomb_guard_never_decodes(tmp_path):
    # 2000x2000 zeros compress to a few kB but decode to 4 million pixels.
    path = save(tmp_path, Image.new("L", (2000, 2000)), "bomb.png")
    assert path.stat().st_size < 50_000
    before = decode_count()
    with pytest.raises(Skip, match="too large"):
        probe(path, max_pixels=1_000_000)
    with pytest.raises(Skip, match="too large"):
        decode_image(path, ImageSpec("rgb", (8, 8), "crop", max_pixels=1_000_000))
    assert decode_count() == before
    with pytest.raises(Skip, match="missing"):
        probe(tmp_path / "absent.png", 1_000_000)


def test_arrays_decode_like_files():
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8)
    assert np.array_equal(decode_image(pixels, GRAY8)[0], pixels)
    assert probe(pixels, 100).mode == "L"
    with pytest.raises(Skip, match="unsupported array"):
        probe(pixels.astype(np.float32), 100)


@pytest.mark.parametrize("where", ["memory", "disk"])
def test_cache_counts_decodes_and_gives_views(where):
    cache = ImageCache(3, (1, 2, 2), where)
    assert cache.where == where
    before = decode_count()
    for i in range(3):
        cache.put(i, np.full((1, 2, 2), i, dtype=np.uint8))
    assert cache.decoded == 3 and decode_count() == before + 3
    view = cache.tensor(1, 3)
    assert view.tolist() == [[[[1, 1], [1, 1]]], [[[2, 2], [2, 2]]]]
    cache.array[2] = 7  # a view, not a copy
    assert int(view[1, 0, 0, 0]) == 7
