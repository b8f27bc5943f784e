"""Pillow's formats: its modes to channels and depths, palettes, the colour key."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

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
