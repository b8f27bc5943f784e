"""raster.py: one decodable frame per output position (or the cap), small files, and the
window painted where the layout puts it in every frame."""

from __future__ import annotations

import io

import numpy as np
import pytest

from convcli.conv.geometry import conv2d_geometry, conv_transpose2d_geometry
from convcli.shapes import raster
from convcli.shapes.diagram import build_diagram, numbers_for
from convcli.shapes.layout import Layout, Rect

Image = pytest.importorskip("PIL.Image")


def frames_of(data: bytes) -> list:
    with Image.open(io.BytesIO(data)) as im:
        frames = []
        for k in range(getattr(im, "n_frames", 1)):
            im.seek(k)
            frames.append(im.convert("RGB"))  # decodes the frame
        return frames


def _rgb(color: str) -> tuple[int, ...]:
    return tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))


@pytest.mark.parametrize("fmt", ["GIF", "PNG"])
def test_one_frame_per_output_each_painted_where_the_layout_says(fmt):
    d = build_diagram(conv2d_geometry((1, 1, 5, 6), (1, 1, 3, 3), stride=(2, 1), padding=1))
    data, count = raster.encode(d, fmt)
    frames = frames_of(data)
    assert count == len(frames) == d.output_shape[0] * d.output_shape[1]
    places = Layout(d, animated=True)
    for k, frame in enumerate(frames):
        window = [
            i for i in places.picture(k).items if isinstance(i, Rect) and "window" in i.classes
        ]
        assert len(window) == len(d.window(k))
        for rect in window:  # a pixel inside each tap, clear of its border and text
            pixel = frame.getpixel((int(rect.x + 3), int(rect.y + 3)))
            assert max(abs(a - b) for a, b in zip(pixel, _rgb(rect.fill), strict=True)) < 24


def test_a_seven_by_seven_gif_with_numbers_stays_small():
    geo = conv2d_geometry((1, 1, 7, 7), (1, 1, 3, 3), stride=2)
    weight = np.arange(9.0).reshape(3, 3) / 7
    numbers = numbers_for(geo, np.random.default_rng(0).random((7, 7)), weight)
    data, count = raster.encode(build_diagram(geo, numbers=numbers), "GIF")
    assert count == 9 and len(data) < 1_000_000
    assert len(frames_of(data)) == 9


def test_a_transposed_animation_has_a_frame_per_output():
    geo = conv_transpose2d_geometry(
        (1, 1, 2, 2), (1, 1, 3, 3), stride=2, padding=1, output_padding=1
    )
    data, count = raster.encode(build_diagram(geo), "PNG")
    assert count == 16 and len(frames_of(data)) == 16


def test_one_output_makes_a_plain_png():
    d = build_diagram(conv2d_geometry((1, 1, 3, 3), (1, 1, 3, 3)))
    data, count = raster.encode(d, "PNG")
    assert count == 1 and data.startswith(b"\x89PNG") and b"acTL" not in data
    assert len(frames_of(data)) == 1


def test_frames_are_capped_by_count_and_by_pixels(monkeypatch):
    d = build_diagram(conv2d_geometry((1, 1, 8, 8), (1, 1, 3, 3)), max_frames=7)
    data, count = raster.encode(d, "GIF")
    assert count == len(frames_of(data)) == 7
    picture = Layout(d, animated=True).picture(0)
    monkeypatch.setattr(raster, "FRAME_PIXELS", picture.width * picture.height * 3)
    data, count = raster.encode(d, "GIF")
    assert count == len(frames_of(data)) == 3


def test_durations_hold_the_last_frame():
    assert raster.frame_durations(2) == [800, 2400]
    assert len(raster.frame_durations(400)) == 400
