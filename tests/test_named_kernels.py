"""The named-kernel catalogue: every name builds, sums and orientations, the
Gaussian's sigma, upsampling kernels, argument errors and the listing."""

from __future__ import annotations

import numpy as np
import pytest

from convcli import KernelError, conv_transpose2d
from convcli.kernels import load_filter
from convcli.named_kernels import NAMED, list_kernels


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


def test_gaussian_is_symmetric_separable_and_uses_opencv_sigma():
    w = load_filter("gaussian:5").weight
    np.testing.assert_allclose(w, w.T)
    assert np.linalg.matrix_rank(w) == 1
    sigma = 0.3 * ((5 - 1) * 0.5 - 1) + 0.8
    g = np.exp(-(np.arange(-2, 3) ** 2) / (2 * sigma**2))
    np.testing.assert_allclose(w, np.outer(g, g) / np.outer(g, g).sum())


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_upsampling_kernels_keep_a_constant_constant(factor):
    x = np.ones((1, 1, 6, 6))
    for name in ("bilinear", "nearest"):
        w = load_filter(f"{name}:{factor}").weight[None, None]
        y = conv_transpose2d(x, w, stride=factor, padding="same")
        interior = y[0, 0, 2 * factor : -2 * factor, 2 * factor : -2 * factor]
        np.testing.assert_allclose(interior, 1.0)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("box:0", "box:0"),
        ("gaussian:4.5", "whole number"),
        ("gaussian:5,-1", "sigma"),
        ("sharpen:3", "no arguments"),
        ("box:x", "'x' is not a number"),
    ],
)
def test_named_spec_errors(spec, needle):
    with pytest.raises(KernelError, match=needle):
        load_filter(spec)


def test_list():
    syntaxes = [s for s, _ in list_kernels()]
    assert "gaussian:N[,sigma]" in syntaxes and "sobel-x" in syntaxes
