"""Geometry: validated shapes and resolved padding, shared by operations and `shape`."""

from __future__ import annotations

import pytest

from convcli import ParameterError
from convcli.geometry import conv2d_geometry, conv_transpose2d_geometry, pair


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
    with pytest.raises(ParameterError, match="one value or two"):
        pair((1, 2, 3), "stride")
