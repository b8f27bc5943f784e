"""NaN and Inf: what PyTorch gives, on every path, without warnings.

Every output is a sum of products over its window, zero taps included, so a
NaN in the window (or 0 * Inf) makes it NaN, an Inf makes it Inf, and pixels
no window reads change nothing. Large-kernel paths (FFT, separable passes)
would smear non-finite values over a tile; they hand such inputs to a GEMM.
"""

from __future__ import annotations

import numpy as np
import pytest

from convcli import conv2d, conv2d_backward, conv_transpose2d
from convcli.conv import engines


@pytest.mark.parametrize("path", [None, "rows"])
def test_nan_stays_inside_the_windows_that_read_it(path):
    x = np.ones((1, 1, 40, 40), np.float32)
    x[0, 0, 20, 20] = np.nan
    for k in (3, 9):
        if path is None:
            y = conv2d(x, np.ones((1, 1, k, k), np.float32), padding="same")
        else:
            with engines.force_path(path):
                y = conv2d(x, np.ones((1, 1, k, k), np.float32), padding="same")
        expected = np.zeros((40, 40), bool)
        expected[20 - k // 2 : 21 + k // 2, 20 - k // 2 : 21 + k // 2] = True
        np.testing.assert_array_equal(np.isnan(y[0, 0]), expected)


def test_a_zero_tap_over_nan_is_nan():
    x = np.ones((1, 1, 5, 5))
    x[0, 0, 2, 2] = np.nan
    w = np.ones((1, 1, 3, 3))
    w[0, 0, 1, 1] = 0  # the NaN pixel is read only through this zero tap at (2, 2)
    assert np.isnan(conv2d(x, w, padding=1)[0, 0, 2, 2])


@pytest.mark.parametrize("k", [3, 9])
def test_nan_in_a_per_channel_weight_makes_every_output_nan(k):
    x = np.random.default_rng(0).standard_normal((1, 2, 20, 20))
    w = np.ones((2, 1, k, k))
    w[1, 0, 1, 1] = np.nan
    y = conv2d(x, w, padding="same", groups=2)
    assert np.isfinite(y[0, 0]).all() and np.isnan(y[0, 1]).all()


def test_inf_input_with_a_positive_low_rank_kernel_stays_inf():
    # Rank 2 with mixed-sign SVD factors: separable passes would give Inf - Inf.
    a = np.linspace(0.5, 1, 7)
    w = (np.outer(a, a) + np.outer(a[::-1], a[::-1]))[None, None]
    x = np.ones((1, 1, 15, 15))
    x[0, 0, 7, 7] = np.inf
    y = conv2d(x, w, padding=3)
    assert not np.isnan(y).any()
    assert np.isposinf(y[0, 0, 4:11, 4:11]).all() and np.isinf(y).sum() == 49


def test_gradients_ignore_pixels_no_window_reads():
    w = np.ones((1, 1, 3, 3))
    x = np.ones((1, 1, 6, 6))
    x[0, 0, 2, 5] = np.inf  # read only by the last output column's right taps
    grad_w = conv2d_backward(np.ones((1, 1, 4, 4)), x, w)[1][0, 0]
    np.testing.assert_array_equal(grad_w[:, :2], 16)
    assert np.isposinf(grad_w[:, 2]).all()
    x = np.ones((1, 1, 5, 8))
    x[0, 0, 2, 7] = np.nan  # column 7 is never read at stride 2
    grad_w = conv2d_backward(np.ones((1, 1, 2, 3)), x, w, stride=2)[1]
    np.testing.assert_array_equal(grad_w, 6)


def test_transpose_of_inf_weights_is_inf_and_nan_as_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.random((1, 2, 6, 7))
    w = rng.random((2, 1, 3, 3))
    w[0, 0, 1, 1] = np.inf
    w[1, 0, 0, 0] = -np.inf
    y = conv_transpose2d(x, w, stride=2, groups=2)
    expected = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x), torch.from_numpy(w), stride=2, groups=2
    ).numpy()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    np.testing.assert_array_equal(y[np.isinf(expected)], expected[np.isinf(expected)])
