"""Geometry: validated shapes and resolved padding, shared by operations and `shape`."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from convcli import ParameterError, conv2d, conv_transpose2d
from convcli.conv.geometry import conv2d_geometry, conv_transpose2d_geometry, pair
from tests.strategies import any_transpose_cases, conv_cases


def test_conv_geometry_fields():
    geo = conv2d_geometry((3, 32, 30), (8, 3, 4, 4), stride=2, padding="same", dilation=1)
    assert geo.input_shape == (1, 3, 32, 30)
    assert geo.padding == (1, 1, 1, 1)
    assert geo.output_shape == (1, 8, 16, 15)
    assert geo.stride == (2, 2) and geo.dilation == (1, 1) and not geo.transpose
    assert geo.kernel_size == (4, 4)


def test_transpose_geometry_fields():
    geo = conv_transpose2d_geometry(
        (2, 4, 5, 6), (4, 3, 3, 3), stride=2, padding=1, output_padding=1, groups=2
    )
    assert geo.output_shape == (2, 6, 10, 12)
    assert geo.transpose and geo.output_padding == (1, 1) and geo.padding == (1, 1, 1, 1)


def test_transpose_same_with_kernel_smaller_than_stride_appends_rows():
    geo = conv_transpose2d_geometry((1, 1, 4, 4), (1, 1, 1, 1), stride=3, padding="same")
    assert geo.output_shape == (1, 1, 12, 12)
    assert geo.padding == (0, -2, 0, -2)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        (dict(input_shape=(1, 2, 3, 4, 5), weight_shape=(1, 1, 1, 1)), "input_shape"),
        (dict(input_shape=(1, 0, 3, 4), weight_shape=(1, 1, 1, 1)), "empty"),
        (dict(input_shape=(1, 2, 3, 4), weight_shape=(1, 2, 1)), "weight"),
        (dict(input_shape=(1, 2, 5, 5), weight_shape=(1, 2, 9, 1)), "does not fit"),
        (dict(input_shape=(1, 2, 5, 5), weight_shape=(3, 1, 1, 1), groups=2), "groups=2"),
    ],
)
def test_conv_geometry_errors(kwargs, needle):
    with pytest.raises(ParameterError, match=needle):
        conv2d_geometry(**kwargs)


def test_pair():
    assert pair(3, "stride") == (3, 3)
    assert pair([1, 2], "dilation") == (1, 2)
    assert pair(0, "output_padding", minimum=0) == (0, 0)
    with pytest.raises(ParameterError, match="stride must be positive, got 0"):
        pair(0, "stride")
    with pytest.raises(ParameterError, match=r"one value, \(v,\) or \(h, w\); got 3 values"):
        pair((1, 2, 3), "stride")
    with pytest.raises(ParameterError, match="got 0 values"):
        pair((), "stride")


ONE_ELEMENT = [
    dict(stride=(2,)),
    dict(stride=[3]),
    dict(padding=(1,)),
    dict(padding=[2]),
    dict(dilation=(2,)),
    dict(stride=(2,), padding=(1,), dilation=[2]),
]


@pytest.mark.parametrize("kwargs", ONE_ELEMENT, ids=[str(k) for k in ONE_ELEMENT])
def test_one_element_sequences_are_accepted_as_torch_accepts_them(kwargs):
    """PyTorch reads stride=(2,), padding=(1,), dilation=(2,) (and output_padding=(1,) of
    the transpose) as the value for both axes: so do the operations and the geometry."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 9, 8)).astype(np.float32)
    w = rng.standard_normal((2, 2, 3, 3)).astype(np.float32)
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    expected = torch.nn.functional.conv2d(tx, tw, **kwargs).numpy()
    np.testing.assert_allclose(conv2d(x, w, **kwargs), expected, rtol=1e-5, atol=1e-5)
    assert conv2d_geometry(x.shape, w.shape, **kwargs).output_shape == expected.shape
    transposed = dict(kwargs, output_padding=(1,)) if "stride" in kwargs else kwargs
    expected = torch.nn.functional.conv_transpose2d(tx, tw, **transposed).numpy()
    result = conv_transpose2d(x, w, **transposed)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-5)
    assert conv_transpose2d_geometry(x.shape, w.shape, **transposed).output_shape == result.shape


