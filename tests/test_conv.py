"""conv2d and conv_transpose2d against the seed, the reference loops and PyTorch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from convcli import (
    ConvcliError,
    ParameterError,
    conv2d,
    conv2d_output_shape,
    conv_transpose2d,
    conv_transpose2d_output_shape,
)
from tests.conftest import assert_close
from tests.reference import ref_conv2d, ref_conv_transpose2d, ref_pad
from tests.strategies import conv_cases, transpose_cases

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # torch is an optional oracle, never a dependency
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")
TORCH_MODES = {
    "zeros": None,
    "reflect": "reflect",
    "replicate": "replicate",
    "circular": "circular",
}


# The seed's worked examples -------------------------------------------------------------


def test_seed_forward_example(rng):
    """x (10,3,32,32), weight (1,3,5,5), pad 2, stride 1 -> (10,1,32,32), the seed's loop."""
    x = rng.standard_normal((10, 3, 32, 32))
    w = rng.standard_normal((1, 3, 5, 5))
    b = rng.standard_normal(1)
    y = conv2d(x, w, b, padding=2, stride=1)
    assert y.shape == (10, 1, 32, 32)
    x_pad = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    expected = np.zeros((10, 1, 32, 32))
    for n in range(10):
        for h in range(32):
            for v in range(32):
                expected[n, 0, h, v] = np.sum(x_pad[n, :, h : h + 5, v : v + 5] * w[0]) + b[0]
    assert_close(y, expected)


def test_seed_output_size_formula():
    """W_out = 1 + (W - F + 2P) / S, and the transposed (W - 1)S + F - 2P."""
    for size, k, p, s in [(32, 5, 2, 1), (4, 3, 1, 2), (7, 3, 0, 2), (224, 7, 3, 2)]:
        out = conv2d_output_shape((1, 1, size, size), (1, 1, k, k), stride=s, padding=p)
        assert out[2:] == (1 + (size - k + 2 * p) // s,) * 2
    for size, k, p, s in [(2, 3, 1, 2), (4, 4, 1, 2), (5, 3, 0, 1)]:
        out = conv_transpose2d_output_shape((1, 1, size, size), (1, 1, k, k), stride=s, padding=p)
        assert out[2:] == ((size - 1) * s + k - 2 * p,) * 2


def test_seed_transpose_1d_example():
    """[a, b] with [x, y, z], stride 2 -> [ax, ay, az + bx, by, bz]."""
    a, b = 2.0, 3.0
    x, y, z = 5.0, 7.0, 11.0
    out = conv_transpose2d(np.array([[[[a, b]]]]), np.array([[[[x, y, z]]]]), stride=2)
    np.testing.assert_allclose(out[0, 0, 0], [a * x, a * y, a * z + b * x, b * y, b * z])


def test_seed_transpose_restores_downsampled_size():
    """4x4 -> (3x3, stride 2, pad 1) -> 2x2 -> transposed with output_padding 1 -> 4x4."""
    down = conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), stride=2, padding=1)
    assert down.shape == (1, 1, 2, 2)
    up = conv_transpose2d(down, np.ones((1, 1, 3, 3)), stride=2, padding=1, output_padding=1)
    assert up.shape == (1, 1, 4, 4)


# Property tests against the reference ---------------------------------------------------


@given(conv_cases())
def test_conv2d_matches_reference_float64(case):
    y = conv2d(
        case.x,
        case.w,
        case.b,
        stride=case.stride,
        padding=case.padding,
        dilation=case.dilation,
        groups=case.groups,
        padding_mode=case.mode,
    )
    expected = ref_conv2d(
        case.x,
        case.w,
        case.b,
        stride=case.stride,
        pads=case.pads,
        dilation=case.dilation,
        groups=case.groups,
        mode=case.mode,
    )
    assert y.dtype == np.float64
    assert_close(y, expected)


