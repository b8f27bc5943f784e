"""Shaping a filter for an image: the shape rule, flip and normalize."""

from __future__ import annotations

import numpy as np
import pytest

from convcli import KernelError
from convcli.kernels.filters import Filter
from convcli.kernels.loader import load_filter
from convcli.kernels.shaping import flip_kernel, normalize_kernel, weight_for_channels


def test_weight_for_channels_shape_rule():
    w, g = weight_for_channels(load_filter("box:3"), 3)
    assert w.shape == (3, 1, 3, 3) and g == 3 and w.dtype == np.float32
    w, g = weight_for_channels(Filter(np.ones((3, 2, 2))), 3)
    assert w.shape == (1, 3, 2, 2) and g == 1
    w, g = weight_for_channels(Filter(np.ones((4, 1, 3, 3))), 2)
    assert w.shape == (4, 1, 3, 3) and g == 2
    with pytest.raises(KernelError, match="3 channels, but the image has 4"):
        weight_for_channels(Filter(np.ones((3, 2, 2)), source="k"), 4)
    with pytest.raises(KernelError, match="does not divide"):
        weight_for_channels(Filter(np.ones((2, 2, 3, 3))), 3)
    with pytest.raises(KernelError, match="groups=2"):
        weight_for_channels(Filter(np.ones((3, 2, 3, 3))), 4, groups=2)


def test_flip_and_normalize():
    w = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(flip_kernel(w), w[::-1, ::-1])
    np.testing.assert_allclose(normalize_kernel(np.full((3, 3), 2.0)).sum(), 1.0)
    four = normalize_kernel(np.stack([np.ones((1, 2, 2)), 2 * np.ones((1, 2, 2))]))
    np.testing.assert_allclose(four.sum(axis=(1, 2, 3)), [1, 1])
    with pytest.raises(KernelError, match="sums to zero"):
        normalize_kernel(load_filter("sobel-x").weight)
