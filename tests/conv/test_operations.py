"""conv2d and conv_transpose2d against the seed, the reference loops and PyTorch."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from convcli import (
    ConvcliError,
    ParameterError,
    conv2d,
    conv2d_backward,
    conv2d_output_shape,
    conv_transpose2d,
    conv_transpose2d_output_shape,
)
from convcli.conv import engines
from convcli.conv.operations import conv2d_into
from convcli.conv.padding import PaddedSource
from convcli.conv.transposed import transpose_into
from tests.conftest import assert_close, term_scale
from tests.reference import ref_conv2d, ref_conv_transpose2d, ref_pad
from tests.strategies import any_transpose_cases, conv_cases

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
    assert_close(ref_conv2d(x, w, b, pads=(2, 2, 2, 2)), expected)  # the oracle agrees
    # In float32 too: the result stays float32, within 1e-5 of the output's scale.
    y32 = conv2d(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), padding=2)
    assert y32.dtype == np.float32
    assert_close(y32, ref_conv2d(x.astype(np.float32), w.astype(np.float32), b, pads=(2,) * 4))


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
    inputs, kernel = np.array([[[[a, b]]]]), np.array([[[[x, y, z]]]])
    expected = [a * x, a * y, a * z + b * x, b * y, b * z]
    np.testing.assert_allclose(conv_transpose2d(inputs, kernel, stride=2)[0, 0, 0], expected)
    np.testing.assert_allclose(
        ref_conv_transpose2d(inputs, kernel, stride=(1, 2))[0, 0, 0], expected
    )
    # Same thing in the other orientation: a 2x1 image and a 3x1 kernel.
    column = conv_transpose2d(inputs.swapaxes(2, 3), kernel.swapaxes(2, 3), stride=2)
    np.testing.assert_allclose(column[0, 0, :, 0], expected)


def test_seed_convolution_as_matrix_product():
    """[a, b, c, d] with [x, y, z], pad 1, stride 1: the seed's sliding-row matrix times the
    padded input gives [ay + bz, ax + by + cz, bx + cy + dz, cx + dy] (the seed's first row
    has a typo); the transposed matrix, its adjoint, maps 4 values back onto 6 positions."""
    a, b, c, d = 2.0, 3.0, 5.0, 7.0
    x, y, z = 11.0, 13.0, 17.0
    kernel = np.array([[[[x, y, z]]]])
    out = conv2d(np.array([[[[a, b, c, d]]]]), kernel, padding=(0, 1))
    np.testing.assert_allclose(
        out[0, 0, 0], [a * y + b * z, a * x + b * y + c * z, b * x + c * y + d * z, c * x + d * y]
    )
    matrix = np.array(
        [[x, y, z, 0, 0, 0], [0, x, y, z, 0, 0], [0, 0, x, y, z, 0], [0, 0, 0, x, y, z]]
    )
    primes = np.array([1.0, -2.0, 4.0, 0.5])  # a', b', c', d'
    full = conv_transpose2d(primes.reshape(1, 1, 1, 4), kernel)
    np.testing.assert_allclose(full[0, 0, 0], matrix.T @ primes)
    # pad 1 drops the positions that were padding before the convolution: the adjoint.
    cropped = conv_transpose2d(primes.reshape(1, 1, 1, 4), kernel, padding=(0, 1))
    np.testing.assert_allclose(cropped[0, 0, 0], (matrix.T @ primes)[1:-1])


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
    assert y.dtype == np.float32
    assert_close(y, expected, scale=term_scale(case.x, case.w))


@given(conv_cases(), st.sampled_from([np.float32, np.float64]))
def test_conv2d_unbatched_matches_reference(case, dtype):
    """(C, H, W) in, (F, H_out, W_out) out: the reference's first sample."""
    x, w = case.x[0].astype(dtype), case.w.astype(dtype)
    y = conv2d(
        x,
        w,
        case.b,
        stride=case.stride,
        padding=case.padding,
        dilation=case.dilation,
        groups=case.groups,
        padding_mode=case.mode,
    )
    expected = ref_conv2d(
        x[None],
        w,
        case.b,
        stride=case.stride,
        pads=case.pads,
        dilation=case.dilation,
        groups=case.groups,
        mode=case.mode,
    )[0]
    assert y.ndim == 3 and y.dtype == dtype
    assert_close(y, expected, scale=term_scale(case.x, case.w))