@given(conv_cases(dtype=np.float32))
def test_conv2d_matches_reference_float32(case):
    y = conv2d(
        case.x,
        case.w,
        stride=case.stride,
        padding=case.padding,
        dilation=case.dilation,
        groups=case.groups,
        padding_mode=case.mode,
    )
    expected = ref_conv2d(
        case.x,
        case.w,
        stride=case.stride,
        pads=case.pads,
        dilation=case.dilation,
        groups=case.groups,
        mode=case.mode,
    )
    assert y.dtype == np.float32
    assert_close(y, expected)


@given(conv_cases(), st.sampled_from([np.float32, np.float64]))
def test_conv2d_unbatched_is_the_first_sample(case, dtype):
    x = case.x[0].astype(dtype)
    y = conv2d(
        x,
        case.w,
        stride=case.stride,
        padding=case.padding,
        dilation=case.dilation,
        groups=case.groups,
        padding_mode=case.mode,
    )
    expected = conv2d(
        x[None],
        case.w,
        stride=case.stride,
        padding=case.padding,
        dilation=case.dilation,
        groups=case.groups,
        padding_mode=case.mode,
    )[0]
    assert y.shape == expected.shape and y.ndim == 3
    np.testing.assert_array_equal(y, expected)


@given(transpose_cases())
def test_conv_transpose2d_matches_reference(case):
    y = conv_transpose2d(
        case.x,
        case.w,
        case.b,
        stride=case.stride,
        padding=case.padding,
        output_padding=case.output_padding,
        dilation=case.dilation,
        groups=case.groups,
    )
    expected = ref_conv_transpose2d(
        case.x,
        case.w,
        case.b,
        stride=case.stride,
        pads=case.pads,
        output_padding=case.output_padding,
        dilation=case.dilation,
        groups=case.groups,
    )
    assert_close(y, expected)


@given(transpose_cases(dtype=np.float32))
def test_conv_transpose2d_float32(case):
    y = conv_transpose2d(
        case.x,
        case.w,
        stride=case.stride,
        padding=case.padding,
        output_padding=case.output_padding,
        dilation=case.dilation,
        groups=case.groups,
    )
    expected = ref_conv_transpose2d(
        case.x,
        case.w,
        stride=case.stride,
        pads=case.pads,
        output_padding=case.output_padding,
        dilation=case.dilation,
        groups=case.groups,
    )
    assert y.dtype == np.float32
    assert_close(y, expected)


@given(
    st.integers(1, 7), st.integers(1, 7), st.integers(1, 5), st.integers(1, 3), st.integers(1, 2)
)
def test_transpose_same_gives_exactly_input_times_stride(h, w, k, s, d):
    x = np.ones((1, 1, h, w))
    y = conv_transpose2d(x, np.ones((1, 1, k, k)), stride=s, dilation=d, padding="same")
    assert y.shape == (1, 1, h * s, w * s)


@given(conv_cases())
def test_output_shape_functions_agree_with_the_operations(case):
    y = conv2d(
        case.x,
        case.w,
        stride=case.stride,
        padding=case.padding,
        dilation=case.dilation,
        groups=case.groups,
        padding_mode=case.mode,
    )
    shape = conv2d_output_shape(
        case.x.shape,
        case.w.shape,
        stride=case.stride,
        padding=case.padding,
        dilation=case.dilation,
        groups=case.groups,
    )
    assert shape == y.shape


@pytest.mark.parametrize(
    ("x_dtype", "w_dtype", "expected"),
    [
        (np.float32, np.float32, np.float32),
        (np.float64, np.float64, np.float64),
        (np.float32, np.float64, np.float64),
        (np.uint8, np.float32, np.float32),
        (np.float16, np.float32, np.float32),
    ],
)
def test_result_dtype(x_dtype, w_dtype, expected):
    x = np.ones((1, 1, 5, 5), x_dtype)
    w = np.ones((1, 1, 3, 3), w_dtype)
    assert conv2d(x, w).dtype == expected
    assert conv_transpose2d(x, w).dtype == expected


