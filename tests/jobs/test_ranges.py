"""ranges.py: values to pixels by --range, and the clipped counts."""

from __future__ import annotations

import numpy as np

from convcli.jobs.ranges import finite_extremes, map_range


def test_normalize_keeps_a_constant_sample_instead_of_blacking_it_out():
    x = np.full((2, 1, 2, 2), 0.75, np.float32)
    x[1] = 3.0
    pixels = map_range(x, "normalize")[0]
    assert pixels[0].ravel().tolist() == [0.75] * 4 and pixels[1].ravel().tolist() == [1.0] * 4


def test_known_bounds_skip_clipping_only_when_inside():
    x = np.array([[[[0.0, 0.5, 1.0]]], [[[-0.5, 0.5, 1.5]]]], np.float32)
    inside = (np.array([0.0, 0.0]), np.array([1.0, 1.0]))
    pixels, low, high = map_range(x[:1].copy(), "clip", bounds=(inside[0][:1], inside[1][:1]))
    assert pixels.ravel().tolist() == [0.0, 0.5, 1.0] and low.tolist() == high.tolist() == [0]
    bounds = (np.array([0.0, -0.5]), np.array([1.0, 1.5]))
    pixels, low, high = map_range(x.copy(), "clip", bounds=bounds)
    assert low.tolist() == [0, 1] and high.tolist() == [0, 1] and pixels.max() == 1.0


def test_normalize_stretches_the_finite_values_whatever_infinities_there_are():
    # An Inf made the span infinite: every finite value became 0 (an all-black image).
    x = np.array([[[[0.2, 0.6, np.inf, np.nan, -np.inf, 0.4]]]], np.float32)
    for bounds in (None, (np.array([-np.inf]), np.array([np.inf]))):
        pixels, low, high = map_range(x.copy(), "normalize", bounds=bounds)
        values = pixels.ravel()
        np.testing.assert_allclose(values[[0, 1, 5]], [0.0, 1.0, 0.5], atol=1e-6)
        assert values[2] == 1.0 and values[4] == 0.0 and np.isnan(values[3])
        assert low.tolist() == [1] and high.tolist() == [1]  # the infinities, clipped


def test_finite_extremes_ignore_infinities_and_nan():
    x = np.array([[[[np.inf, 2.0, -1.0]]], [[[np.nan, np.inf, -np.inf]]]], np.float32)
    low, high = finite_extremes(x)
    assert low[0] == -1.0 and high[0] == 2.0
    assert np.isnan(low[1]) and np.isnan(high[1])  # no finite value: nothing to stretch


def test_normalize_with_alpha_stretches_the_colours_and_keeps_alpha():
    # Alpha was stretched with the colours: a half-transparent image came out opaque.
    x = np.zeros((1, 3, 1, 4), np.float32)
    x[0, 0] = [0.2, 0.3, 0.4, 0.6]
    x[0, 1] = [0.25, 0.25, 0.25, 0.25]
    x[0, 2] = [0.4, 0.4, 0.5, 0.5]  # alpha: outside the colours' range on purpose
    pixels, low, high = map_range(x.copy(), "normalize", alpha=True)
    colour = x[0, :2]
    expected = (colour - colour.min()) / (colour.max() - colour.min())
    np.testing.assert_allclose(pixels[0, :2], expected, atol=1e-6)
    np.testing.assert_array_equal(pixels[0, 2], x[0, 2])
    assert low.tolist() == high.tolist() == [0]
    # Bounds given are the colours' (as the blocks' first pass finds them).
    given = (np.array([colour.min()]), np.array([colour.max()]))
    again = map_range(x.copy(), "normalize", bounds=given, alpha=True)[0]
    np.testing.assert_array_equal(again, pixels)
