"""The named-kernel catalogue: every name builds, sums and orientations, the
Gaussian's sigma, upsampling kernels, argument errors and the listing."""

from __future__ import annotations

import numpy as np
import pytest

from convcli import KernelError, conv_transpose2d
from convcli.kernels.loader import load_filter
from convcli.kernels.named import NAMED, list_kernels


@pytest.mark.parametrize("name", sorted(NAMED))
def test_every_named_kernel_loads_finite(name):
    w = load_filter(name).weight
    assert w.ndim == 2 and np.isfinite(w).all()


@pytest.mark.parametrize(
    "spec",
    [
        "box:5",
        "gaussian:7",
        "gaussian:9,2.5",
        "motion:5",
        "sharpen",
        "emboss",
        "unsharp:5",
        "identity",
    ],
)
def test_smoothing_and_sharpening_kernels_sum_to_one(spec):
    assert load_filter(spec).weight.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "spec",
    [
        "laplacian",
        "sobel-x",
        "sobel-y",
        "prewitt-x",
        "prewitt-y",
        "scharr-x",
        "scharr-y",
        "edge",
        "log:9",
    ],
)
def test_edge_kernels_sum_to_zero(spec):
    assert abs(load_filter(spec).weight.sum()) < 1e-12


def test_gradient_orientation():
    ramp = np.tile(np.arange(5.0), (5, 1))  # brightness rises left to right
    for name in ("sobel-x", "prewitt-x", "scharr-x"):
        assert np.sum(load_filter(name).weight * ramp[1:4, 1:4]) > 0
        assert np.sum(load_filter(name.replace("-x", "-y")).weight * ramp[1:4, 1:4]) == 0
    assert np.sum(load_filter("sobel-y").weight * ramp.T[1:4, 1:4]) > 0


# getGaussianKernel(n, 0)'s fixed tables, from OpenCV's source (smooth.dispatch.cpp,
# getGaussianKernelBitExact), written here as the integers they are.
OPENCV_TABLES = {
    3: [1, 2, 1],
    5: [1, 4, 6, 4, 1],
    7: [2, 7, 14, 18, 14, 7, 2],
    9: [4, 13, 30, 51, 60, 51, 30, 13, 4],
}


@pytest.mark.parametrize("size", sorted(OPENCV_TABLES))
def test_default_gaussian_is_opencvs_table(size):
    g = np.array(OPENCV_TABLES[size], dtype=float)
    g /= g.sum()
    np.testing.assert_allclose(load_filter(f"gaussian:{size}").weight, np.outer(g, g), rtol=1e-15)


def sampled(size, sigma):
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return np.outer(g, g) / g.sum() ** 2


@pytest.mark.parametrize("size", [2, 4, 6, 11, 15, 31])
def test_default_gaussian_elsewhere_samples_opencvs_sigma(size):
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8  # as documented for cv::getGaussianKernel
    w = load_filter(f"gaussian:{size}").weight
    np.testing.assert_allclose(w, sampled(size, sigma), rtol=1e-12)
    assert np.linalg.matrix_rank(w) == 1


@pytest.mark.parametrize(("size", "sigma"), [(3, 0.5), (5, 1.5), (7, 1.0), (9, 2.5), (4, 1.0)])
def test_explicit_sigma_samples_the_gaussian(size, sigma):
    np.testing.assert_allclose(
        load_filter(f"gaussian:{size},{sigma}").weight, sampled(size, sigma), rtol=1e-12
    )