def test_nan_stays_local_in_every_path():
    from convcli import _fast

    x = np.ones((1, 1, 40, 40), np.float32)
    x[0, 0, 20, 20] = np.nan
    y = conv2d(x, np.ones((1, 1, 9, 9), np.float32), padding="same")
    assert np.isnan(y).sum() == 81
    with _fast.force_path("direct"):
        assert np.isnan(conv2d(x, np.ones((1, 1, 3, 3)), padding="same")).sum() == 9


# Against PyTorch --------------------------------------------------------------------------


@needs_torch
@given(conv_cases(modes=tuple(TORCH_MODES)))
def test_conv2d_matches_torch(case):
    xt = torch.from_numpy(case.x)
    top, bottom, left, right = case.pads
    if case.mode == "circular":  # torch wraps at most once; we follow numpy.pad beyond that
        assume(max(top, bottom) <= case.x.shape[2] and max(left, right) <= case.x.shape[3])
    if case.mode == "zeros":
        xt = F.pad(xt, (left, right, top, bottom))
    else:
        xt = F.pad(xt, (left, right, top, bottom), mode=TORCH_MODES[case.mode])
    expected = F.conv2d(
        xt,
        torch.from_numpy(case.w),
        torch.from_numpy(case.b),
        stride=case.stride,
        dilation=case.dilation,
        groups=case.groups,
    ).numpy()
    y = conv2d(
        case.x,
        case.w,
        case.b,
        stride=case.stride,
        padding=case.padding,
        dilation=case.dilation,
        groups=case.groups,
        padding_mode=case.mode,
    )
    assert_close(y, expected)


@needs_torch
@given(transpose_cases())
def test_conv_transpose2d_matches_torch(case):
    top, _, left, _ = case.pads
    expected = F.conv_transpose2d(
        torch.from_numpy(case.x),
        torch.from_numpy(case.w),
        torch.from_numpy(case.b),
        stride=case.stride,
        padding=(top, left),
        output_padding=case.output_padding,
        dilation=case.dilation,
        groups=case.groups,
    ).numpy()
    y = conv_transpose2d(
        case.x,
        case.w,
        case.b,
        stride=case.stride,
        padding=case.padding,
        output_padding=case.output_padding,
        dilation=case.dilation,
        groups=case.groups,
    )
    assert_close(y, expected)