# Transposed convolution ---------------------------------------------------------------------


def _transpose(case, **kwargs) -> np.ndarray:
    return conv_transpose2d(
        case.x,
        case.w,
        case.b,
        stride=case.stride,
        padding=case.padding,
        output_padding=case.output_padding,
        dilation=case.dilation,
        groups=case.groups,
        **kwargs,
    )


def _ref_transpose(case) -> np.ndarray:
    x = case.x if case.x.ndim == 4 else case.x[None]
    y = ref_conv_transpose2d(
        x,
        case.w,
        case.b,
        stride=case.stride,
        pads=case.pads,
        output_padding=case.output_padding,
        dilation=case.dilation,
        groups=case.groups,
    )
    return y if case.x.ndim == 4 else y[0]


@given(any_transpose_cases())
def test_conv_transpose2d_matches_reference(case):
    y = _transpose(case)
    assert y.dtype == np.float64
    assert_close(y, _ref_transpose(case))


@given(any_transpose_cases(dtype=np.float32))
def test_conv_transpose2d_float32(case):
    y = _transpose(case)
    assert y.dtype == np.float32
    assert_close(y, _ref_transpose(case), scale=term_scale(case.x, case.w))


@given(any_transpose_cases())
def test_transpose_output_shape_function_agrees(case):
    shape = conv_transpose2d_output_shape(
        case.x.shape,
        case.w.shape,
        stride=case.stride,
        padding=case.padding,
        output_padding=case.output_padding,
        dilation=case.dilation,
        groups=case.groups,
    )
    assert shape == _transpose(case).shape


@given(
    st.integers(1, 7), st.integers(1, 7), st.integers(1, 5), st.integers(1, 3), st.integers(1, 2)
)
def test_transpose_same_gives_exactly_input_times_stride(h, w, k, s, d):
    x = np.ones((1, 1, h, w))
    y = conv_transpose2d(x, np.ones((1, 1, k, k)), stride=s, dilation=d, padding="same")
    assert y.shape == (1, 1, h * s, w * s)
    assert (
        conv_transpose2d_output_shape(x.shape, (1, 1, k, k), stride=s, dilation=d, padding="same")
        == y.shape
    )


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


def _torch_conv_transpose2d(case) -> np.ndarray:
    """torch's transposed convolution; asymmetric or negative padding by cropping its full
    result (torch pads symmetrically only)."""
    top, bottom, left, right = case.pads
    x = torch.from_numpy(case.x)
    w, b = torch.from_numpy(case.w), torch.from_numpy(case.b)
    opts = dict(stride=case.stride, dilation=case.dilation, groups=case.groups)
    if top == bottom and left == right:
        return F.conv_transpose2d(
            x, w, b, padding=(top, left), output_padding=case.output_padding, **opts
        ).numpy()
    full = F.conv_transpose2d(x, w, **opts).numpy()
    out_h = full.shape[-2] - top - bottom + case.output_padding[0]
    out_w = full.shape[-1] - left - right + case.output_padding[1]
    y = np.zeros((*full.shape[:-2], out_h, out_w))
    kept = full[..., top : top + out_h, left : left + out_w]
    y[..., : kept.shape[-2], : kept.shape[-1]] = kept
    return y + case.b[:, None, None]


@needs_torch
@given(any_transpose_cases())
def test_conv_transpose2d_matches_torch(case):
    assert_close(_transpose(case), _torch_conv_transpose2d(case))


@needs_torch
@given(conv_cases(modes=tuple(TORCH_MODES)), any_transpose_cases())
def test_reference_matches_torch(case, tcase):
    """The oracle itself agrees with PyTorch, forward and transposed."""
    top, bottom, left, right = case.pads
    if case.mode == "circular":
        assume(max(top, bottom) <= case.x.shape[2] and max(left, right) <= case.x.shape[3])
    mode = "constant" if case.mode == "zeros" else case.mode
    xt = F.pad(torch.from_numpy(case.x), (left, right, top, bottom), mode=mode)
    expected = F.conv2d(
        xt,
        torch.from_numpy(case.w),
        torch.from_numpy(case.b),
        stride=case.stride,
        dilation=case.dilation,
        groups=case.groups,
    ).numpy()
    got = ref_conv2d(
        case.x,
        case.w,
        case.b,
        stride=case.stride,
        pads=case.pads,
        dilation=case.dilation,
        groups=case.groups,
        mode=case.mode,
    )
    assert_close(got, expected)
    assert_close(_ref_transpose(tcase), _torch_conv_transpose2d(tcase))


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


