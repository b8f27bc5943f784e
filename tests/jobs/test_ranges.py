"""ranges.py: values to pixels by --range, and the clipped counts."""

from __future__ import annotations

import numpy as np

from convcli.jobs.ranges import map_range


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
