"""flatten.py: background colours, and alpha flattened over them (in floats and as the
writer quantizes)."""

from __future__ import annotations

import numpy as np
import pytest

from convcli.errors import ParameterError
from convcli.images.flatten import WHITE, colour_text, flatten, parse_colour
from convcli.images.writing import flattening, quantize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("white", (255, 255, 255)),
        ("Black", (0, 0, 0)),
        ("navy", (0, 0, 128)),
        ("gray", (128, 128, 128)),  # CSS's gray, as Pillow and browsers name it
        ("#fff", (255, 255, 255)),
        ("#1a2b3c", (26, 43, 60)),
        ("#1a2b3cff", (26, 43, 60)),
        (" rgb(10, 20, 30) ", (10, 20, 30)),
    ],
)
def test_colours_by_name_and_by_number(text, expected):
    colour = parse_colour(text)
    assert [round(v * 255) for v in colour] == list(expected)
    assert colour_text(colour) == "#" + "".join(f"{v:02x}" for v in expected)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("#00000080", "a background is opaque"),
        ("transparent", "is not a colour"),
        ("#12345", "is not a colour"),
        ("", "is not a colour"),
    ],
)
def test_what_is_no_background_is_refused_with_the_way_out(text, needle):
    with pytest.raises(ParameterError, match=needle) as caught:
        parse_colour(text)
    assert "--background" in str(caught.value)


def test_flatten_is_colour_times_alpha_plus_background_times_the_rest():
    rng = np.random.default_rng(0)
    rgba = rng.random((2, 4, 5, 6)).astype(np.float32)
    colour = (0.2, 0.6, 1.0)
    expected = np.empty((2, 3, 5, 6))
    for c in range(3):
        a = rgba[:, 3].astype(np.float64)
        expected[:, c] = rgba[:, c] * a + colour[c] * (1 - a)
    np.testing.assert_allclose(flatten(rgba, colour), expected, atol=1e-6)


def test_a_gray_image_is_flattened_over_the_colours_luma():
    gray_alpha = np.array([[[[0.0]], [[0.0]]]], np.float32)  # fully transparent
    luma = 0.299 * 0.2 + 0.587 * 0.6 + 0.114 * 1.0
    assert flatten(gray_alpha, (0.2, 0.6, 1.0)).ravel()[0] == pytest.approx(luma, abs=1e-6)


def test_raw_colour_is_kept_and_alpha_clipped():
    """.npy values outside [0, 1]: colour as it is, alpha read as 0..1."""
    x = np.array([[[[2.5, -1.0]], [[1.5, -0.5]]]], np.float32)  # alpha 1.5 -> 1, -0.5 -> 0
    assert flatten(x, WHITE).ravel().tolist() == [2.5, 1.0]


@pytest.mark.parametrize("depth", [8, 16])
def test_quantize_flattens_after_clipping_and_counts_before(depth):
    rng = np.random.default_rng(depth)
    rgba = rng.uniform(-0.2, 1.2, (1, 4, 70, 90)).astype(np.float32)
    rgba[0, 0, 0, :3] = np.nan
    top = 65535 if depth == 16 else 255
    q = quantize(rgba, depth, background=(1.0, 0.0, 0.5))
    assert q.values.shape == (1, 70, 90, 3) and q.background == (1.0, 0.0, 0.5)
    clean = np.nan_to_num(rgba, nan=0.0)
    assert q.below.tolist() == [np.count_nonzero(rgba < 0)]
    assert q.above.tolist() == [np.count_nonzero(rgba > 1)]
    clipped = np.clip(clean, 0, 1).astype(np.float64)
    a = clipped[0, 3]
    expected = [(clipped[0, c] * a + v * (1 - a)) * top for c, v in enumerate((1.0, 0.0, 0.5))]
    difference = q.values[0].transpose(2, 0, 1) - np.stack(expected)
    assert np.abs(difference).max() <= 0.51  # rounded once, from float32


def test_which_results_are_flattened_and_over_what():
    red = (1.0, 0.0, 0.0)
    assert flattening("JPEG", 4, alpha=True, background=None) == WHITE
    assert flattening("PPM", 2, alpha=True, background=None) == WHITE
    assert flattening("PNG", 4, alpha=True, background=None) is None  # keeps alpha
    assert flattening("PNG", 4, alpha=True, background=red) == red  # asked: every format
    assert flattening("NPY", 2, alpha=True, background=red) == red
    assert flattening("JPEG", 4, alpha=False, background=red) is None  # no alpha to flatten
    assert flattening("JPEG", 3, alpha=True, background=red) is None
