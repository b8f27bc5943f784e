"""Pillow's formats: its modes to channels and depths, palettes, the colour key."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageOps

from convcli.images.pillow_reading import keyed
from convcli.images.reading import read_image


def pil_save(tmp_path, name, image, **options):
    path = tmp_path / name
    image.save(path, **options)
    return str(path)


@pytest.mark.parametrize(
    ("mode", "channels", "alpha"),
    [
        ("1", 1, False),
        ("L", 1, False),
        ("LA", 2, True),
        ("RGB", 3, False),
        ("RGBA", 4, True),
        ("CMYK", 3, False),
        ("YCbCr", 3, False),
    ],
)
def test_modes(tmp_path, mode, channels, alpha):
    image = PILImage.new(mode, (7, 5))
    name = "x.jpg" if mode in ("CMYK", "YCbCr") else "x.png" if mode != "1" else "x.bmp"
    img = read_image(pil_save(tmp_path, name, image))
    assert img.pixels.shape == (1, channels, 5, 7) and img.pixels.dtype == np.float32
    assert img.has_alpha is alpha and img.depth == 8


def test_palette_with_and_without_transparency(tmp_path):
    p = PILImage.new("P", (4, 4))
    p.putpalette([0, 0, 0, 255, 0, 0] * 128)
    assert read_image(pil_save(tmp_path, "p.png", p)).pixels.shape[1] == 3
    assert read_image(pil_save(tmp_path, "t.png", p, transparency=0)).pixels.shape[1] == 4


def test_eight_bit_values_are_scaled_by_255(tmp_path):
    image = PILImage.fromarray(np.array([[0, 51, 255]], np.uint8))
    np.testing.assert_allclose(
        read_image(pil_save(tmp_path, "g.png", image)).pixels[0, 0, 0], [0, 0.2, 1]
    )


def test_a_colour_key_becomes_alpha_only_for_its_colour_count():
    rgb = np.array([[[1, 2, 3], [4, 5, 6]]], np.uint16)
    assert keyed(rgb, (4, 5, 6)).tolist() == [[[1, 2, 3, 65535], [4, 5, 6, 0]]]
    assert keyed(rgb, (4,)) is rgb and keyed(rgb, None) is rgb


def pillow_pixels(path: str, mode: str) -> np.ndarray:
    """Pillow's own decode, upright and in ``mode``, as (1, C, H, W) float32 / 255."""
    with PILImage.open(path) as image:
        values = np.asarray(ImageOps.exif_transpose(image).convert(mode), np.float32)
    planes = values[..., None] if values.ndim == 2 else values
    return (planes / np.float32(255)).transpose(2, 0, 1)[None]


def _upright_rgb(tmp_path, name: str, **options) -> str:
    image = PILImage.fromarray(np.random.default_rng(5).integers(0, 256, (9, 13, 3), np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6  # turned: the file's pixels are stored sideways
    return pil_save(tmp_path, name, image, exif=exif, **options)


def _palette(tmp_path, name: str, **options) -> str:
    image = PILImage.fromarray(np.random.default_rng(6).integers(0, 16, (9, 13), np.uint8), "P")
    image.putpalette(np.random.default_rng(7).integers(0, 256, 48).tolist())
    return pil_save(tmp_path, name, image, **options)


def _random(tmp_path, name: str, shape, mode: str, **options) -> str:
    values = np.random.default_rng(8).integers(1, 256, shape, np.uint8)  # alpha never 0
    return pil_save(tmp_path, name, PILImage.fromarray(values, mode), **options)


@pytest.mark.parametrize(
    ("make", "mode"),
    [
        (lambda t: _random(t, "g.bmp", (9, 13), "L"), "L"),
        (lambda t: _random(t, "c.bmp", (9, 13, 3), "RGB"), "RGB"),
        (lambda t: _random(t, "a.bmp", (9, 13, 4), "RGBA"), "RGB"),  # BMP keeps no alpha
        (lambda t: _random(t, "la.png", (9, 13, 2), "LA"), "LA"),
        (lambda t: _palette(t, "p.png"), "RGB"),
        (lambda t: _palette(t, "t.png", transparency=3), "RGBA"),
        (lambda t: _palette(t, "p.gif"), "RGB"),
        (lambda t: _palette(t, "p.bmp"), "RGB"),
        (lambda t: _random(t, "c.webp", (9, 13, 3), "RGB", lossless=True), "RGB"),
        (lambda t: _random(t, "a.webp", (9, 13, 4), "RGBA", lossless=True), "RGBA"),
        (lambda t: _random(t, "c.tga", (9, 13, 3), "RGB"), "RGB"),
        (lambda t: _random(t, "g.pgm", (9, 13), "L"), "L"),
        (lambda t: _random(t, "c.ppm", (9, 13, 3), "RGB"), "RGB"),
        (lambda t: pil_save(t, "b.bmp", PILImage.new("1", (13, 9), 1)), "L"),
        (lambda t: _upright_rgb(t, "turned.webp", lossless=True), "RGB"),
        (lambda t: _upright_rgb(t, "turned.png"), "RGB"),
    ],
)
def test_pillow_decodes_keep_their_integers_and_pixels(tmp_path, make, mode):
    path = make(tmp_path)
    img = read_image(path)
    assert img.stored is not None and img.stored.top == 255 and img.depth == 8
    assert img.stored.values.dtype == np.uint8
    np.testing.assert_array_equal(img.pixels, pillow_pixels(path, mode), strict=True)


def test_sixteen_bit_gray_png_keeps_its_integers(tmp_path):
    values = np.random.default_rng(9).integers(0, 65536, (9, 13), np.uint16)
    path = pil_save(tmp_path, "g16.png", PILImage.fromarray(values))
    img = read_image(path)
    assert img.stored is not None and img.stored.top == 65535 and img.depth == 16
    expected = (values.astype(np.float32) / np.float32(65535))[None, None]
    np.testing.assert_array_equal(img.pixels, expected, strict=True)


def test_many_frames_stay_floats(tmp_path):
    frames = [PILImage.new("L", (6, 4), shade) for shade in (0, 128, 255)]
    path = str(tmp_path / "anim.gif")
    frames[0].save(path, save_all=True, append_images=frames[1:])
    img = read_image(path)
    assert img.stored is None and img.pixels.shape == (3, 3, 4, 6)
    np.testing.assert_array_equal(img.pixels[:, 0, 0, 0], np.float32([0, 128, 255]) / 255)