X5, W3 = np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3))

# (text the message must contain: the parameter's name first, then the value, arguments)
ERRORS = [
    ("x", "2 dimensions", dict(x=np.ones((3, 3)), w=W3)),
    ("x", "5 dimensions", dict(x=np.ones((1, 1, 1, 5, 5)), w=W3)),
    ("weight", "3 dimensions", dict(x=X5, w=np.ones((1, 3, 3)))),
    ("channels", "3", dict(x=np.ones((1, 3, 5, 5)), w=np.ones((1, 2, 3, 3)))),
    ("groups", "2", dict(x=np.ones((1, 4, 5, 5)), w=np.ones((3, 2, 3, 3)), groups=2)),
    ("groups", "2", dict(x=np.ones((1, 3, 5, 5)), w=np.ones((2, 1, 3, 3)), groups=2)),
    ("groups", "0", dict(x=np.ones((1, 3, 5, 5)), w=np.ones((3, 3, 3, 3)), groups=0)),
    ("groups", "2.0", dict(x=np.ones((1, 4, 5, 5)), w=np.ones((2, 2, 3, 3)), groups=2.0)),
    ("stride", "0", dict(x=X5, w=W3, stride=0)),
    ("stride", "-2", dict(x=X5, w=W3, stride=(1, -2))),
    ("stride", "1.5", dict(x=X5, w=W3, stride=1.5)),
    ("stride", "(1, 2, 3)", dict(x=X5, w=W3, stride=(1, 2, 3))),
    ("dilation", "0", dict(x=X5, w=W3, dilation=0)),
    ("dilation", "0", dict(x=X5, w=W3, dilation=(0, 1))),
    ("padding", "-1", dict(x=X5, w=W3, padding=-1)),
    ("padding", "(1, 2, 3)", dict(x=X5, w=W3, padding=(1, 2, 3))),
    ("padding", "full", dict(x=X5, w=W3, padding="full")),
    ("padding", "None", dict(x=X5, w=W3, padding=None)),
    (
        "kernel 7x7 (dilation 1) does not fit the padded input 5x5",
        "7x7",
        dict(x=X5, w=np.ones((1, 1, 7, 7))),
    ),
    ("dilation 3", "5x5", dict(x=X5, w=W3, dilation=3)),
    ("padding_mode", "mirror", dict(x=X5, w=W3, padding_mode="mirror")),
    ("reflect", "3x3", dict(x=np.ones((1, 1, 3, 3)), w=W3, padding=3, padding_mode="reflect")),
    ("reflect", "(0, 0, 0, 5)", dict(x=X5, w=W3, padding=(0, 0, 0, 5), padding_mode="reflect")),
    ("bias", "(3,)", dict(x=X5, w=np.ones((2, 1, 3, 3)), b=np.ones(3))),
    ("bias", "complex", dict(x=X5, w=W3, b=np.ones(1, complex))),
    ("x", "complex", dict(x=np.ones((1, 1, 5, 5), complex), w=W3)),
    ("weight", "bool", dict(x=X5, w=np.ones((1, 1, 3, 3), bool))),
    ("x", "", dict(x=[[[1.0, 2.0], [3.0]]], w=W3)),
]


