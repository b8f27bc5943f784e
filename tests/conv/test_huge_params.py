"""Strides, paddings and dilations far larger than the data: exact results, fast, or one
clear error; never a hang or a huge allocation proportional to the parameter."""

from __future__ import annotations

import time

import numpy as np
import pytest

from convcli import ResourceError, conv2d, conv2d_backward, conv_transpose2d
from convcli.conv import engines
from convcli.conv.padding import source_of
from tests.conftest import assert_close
from tests.reference import ref_conv2d, ref_conv2d_backward, ref_conv_transpose2d, ref_source_index

MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")


@pytest.fixture
def data(rng):
    x = rng.standard_normal((2, 2, 4, 5)).astype(np.float32)
    w = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    return x, w


class Clock:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        # Generous for slow CI; the bugs this guards against took minutes or were killed.
        assert time.perf_counter() - self.start < 5


@pytest.mark.parametrize("path", engines.PATHS)
@pytest.mark.parametrize("stride", [10**5, 10**9, (10**9, 1), (2, 10**9)])
@pytest.mark.parametrize("mode", MODES)
def test_huge_stride_forward_and_backward(path, stride, mode, data):
    x, w = data
    s = (stride, stride) if isinstance(stride, int) else stride
    with engines.force_path(path), Clock():
        y = conv2d(x, w, stride=stride, padding=1, groups=2, padding_mode=mode)
        gy = np.ones_like(y)
        grads = conv2d_backward(gy, x, w, stride=stride, padding=1, groups=2, padding_mode=mode)
    pads = (1, 1, 1, 1)
    assert_close(y, ref_conv2d(x, w, stride=s, pads=pads, groups=2, mode=mode))
    want = ref_conv2d_backward(gy, x, w, stride=s, pads=pads, groups=2, mode=mode)
    for got, expected in zip(grads, want, strict=True):
        assert_close(got, expected)


@pytest.mark.parametrize("path", engines.PATHS)
def test_huge_stride_transpose(path, data):
    x, w = data
    with engines.force_path(path), Clock():
        y = conv_transpose2d(x, w, stride=(10**5, 2), groups=2)
    assert y.shape == (2, 2, 3 * 10**5 + 3, 11)
    assert_close(y, ref_conv_transpose2d(x, w, stride=(10**5, 2), groups=2))


@pytest.mark.parametrize("path", engines.PATHS)
def test_outputs_too_large_are_refused_at_once(path, data):
    x, w = data
    with engines.force_path(path), Clock():
        with pytest.raises(ResourceError, match="the output .* GiB"):
            conv_transpose2d(x, w, stride=10**9, groups=2)
        with pytest.raises(ResourceError, match="the output"):
            conv2d(x, w, padding=10**9, groups=2)
        with pytest.raises(ResourceError, match="the output"):
            conv2d(x, w, padding=10**6, groups=2)


@pytest.mark.parametrize("path", engines.PATHS)
@pytest.mark.parametrize("mode", ["zeros", "replicate", "circular", "symmetric"])
def test_huge_padding_with_huge_stride_equals_the_small_case(path, mode, data):
    # 10**9 is a multiple of every period involved (4 wrap, 8 mirror, 10 for width 5),
    # so padding and stride 10**9 read exactly the rows that padding and stride 40 do.
    x, w = data
    big = dict(stride=10**9, padding=10**9, groups=2, padding_mode=mode)
    small = dict(stride=40, padding=40, groups=2, padding_mode=mode)
    with engines.force_path(path), Clock():
        y = conv2d(x, w, **big)
        grads = conv2d_backward(np.ones_like(y), x, w, **big)
    assert y.shape == (2, 2, 3, 3)
    want = ref_conv2d(x, w, stride=(40, 40), pads=(40,) * 4, groups=2, mode=mode)
    assert_close(y, want)
    assert_close(y, conv2d(x, w, **small))
    expected = ref_conv2d_backward(
        np.ones_like(y), x, w, stride=(40, 40), pads=(40,) * 4, groups=2, mode=mode
    )
    for got, e in zip(grads, expected, strict=True):
        assert_close(got, e)