@needs_torch
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_same_padding_matches_torch_at_stride_one_and_tf_rule_beyond(stride, k):
    x = np.random.default_rng(k).standard_normal((1, 2, 11, 8))
    w = np.random.default_rng(stride).standard_normal((3, 2, k, k))
    y = conv2d(x, w, padding="same", stride=stride)
    assert y.shape[2:] == (-(-11 // stride), -(-8 // stride))
    if stride == 1:
        with warnings.catch_warnings():  # torch notes that even kernels need a padded copy
            warnings.simplefilter("ignore", UserWarning)
            expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding="same").numpy()
        # torch puts an even kernel's extra row at the bottom/right too.
        assert_close(y, expected)


# Errors ------------------------------------------------------------------------------------


ERRORS = [
    ("x", dict(x=np.ones((3, 3)), w=np.ones((1, 1, 3, 3)))),
    ("weight", dict(x=np.ones((1, 1, 5, 5)), w=np.ones((1, 3, 3)))),
    ("channels", dict(x=np.ones((1, 3, 5, 5)), w=np.ones((1, 2, 3, 3)))),
    ("groups", dict(x=np.ones((1, 4, 5, 5)), w=np.ones((3, 2, 3, 3)), groups=2)),
    ("groups", dict(x=np.ones((1, 3, 5, 5)), w=np.ones((2, 1, 3, 3)), groups=2)),
    ("groups", dict(x=np.ones((1, 3, 5, 5)), w=np.ones((3, 3, 3, 3)), groups=0)),
    ("stride", dict(x=np.ones((1, 1, 5, 5)), w=np.ones((1, 1, 3, 3)), stride=0)),
    ("stride", dict(x=np.ones((1, 1, 5, 5)), w=np.ones((1, 1, 3, 3)), stride=(1, -2))),
    ("dilation", dict(x=np.ones((1, 1, 5, 5)), w=np.ones((1, 1, 3, 3)), dilation=0)),
    ("padding", dict(x=np.ones((1, 1, 5, 5)), w=np.ones((1, 1, 3, 3)), padding=-1)),
    ("padding", dict(x=np.ones((1, 1, 5, 5)), w=np.ones((1, 1, 3, 3)), padding=(1, 2, 3))),
    ("padding", dict(x=np.ones((1, 1, 5, 5)), w=np.ones((1, 1, 3, 3)), padding="full")),
    (
        "kernel 7x7 (dilation 1) does not fit the padded input 5x5",
        dict(x=np.ones((1, 1, 5, 5)), w=np.ones((1, 1, 7, 7))),
    ),
    ("dilation 3", dict(x=np.ones((1, 1, 5, 5)), w=np.ones((1, 1, 3, 3)), dilation=3)),
    ("padding_mode", dict(x=np.ones((1, 1, 5, 5)), w=np.ones((1, 1, 3, 3)), padding_mode="mirror")),
    (
        "reflect",
        dict(x=np.ones((1, 1, 3, 3)), w=np.ones((1, 1, 3, 3)), padding=3, padding_mode="reflect"),
    ),
    ("bias", dict(x=np.ones((1, 1, 5, 5)), w=np.ones((2, 1, 3, 3)), b=np.ones(3))),
    ("x", dict(x=np.ones((1, 1, 5, 5), complex), w=np.ones((1, 1, 3, 3)))),
]


@pytest.mark.parametrize(("needle", "args"), ERRORS, ids=[e[0][:20] for e in ERRORS])
def test_conv2d_errors_name_the_parameter(needle, args):
    args = dict(args)
    x, w, b = args.pop("x"), args.pop("w"), args.pop("b", None)
    with pytest.raises(ParameterError, match=needle.split()[0]) as info:
        conv2d(x, w, b, **args)
    assert needle in str(info.value)
    assert isinstance(info.value, ConvcliError) and isinstance(info.value, ValueError)
    # The shape calculator validates shapes the same way (it knows no data, bias or mode).
    if b is None and "padding_mode" not in args and x.dtype.kind == "f" and needle != "x":
        with pytest.raises(ParameterError, match=needle.split()[0]):
            conv2d_output_shape(x.shape, w.shape, **args)


TRANSPOSE_ERRORS = [
    ("output_padding", dict(stride=2, output_padding=2)),
    ("output_padding", dict(stride=1, output_padding=1)),
    ("output_padding", dict(output_padding=-1)),
    ("stride", dict(stride=0)),
    ("padding", dict(padding=5)),
]


@pytest.mark.parametrize(("needle", "args"), TRANSPOSE_ERRORS)
def test_conv_transpose2d_errors_name_the_parameter(needle, args):
    x, w = np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3))
    with pytest.raises(ParameterError, match=needle):
        conv_transpose2d(x, w, **args)
    with pytest.raises(ParameterError, match=needle):
        conv_transpose2d_output_shape(x.shape, w.shape, **args)


def test_transpose_weight_channel_mismatch():
    with pytest.raises(ParameterError, match="weight"):
        conv_transpose2d(np.ones((1, 3, 4, 4)), np.ones((2, 1, 3, 3)))


def test_reference_pad_is_numpy_pad():
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    assert ref_pad(x, (1, 0, 0, 2), "replicate")[0, 0].tolist()[0] == [0, 1, 2, 3, 3, 3]
