"""The one padding resolver, the index maps, pad and its adjoint, tile windows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convcli import ParameterError
from convcli.conv.padding import (
    PAD_MODES,
    PaddedSource,
    check_pad_mode,
    pad_adjoint,
    resolve_padding,
    source_index,
)
from tests.reference import ref_pad, ref_same_padding, ref_source_index


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (0, (0, 0, 0, 0)),
        (2, (2, 2, 2, 2)),
        ((1, 3), (1, 1, 3, 3)),
        ([1, 2, 3, 4], (1, 2, 3, 4)),
        ("valid", (0, 0, 0, 0)),
        ("VALID", (0, 0, 0, 0)),
        (np.int64(1), (1, 1, 1, 1)),
    ],
)
def test_resolve_padding_forms(spec, expected):
    assert resolve_padding(spec, kernel_size=(3, 3), input_size=(8, 8)) == expected


@given(
    st.integers(1, 30), st.integers(1, 30), st.integers(1, 7), st.integers(1, 4), st.integers(1, 3)
)
def test_same_follows_the_tensorflow_rule(h, w, k, s, d):
    pads = resolve_padding(
        "same", kernel_size=(k, k), stride=(s, s), dilation=(d, d), input_size=(h, w)
    )
    assert pads == (*ref_same_padding(h, k, s, d), *ref_same_padding(w, k, s, d))
    # and the output is ceil(in / stride)
    out_h = (h + pads[0] + pads[1] - d * (k - 1) - 1) // s + 1
    assert out_h == -(-h // s)


def test_same_even_kernel_puts_the_extra_row_after():
    assert resolve_padding("same", kernel_size=(4, 2), input_size=(9, 9)) == (1, 2, 0, 1)


@given(st.integers(1, 9), st.integers(1, 6), st.integers(1, 4), st.integers(1, 3))
def test_transpose_same_gives_in_times_stride(size, k, s, d):
    top, bottom, _, _ = resolve_padding(
        "same",
        kernel_size=(k, k),
        stride=(s, s),
        dilation=(d, d),
        input_size=(size, size),
        transpose=True,
    )
    assert (size - 1) * s - top - bottom + d * (k - 1) + 1 == size * s
    assert top >= 0


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        (-1, "negative"),
        ((1, -1), "negative"),
        ((1, 2, 3), "got 3 values"),
        ((), "got 0 values"),
        ("full", "same"),
        (1.5, "integer"),
        (True, "integer"),
        ((1, "a"), "integer"),
    ],
)
def test_resolve_padding_errors(spec, needle):
    with pytest.raises(ParameterError, match="padding") as info:
        resolve_padding(spec, kernel_size=(3, 3), input_size=(8, 8))
    assert needle in str(info.value)


def _padded(x: np.ndarray, pads, mode: str) -> np.ndarray:
    """The whole padded input, as the library's PaddedSource makes it."""
    source = PaddedSource(x, pads, mode)
    return source.window(0, source.shape[-2], 0, source.shape[-1])


@pytest.mark.parametrize("mode", PAD_MODES)
@given(data=st.data())
def test_padded_source_matches_numpy_pad_in_every_window(mode, data):
    h, w = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    limit_h, limit_w = (h - 1, w - 1) if mode == "reflect" else (8, 8)
    pads = (
        data.draw(st.integers(0, limit_h)),
        data.draw(st.integers(0, limit_h)),
        data.draw(st.integers(0, limit_w)),
        data.draw(st.integers(0, limit_w)),
    )
    x = np.random.default_rng(h * w).standard_normal((2, 3, h, w))
    expected = ref_pad(x, pads, mode)
    np.testing.assert_array_equal(_padded(x, pads, mode), expected)
    rows, cols = expected.shape[-2:]
    r0 = data.draw(st.integers(0, rows - 1))
    r1 = data.draw(st.integers(r0 + 1, rows))
    c0 = data.draw(st.integers(0, cols - 1))
    c1 = data.draw(st.integers(c0 + 1, cols))
    window = PaddedSource(x, pads, mode).window(r0, r1, c0, c1, 1, 2)
    np.testing.assert_array_equal(window, expected[1:2, :, r0:r1, c0:c1])


@pytest.mark.parametrize("mode", PAD_MODES)
def test_pad_adjoint_is_the_adjoint_of_the_padding(mode, rng):
    x = rng.standard_normal((2, 2, 5, 4))
    pads = (2, 3, 1, 3) if mode == "reflect" else (7, 3, 1, 9)  # beyond the input too
    padded = _padded(x, pads, mode)
    y = rng.standard_normal(padded.shape)
    lhs = np.sum(padded * y)
    rhs = np.sum(x * pad_adjoint(y, pads, mode, (5, 4)))
    assert abs(lhs - rhs) < 1e-10