@pytest.mark.parametrize("path", engines.PATHS)
def test_same_padding_with_huge_dilation(path, data):
    # Only the centre tap lands on the image; the rest read 10**9 rows of zeros.
    x, w = data
    with engines.force_path(path), Clock():
        y = conv2d(x, w, padding="same", dilation=10**9, groups=2)
        grads = conv2d_backward(np.ones_like(y), x, w, padding="same", dilation=10**9, groups=2)
    assert_close(y, x * w[:, :, 1:2, 1:2].transpose(1, 0, 2, 3))
    expected = ref_conv2d_backward(
        np.ones_like(y), x, w, dilation=(10, 10), pads=(10,) * 4, groups=2
    )
    for got, e in zip(grads, expected, strict=True):
        assert_close(got, e)


@pytest.mark.parametrize("path", engines.PATHS)
def test_transpose_cropped_by_huge_padding(path, data):
    x, w = data
    with engines.force_path(path), Clock():
        y = conv_transpose2d(x, w, padding=10**9, dilation=10**9, groups=2)
    want = ref_conv_transpose2d(x, w, pads=(10,) * 4, dilation=(10, 10), groups=2)
    assert y.shape == want.shape == (2, 2, 4, 5)
    assert_close(y, want)


@pytest.mark.parametrize("path", engines.PATHS)
def test_one_tap_axis_ignores_its_dilation(path, rng):
    x = rng.standard_normal((1, 3, 6, 7)).astype(np.float32)
    w = rng.standard_normal((3, 1, 1, 3)).astype(np.float32)
    with engines.force_path(path), Clock():
        y = conv2d(x, w, groups=3, dilation=(10**9, 2), padding=(0, 2))
    assert_close(y, ref_conv2d(x, w, dilation=(1, 2), pads=(0, 0, 2, 2), groups=3))


@pytest.mark.parametrize("mode", MODES)
def test_closed_form_padding_matches_numpy_pad_however_far_out(mode):
    for size in (1, 2, 3, 5):
        pad = 7 * size + 2  # several mirrors or wraps
        expected = ref_source_index(size, pad, pad, mode)  # numpy.pad of an arange
        positions = np.arange(-pad, size + pad)
        np.testing.assert_array_equal(source_of(positions, size, mode), expected)


@pytest.mark.parametrize("path", engines.PATHS)
def test_huge_strides_match_torch(path, data):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    x, w = data
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    with engines.force_path(path):
        y = conv2d(x, w, stride=10**9, padding=1, groups=2)
        t = conv_transpose2d(x, w, stride=(10**5, 3), groups=2)
    assert_close(y, functional.conv2d(tx, tw, stride=10**9, padding=1, groups=2).numpy())
    expected = functional.conv_transpose2d(tx, tw, stride=(10**5, 3), groups=2).numpy()
    assert_close(t, expected)


@pytest.mark.parametrize("path", engines.PATHS)
@pytest.mark.parametrize("huge", [2**63, 2**66, 10**30])
@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_a_stride_or_dilation_past_int64_where_it_only_multiplies_zero(path, huge, mode, rng):
    # One output row: the row stride is never used; one tap per row: the row dilation
    # neither. The result is the reference's with 1 in their place (no OverflowError).
    x = rng.standard_normal((1, 2, 5, 6)).astype(np.float32)
    w = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    taps = rng.standard_normal((2, 1, 1, 3)).astype(np.float32)
    with engines.force_path(path), Clock():
        y = conv2d(x, w, stride=(huge, 2), groups=2, padding_mode=mode)
        grads = conv2d_backward(
            np.ones_like(y), x, w, stride=(huge, 2), groups=2, padding_mode=mode
        )
        z = conv2d(x, taps, dilation=(huge, 1), stride=huge, groups=2, padding=1, padding_mode=mode)
    assert y.shape == (1, 2, 1, 2) and z.shape == (1, 2, 1, 1)
    assert_close(y, ref_conv2d(x, w, stride=(1, 2), groups=2, mode=mode)[:, :, :1])
    expected = ref_conv2d_backward(np.ones_like(y), x, w, stride=(9, 2), groups=2, mode=mode)
    for got, e in zip(grads, expected, strict=True):
        assert_close(got, e)
    want = ref_conv2d(x, taps, pads=(1, 1, 1, 1), groups=2, mode=mode)[:, :, :1, :1]
    assert_close(z, want)