@pytest.mark.parametrize(
    ("needle", "value", "args"), ERRORS, ids=[f"{e[0][:12]}-{e[1]}" for e in ERRORS]
)
def test_conv2d_errors_name_the_parameter(needle, value, args):
    args = dict(args)
    x, w, b = args.pop("x"), args.pop("w"), args.pop("b", None)
    with pytest.raises(ParameterError, match=needle.split()[0]) as info:
        conv2d(x, w, b, **args)
    message = str(info.value)
    assert needle in message and value in message, message
    assert isinstance(info.value, ConvcliError) and isinstance(info.value, ValueError)
    assert "\n" not in message
    # Backward validates its arguments the same way.
    if b is None:
        with pytest.raises(ParameterError, match=needle.split()[0]):
            conv2d_backward(np.ones((1, 1, 3, 3)), x, w, **args)
    # The shape calculator raises the same error (it knows no data, bias or mode).
    if b is None and "padding_mode" not in args and needle not in ("x", "weight"):
        with pytest.raises(ParameterError) as same:
            conv2d_output_shape(np.shape(x), np.shape(w), **args)
        assert str(same.value) == message


def test_reflect_padding_up_to_input_size_minus_one_is_accepted():
    y = conv2d(np.ones((1, 1, 3, 4)), W3, padding=(2, 2, 3, 3), padding_mode="reflect")
    assert y.shape == (1, 1, 5, 8)


T_X, T_W = np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3))

TRANSPOSE_ERRORS = [
    ("output_padding", "2", dict(stride=2, output_padding=2)),
    ("output_padding", "1", dict(stride=1, output_padding=1)),
    ("output_padding", "3", dict(stride=2, output_padding=(1, 3))),
    ("output_padding", "2", dict(stride=2, dilation=2, output_padding=2)),
    ("output_padding", "-1", dict(output_padding=-1)),
    ("stride", "0", dict(stride=0)),
    ("dilation", "0", dict(dilation=(1, 0))),
    ("padding", "5", dict(padding=5)),
    ("padding", "-1", dict(padding=-1)),
    ("padding", "full", dict(padding="full")),
    ("groups", "2", dict(x=np.ones((1, 3, 2, 2)), w=np.ones((3, 1, 3, 3)), groups=2)),
    ("x", "2 dimensions", dict(x=np.ones((2, 2)))),
    ("weight", "3 dimensions", dict(w=np.ones((1, 3, 3)))),
    ("weight", "3", dict(x=np.ones((1, 3, 4, 4)), w=np.ones((2, 1, 3, 3)))),
    ("bias", "(2,)", dict(w=np.ones((1, 1, 3, 3)), b=np.ones(2))),
]


@pytest.mark.parametrize(
    ("needle", "value", "args"),
    TRANSPOSE_ERRORS,
    ids=[f"{e[0]}-{e[1]}" for e in TRANSPOSE_ERRORS],
)
def test_conv_transpose2d_errors_name_the_parameter(needle, value, args):
    args = dict(args)
    x, w, b = args.pop("x", T_X), args.pop("w", T_W), args.pop("b", None)
    with pytest.raises(ParameterError, match=needle) as info:
        conv_transpose2d(x, w, b, **args)
    assert value in str(info.value), str(info.value)
    if b is None and needle not in ("x", "weight"):
        with pytest.raises(ParameterError) as same:
            conv_transpose2d_output_shape(x.shape, w.shape, **args)
        assert str(same.value) == str(info.value)


def test_output_padding_may_reach_the_dilation():
    """PyTorch's rule: output_padding < max(stride, dilation)."""
    y = conv_transpose2d(np.ones((1, 1, 3, 3)), T_W, stride=1, dilation=2, output_padding=1)
    assert y.shape == (1, 1, 8, 8)


def test_backward_errors_name_the_parameter():
    x, w = np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3))
    with pytest.raises(ParameterError, match=r"grad_output.*\(1, 3, 3, 3\)"):
        conv2d_backward(np.ones((1, 3, 4, 4)), x, w)
    with pytest.raises(ParameterError, match="grad_output"):
        conv2d_backward(np.ones((1, 3, 3, 3), complex), x, w)


def test_reference_pad_is_numpy_pad():
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    assert ref_pad(x, (1, 0, 0, 2), "replicate")[0, 0].tolist()[0] == [0, 1, 2, 3, 3, 3]


