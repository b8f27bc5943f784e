"""Named kernels, spec precedence, the shape rule, flip and normalize."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convcli import KernelError, conv_transpose2d
from convcli.kernels import (
    NAMED,
    Filter,
    describe_filter,
    flip_kernel,
    list_kernels,
    load_filter,
    normalize_kernel,
    weight_for_channels,
)

FILTERS = Path(__file__).resolve().parent.parent / "filters"


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
        ("gausian:5", "gaussian"),
        ("", "empty"),
        ("missing.txt", "does not exist"),
        ("./sobel-x", "does not exist"),
    ],
)
def test_spec_errors(spec, needle):
    with pytest.raises(KernelError, match=needle):
        load_filter(spec)


def test_names_win_over_files_and_dot_slash_reaches_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("sharpen").write_text("1 1\n1 1\n")
    assert load_filter("sharpen").weight.shape == (3, 3)
    assert load_filter("./sharpen").weight.shape == (2, 2)


def test_inline_forms():
    assert load_filter("1 2 1; 2 4 2; 1 2 1").weight.sum() == 16
    assert load_filter("[[1,2,1],[2,4,2],[1,2,1]]").weight.shape == (3, 3)
    assert load_filter("3x3: 1,2,1 2,4,2 1,2,1").weight.sum() == 16
    assert load_filter("1 2 1").weight.shape == (1, 3)
    assert load_filter("[[[1]],[[2]],[[3]]]").weight.shape == (3, 1, 1)


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


def test_list_and_describe():
    syntaxes = [s for s, _ in list_kernels()]
    assert "gaussian:N[,sigma]" in syntaxes and "sobel-x" in syntaxes
    text = describe_filter(load_filter("sobel-x"))
    assert text.splitlines()[0].split() == ["-1", "0", "1"]
    assert "shape: 3x3" in text and "sum: 0" in text


@pytest.mark.parametrize("path", sorted(p for p in FILTERS.iterdir() if p.suffix != ".md"))
def test_shipped_example_filters_load(path):
    f = load_filter(str(path))
    assert f.weight.ndim in (2, 3, 4) and np.isfinite(f.weight).all()