@given(data=st.data())
def test_padded_source_from_any_maps_gathers_rows_and_columns(data):
    """Any index maps (runs, reversals, repeats, zeros): every window is the maps' gather."""
    h, w = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    rows = np.array(data.draw(st.lists(st.integers(-1, h - 1), min_size=1, max_size=12)))
    cols = np.array(data.draw(st.lists(st.integers(-1, w - 1), min_size=1, max_size=12)))
    if data.draw(st.booleans()):  # a long linear stretch, as a block's window has
        rows = np.concatenate([rows, np.arange(h), rows])
    x = np.random.default_rng(h * w).standard_normal((2, 3, h, w))
    full = x[:, :, np.maximum(rows, 0)][..., np.maximum(cols, 0)]
    full[:, :, rows < 0] = 0
    full[..., cols < 0] = 0
    source = PaddedSource.from_maps(x, rows, cols)
    r0 = data.draw(st.integers(0, rows.size - 1))
    r1 = data.draw(st.integers(r0 + 1, rows.size))
    c0 = data.draw(st.integers(0, cols.size - 1))
    c1 = data.draw(st.integers(c0 + 1, cols.size))
    np.testing.assert_array_equal(source.window(r0, r1, c0, c1, 1, 2), full[1:2, :, r0:r1, c0:c1])


def test_source_index_examples():
    assert source_index(3, 2, 1, "reflect").tolist() == [2, 1, 0, 1, 2, 1]
    assert source_index(3, 1, 1, "zeros").tolist() == [-1, 0, 1, 2, -1]
    assert source_index(2, 3, 0, "circular").tolist() == [1, 0, 1, 0, 1]
    assert source_index(2, 2, 2, "symmetric").tolist() == [1, 0, 0, 1, 1, 0]
    assert source_index(2, 2, 1, "replicate").tolist() == [0, 0, 0, 1, 1]


@pytest.mark.parametrize("mode", PAD_MODES)
@given(data=st.data())
def test_padded_source_windows_are_slices_of_the_padded_array(mode, data):
    h, w = data.draw(st.integers(2, 7)), data.draw(st.integers(2, 7))
    pads = tuple(data.draw(st.integers(0, 1 if mode == "reflect" else 4)) for _ in range(4))
    x = np.random.default_rng(h + 10 * w).standard_normal((2, 2, h, w))
    full = ref_pad(x, pads, mode)
    source = PaddedSource(x, pads, mode)
    assert source.shape == full.shape
    r0 = data.draw(st.integers(0, full.shape[2] - 1))
    r1 = data.draw(st.integers(r0 + 1, full.shape[2]))
    c0 = data.draw(st.integers(0, full.shape[3] - 1))
    c1 = data.draw(st.integers(c0 + 1, full.shape[3]))
    np.testing.assert_array_equal(source.window(r0, r1, c0, c1, 1, 2), full[1:2, :, r0:r1, c0:c1])


def test_check_pad_mode():
    check_pad_mode("circular", (9, 9, 9, 9), (3, 3))  # numpy.pad wraps as often as needed
    with pytest.raises(ParameterError, match="padding_mode"):
        check_pad_mode("edge", (0, 0, 0, 0), (3, 3))
    with pytest.raises(ParameterError, match="reflect padding .* smaller than the input 3x5"):
        check_pad_mode("reflect", (3, 0, 0, 0), (3, 5))


@given(
    st.tuples(st.integers(1, 20), st.integers(1, 20)),
    st.tuples(st.integers(1, 6), st.integers(1, 6)),
    st.tuples(st.integers(1, 3), st.integers(1, 3)),
    st.tuples(st.integers(1, 3), st.integers(1, 3)),
)
def test_same_per_axis(size, kernel, stride, dilation):
    """Each axis resolved on its own: (top, bottom) from H, (left, right) from W."""
    pads = resolve_padding(
        "same", kernel_size=kernel, stride=stride, dilation=dilation, input_size=size
    )
    expected = [
        ref_same_padding(*args) for args in zip(size, kernel, stride, dilation, strict=True)
    ]
    assert pads == (*expected[0], *expected[1])