def test_conv2d_output_shape_validates_the_padding_mode_too():
    with pytest.raises(ParameterError, match="reflect padding"):
        conv2d_output_shape((1, 1, 5, 5), (1, 1, 3, 3), padding=5, padding_mode="reflect")
    with pytest.raises(ParameterError, match="padding_mode"):
        conv2d_output_shape((1, 1, 5, 5), (1, 1, 3, 3), padding_mode="mirror")
    assert conv2d_output_shape((1, 1, 5, 5), (1, 1, 3, 3), padding=5, padding_mode="symmetric") == (
        1,
        1,
        13,
        13,
    )


class Gathered:
    """A sink that keeps every tile, checking that none is put twice."""

    def __init__(self, shape):
        self.shape = shape
        self.values = np.full(shape, np.nan, np.float32)
        self.seen = np.zeros(shape, bool)
        self.lock = threading.Lock()

    def put(self, at, block):
        with self.lock:
            assert not self.seen[at[0], :, at[1], at[2]].any()
            self.seen[at[0], :, at[1], at[2]] = True
            self.values[at[0], :, at[1], at[2]] = block


@pytest.mark.parametrize("path", engines.PATHS)
@given(case=conv_cases(dtype=np.float32, max_size=12))
def test_tiles_into_a_sink_from_integers_are_conv2d_of_the_divided_image(path, case):
    """Integers read a window at a time and tiles put one by one: bit for bit the
    in-memory conv2d of the image divided first, plus bias, on every path and tile size."""
    stored = np.random.default_rng(case.x.size).integers(0, 65536, case.x.shape, np.uint16)
    floats = np.divide(stored, np.float32(65535), dtype=np.float32)
    options = case.options()
    with engines.force_path(path), engines.tile_elements(97):
        expected = conv2d(floats, case.w.astype(np.float32), case.b, **options)
        sink = Gathered(expected.shape)
        conv2d_into(sink, stored, case.w.astype(np.float32), case.b, divisor=65535, **options)
    assert sink.seen.all()
    np.testing.assert_array_equal(sink.values, expected)


@pytest.mark.parametrize("path", engines.PATHS)
@pytest.mark.parametrize("mode", ["zeros", "replicate", "reflect"])
def test_transposed_phases_into_a_sink_equal_the_array_result(path, mode, rng):
    """Every phase's tiles land on their rows and columns; a padded source is read
    through its maps as if padded whole; a stride longer than the kernel (phases no tap
    reaches) and Inf in the weight go through the whole-array path."""
    x = rng.integers(0, 256, (1, 3, 11, 9), np.uint8)
    source = PaddedSource(x, (2, 2, 1, 1) if mode != "zeros" else (0,) * 4, mode, divisor=255)
    padded = source.window(0, source.shape[-2], 0, source.shape[-1])
    for weight, stride in [
        (rng.standard_normal((3, 1, 4, 4)), (2, 2)),
        (rng.standard_normal((3, 2, 3, 5)), (3, 2)),
        (rng.standard_normal((3, 1, 2, 2)), (3, 3)),  # phases without taps
        (np.where(rng.random((3, 1, 3, 3)) < 0.2, np.inf, 1.0), (2, 2)),
    ]:
        weight = weight.astype(np.float32)
        filters = weight.shape[1] * 3
        bias = rng.standard_normal(filters).astype(np.float32)
        shape = (1, filters, 23, 19)
        options = dict(stride=stride, dilation=(1, 1), groups=3, top=3, left=2)
        with engines.force_path(path), np.errstate(invalid="ignore"):  # 0 * Inf
            expected = transpose_into(padded, weight, out=np.zeros(shape, np.float32), **options)
            expected += bias[None, :, None, None]
            sink = Gathered(shape)
            transpose_into(source, weight, out=sink, bias=bias, **options)
        assert sink.seen.all()
        np.testing.assert_array_equal(sink.values, expected)


@pytest.mark.parametrize("path", engines.PATHS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_unsigned_integer_input_is_summed_without_wrapping_around(path, dtype):
    """The elementwise engines summed 8-bit taps in 8 bits (200 * 9 came out 1544)."""
    x = np.full((1, 1, 6, 7), np.iinfo(dtype).max - 5, dtype)
    weight = np.ones((1, 1, 3, 3))
    weight[0, 0, 1, 1] = 5
    with engines.force_path(path):
        result = conv2d(x, weight)
    np.testing.assert_allclose(result, ref_conv2d(x, weight), rtol=1e-6)