@pytest.mark.parametrize("size", [1, 3, 5, 7, 9, 11, 13, 21, 31])
@pytest.mark.parametrize("sigma", [None, 0.7, 1.5, 4.0])
def test_gaussian_matches_cv2_for_odd_sizes(size, sigma):
    cv2 = pytest.importorskip("cv2")
    g = cv2.getGaussianKernel(size, 0 if sigma is None else sigma, ktype=cv2.CV_64F)
    spec = f"gaussian:{size}" if sigma is None else f"gaussian:{size},{sigma}"
    np.testing.assert_allclose(load_filter(spec).weight, g @ g.T, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    ("spec", "blur", "amount"),
    [("unsharp:5", "gaussian:5", 1.0), ("unsharp:7,2,1.5", "gaussian:7,2", 1.5)],
)
def test_unsharp_blurs_with_the_same_gaussian(spec, blur, amount):
    blurred = load_filter(blur).weight
    identity = np.zeros_like(blurred)
    identity[len(identity) // 2, len(identity) // 2] = 1
    expected = identity + amount * (identity - blurred)
    np.testing.assert_allclose(load_filter(spec).weight, expected, rtol=1e-15)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_upsampling_kernels_keep_a_constant_constant(factor):
    x = np.ones((1, 1, 8, 8))
    for name, args, reach in (
        ("bilinear", "", 1),
        ("nearest", "", 1),
        ("bicubic", "", 2),
        ("lanczos", "", 3),
        ("lanczos", ",2", 2),
    ):
        w = load_filter(f"{name}:{factor}{args}").weight[None, None]
        y = conv_transpose2d(x, w, stride=factor, padding="same")
        inside = slice(reach * factor, -reach * factor)  # the zeros outside are not 1
        np.testing.assert_allclose(y[0, 0, inside, inside], 1.0, rtol=1e-12)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("box:0", "box:0"),
        ("gaussian:4.5", "whole number"),
        ("gaussian:5,-1", "sigma"),
        ("sharpen:3", "no arguments"),
        ("box:x", "'x' is not a number"),
        ("gaussian:100000", r"'gaussian:100000': size 100000 is too large; at most 1001"),
        ("box:1e30", "too large"),
        ("motion:1002", "at most 1001"),
        ("bilinear:600", r"factor 600 is too large; at most 501"),
        ("nearest:2000", r"factor 2000 is too large"),
        ("nearest:0", r"factor must be a whole number >= 1"),
        ("box:3,4", r"'box:3,4' takes at most 1 argument: box:N"),
        ("gaussian:5,1,2", r"takes at most 2 arguments: gaussian:N\[,sigma\]"),
        ("unsharp:5,1,2,3", r"at most 3 arguments"),
        ("gaussian:,2", r"an argument is empty; write gaussian:N\[,sigma\]"),
        ("gaussian:5,", "an argument is empty"),
        ("gaussian:5,-1", "or 0 for OpenCV's default"),
        ("log:9,0", "sigma must be positive"),
        ("gaussian:0", r"size 0 takes the size from sigma, so give one \(gaussian:0,2\)"),
        ("gaussian:0,0", "size 0 takes the size from sigma"),
        ("gaussian:0,167", r"sigma 167 makes a kernel of 1003 taps; at most 1001"),
        ("unsharp:0", "size 0 takes the size from sigma"),
        ("bicubic:251", r"factor 251 makes a 1003x1003 kernel; at most 1001 \(factor up to 250\)"),
        ("lanczos:2,9", "lobes A 9 is too large; at most 8"),
        ("lanczos:2,0", "lobes A must be a whole number >= 1"),
        ("lanczos:2,2.5", "lobes A must be a whole number"),
    ],
)
def test_named_spec_errors(spec, needle):
    with pytest.raises(KernelError, match=needle):
        load_filter(spec)


def test_list():
    syntaxes = [s for s, _ in list_kernels()]
    assert "gaussian:N[,sigma]" in syntaxes and "sobel-x" in syntaxes


def test_the_largest_size_is_allowed():
    assert load_filter("box:1001").weight.shape == (1001, 1001)
    assert load_filter("bilinear:501").weight.shape == (1001, 1001)


def test_sigma_zero_is_opencvs_default_as_in_opencv():
    # cv2.getGaussianKernel(5, 0) is the table [1, 4, 6, 4, 1] / 16
    g = np.array([1, 4, 6, 4, 1]) / 16
    np.testing.assert_allclose(load_filter("gaussian:5,0").weight, np.outer(g, g), rtol=1e-15)
    delta = np.zeros((5, 5))
    delta[2, 2] = 1
    sharpened = delta + 2 * (delta - np.outer(g, g))
    np.testing.assert_allclose(load_filter("unsharp:5,0,2").weight, sharpened, atol=1e-15)


@pytest.mark.parametrize("sigma", ["1e-200", "1e-320"])
def test_a_vanishing_sigma_is_a_delta_not_nan(sigma):
    odd = load_filter(f"gaussian:5,{sigma}").weight
    np.testing.assert_array_equal(odd, np.pad([[1.0]], 2))
    even = load_filter(f"gaussian:4,{sigma}").weight  # the two middle taps share it
    np.testing.assert_array_equal(even, np.pad(np.full((2, 2), 0.25), 1))
    log = load_filter(f"log:5,{sigma}").weight
    assert np.isfinite(log).all() and abs(log.sum()) < 1e-12 and log[2, 2] < 0


def test_a_huge_sigma_is_a_box():
    np.testing.assert_allclose(load_filter("gaussian:5,1e200").weight, load_filter("box:5").weight)