@pytest.mark.parametrize(
    ("size", "k", "s", "d", "expected"),
    [
        (5, 3, 1, 1, (1, 1)),  # odd kernel: centred
        (5, 4, 1, 1, (1, 2)),  # even kernel: the extra one after
        (5, 3, 2, 1, (1, 1)),  # out 3: (3-1)*2 + 3 - 5 = 2
        (6, 3, 2, 1, (0, 1)),  # out 3: (3-1)*2 + 3 - 6 = 1
        (6, 1, 2, 1, (0, 0)),  # 1x1 at stride 2 needs nothing
        (7, 3, 1, 2, (2, 2)),  # dilated span 5
        (4, 5, 3, 1, (2, 2)),  # out 2: 1*3 + 4 + 1 - 4 = 4
    ],
)
def test_same_worked_examples(size, k, s, d, expected):
    """TensorFlow's rule by hand: out = ceil(in/s), total = max((out-1)*s + (k-1)*d + 1 - in, 0)."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    assert expected == (total // 2, total - total // 2)
    assert (
        resolve_padding(
            "same", kernel_size=(k, 1), stride=(s, 1), dilation=(d, 1), input_size=(size, 1)
        )[:2]
        == expected
    )


@pytest.mark.parametrize(
    ("size", "k", "s", "d", "expected"),
    [
        (4, 3, 2, 1, (0, 1)),  # conv "same" on 8 at stride 2 pads (0, 1)
        (4, 1, 3, 1, (0, -2)),  # kernel shorter than the stride: two zero rows appended
        (3, 4, 2, 1, (1, 1)),  # conv "same" on 6: 2*2 + 3 + 1 - 6 = 2
        (3, 3, 1, 2, (2, 2)),  # dilated span 5 at stride 1
    ],
)
def test_transpose_same_worked_examples(size, k, s, d, expected):
    """Transposed "same" crops what conv2d "same" pads on an input of size*stride."""
    pads = resolve_padding(
        "same",
        kernel_size=(k, 1),
        stride=(s, 1),
        dilation=(d, 1),
        input_size=(size, 1),
        transpose=True,
    )
    assert pads[:2] == expected
    assert (size - 1) * s - sum(pads[:2]) + d * (k - 1) + 1 == size * s


@pytest.mark.parametrize("mode", PAD_MODES)
def test_padding_keeps_leading_axes_and_dtype(mode):
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    y = _padded(x, (1, 2, 2, 1), mode)
    assert y.dtype == np.float32 and y.shape == (2, 6, 7)
    np.testing.assert_array_equal(y, ref_pad(x, (1, 2, 2, 1), mode).astype(np.float32))
    np.testing.assert_array_equal(y[:, 1:4, 2:6], x)


@pytest.mark.parametrize("mode", PAD_MODES)
def test_pad_adjoint_matches_the_reference_fold(mode, rng):
    """pad_adjoint sends each padded pixel's gradient where the reference's loop does."""
    size = (4, 3)
    top, bottom, left, right = pads = (3, 1, 2, 2) if mode == "reflect" else (9, 1, 2, 7)
    g = rng.standard_normal((2, 1, size[0] + top + bottom, size[1] + left + right))
    rows = ref_source_index(size[0], top, bottom, mode)
    cols = ref_source_index(size[1], left, right, mode)
    expected = np.zeros((2, 1, *size))
    for p in range(g.shape[2]):
        for q in range(g.shape[3]):
            if rows[p] >= 0 and cols[q] >= 0:
                expected[..., rows[p], cols[q]] += g[..., p, q]
    np.testing.assert_allclose(pad_adjoint(g, pads, mode, size), expected, rtol=1e-12)


def test_reflect_limits_are_per_side_and_axis():
    check_pad_mode("reflect", (2, 2, 4, 4), (3, 5))  # each side smaller than its axis
    for pads in [(3, 0, 0, 0), (0, 3, 0, 0), (0, 0, 5, 0), (0, 0, 0, 5)]:
        with pytest.raises(ParameterError, match="reflect padding"):
            check_pad_mode("reflect", pads, (3, 5))


@pytest.mark.parametrize("mode", PAD_MODES)
@given(data=st.data())
def test_integer_windows_are_the_divided_images_windows(mode, data):
    """With a divisor, every window (views inside, copies at the borders) holds exactly
    what dividing the whole image first would."""
    h, w = data.draw(st.integers(2, 7)), data.draw(st.integers(2, 7))
    pads = tuple(data.draw(st.integers(0, 1 if mode == "reflect" else 4)) for _ in range(4))
    stored = np.random.default_rng(h + 10 * w).integers(0, 256, (1, h, w, 3), np.uint8)
    x = stored.transpose(0, 3, 1, 2)  # channels last in memory, as a decoder leaves them
    full = ref_pad(np.divide(x, np.float32(255), dtype=np.float32), pads, mode)
    source = PaddedSource(x, pads, mode, divisor=255)
    assert source.dtype == np.float32
    r0 = data.draw(st.integers(0, full.shape[2] - 1))
    r1 = data.draw(st.integers(r0 + 1, full.shape[2]))
    c0 = data.draw(st.integers(0, full.shape[3] - 1))
    c1 = data.draw(st.integers(c0 + 1, full.shape[3]))
    window = source.window(r0, r1, c0, c1)
    assert window.dtype == np.float32
    np.testing.assert_array_equal(window, full[:, :, r0:r1, c0:c1])


def test_remapped_sources_read_through_both_maps(rng):
    x = rng.standard_normal((1, 2, 4, 5))
    padded = PaddedSource(x, (2, 1, 3, 2), "replicate")
    rows, cols = np.array([-1, 0, 3, 6, 6, -1]), np.array([8, 0, -1, 4])
    expected = ref_pad(x, (2, 1, 3, 2), "replicate")[:, :, np.maximum(rows, 0)]
    expected = expected[..., np.maximum(cols, 0)]
    expected[:, :, rows < 0] = 0
    expected[..., cols < 0] = 0
    window = padded.remapped(rows, cols).window(0, 6, 0, 4)
    np.testing.assert_array_equal(window, expected)