@pytest.mark.parametrize("name", ["stride", "padding", "dilation"])
@pytest.mark.parametrize("value", [(), (1, 1, 1)])
def test_sequences_torch_refuses_are_refused_without_contradiction(name, value):
    """Torch refuses () and 3 values for stride, padding and dilation; so does convcli, and
    the message lists the one-element form it accepts along with the count it got."""
    torch = pytest.importorskip("torch")
    x, w = np.ones((1, 1, 6, 6), np.float32), np.ones((1, 1, 3, 3), np.float32)
    with pytest.raises(RuntimeError):
        torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), **{name: value})
    with pytest.raises(ParameterError) as err:
        conv2d(x, w, **{name: value})
    assert f"got {len(value)} values" in str(err.value)
    assert "(p,)" in str(err.value) or "(v,)" in str(err.value)


@given(conv_cases())
def test_conv_geometry_matches_the_operation(case):
    """Padding resolved as the reference reads the spec; output shape as conv2d returns."""
    opts = dict(
        stride=case.stride, padding=case.padding, dilation=case.dilation, groups=case.groups
    )
    geo = conv2d_geometry(case.x.shape, case.w.shape, padding_mode=case.mode, **opts)
    assert geo.padding == case.pads
    assert geo.padding_mode == case.mode
    assert geo.stride == case.stride and geo.dilation == case.dilation
    assert geo.groups == case.groups and geo.output_padding == (0, 0) and not geo.transpose
    assert geo.input_shape == case.x.shape and geo.weight_shape == case.w.shape
    y = conv2d(case.x, case.w, padding_mode=case.mode, **opts)
    assert geo.output_shape == y.shape
    unbatched = conv2d_geometry(case.x.shape[1:], case.w.shape, padding_mode=case.mode, **opts)
    assert unbatched.input_shape == (1, *case.x.shape[1:])
    assert unbatched.output_shape == (1, *y.shape[1:])


@given(any_transpose_cases())
def test_transpose_geometry_matches_the_operation(case):
    opts = dict(
        stride=case.stride,
        padding=case.padding,
        output_padding=case.output_padding,
        dilation=case.dilation,
        groups=case.groups,
    )
    geo = conv_transpose2d_geometry(case.x.shape, case.w.shape, **opts)
    assert geo.transpose and geo.padding == case.pads
    assert geo.output_padding == case.output_padding
    y = conv_transpose2d(case.x, case.w, **opts)
    assert geo.output_shape == (y.shape if y.ndim == 4 else (1, *y.shape))


CONV_ERRORS = [
    dict(stride=0),
    dict(dilation=(1, 0)),
    dict(padding=-2),
    dict(padding=(1, 1, 1)),
    dict(padding="full"),
    dict(groups=3),
    dict(padding_mode="mirror"),
    dict(padding=(0, 0, 6, 0), padding_mode="reflect"),
    dict(dilation=4),
]


@pytest.mark.parametrize("kwargs", CONV_ERRORS, ids=[str(k) for k in CONV_ERRORS])
def test_conv_geometry_raises_what_conv2d_raises(kwargs):
    x, w = np.ones((1, 2, 6, 6)), np.ones((4, 2, 3, 3))
    with pytest.raises(ParameterError) as op:
        conv2d(x, w, **kwargs)
    options = dict(stride=1, padding=0, dilation=1, groups=1) | kwargs
    with pytest.raises(ParameterError) as geo:
        conv2d_geometry(x.shape, w.shape, **options)
    assert str(geo.value) == str(op.value)


TRANSPOSE_ERRORS = [
    dict(output_padding=2, stride=2),
    dict(output_padding=1),
    dict(stride=(0, 1)),
    dict(padding=4),
    dict(groups=2),
]


@pytest.mark.parametrize("kwargs", TRANSPOSE_ERRORS, ids=[str(k) for k in TRANSPOSE_ERRORS])
def test_transpose_geometry_raises_what_the_transpose_raises(kwargs):
    x, w = np.ones((1, 3, 2, 2)), np.ones((3, 2, 3, 3))
    with pytest.raises(ParameterError) as op:
        conv_transpose2d(x, w, **kwargs)
    options = dict(stride=1, padding=0, output_padding=0, dilation=1, groups=1) | kwargs
    with pytest.raises(ParameterError) as geo:
        conv_transpose2d_geometry(x.shape, w.shape, **options)
    assert str(geo.value) == str(op.value)


def test_geometry_is_frozen():
    geo = conv2d_geometry((1, 1, 4, 4), (1, 1, 3, 3), stride=1, padding=1, dilation=1, groups=1)
    with pytest.raises(AttributeError):
        geo.stride = (2, 2)
