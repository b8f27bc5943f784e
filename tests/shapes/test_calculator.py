"""shapecalc.py against the real operations."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from convcli import ParameterError, conv2d, conv_transpose2d
from convcli.shapes.calculator import calculate, parse_shape, solve_target, weight_shape_for
from convcli.shapes.layers import chain, parse_layer


@given(
    st.integers(1, 12),
    st.integers(1, 5),
    st.integers(1, 3),
    st.integers(0, 2),
    st.integers(1, 2),
    st.booleans(),
)
def test_calculated_shape_is_the_real_shape_and_the_formula_says_so(size, k, s, p, d, transpose):
    x = np.zeros((1, 2, size, size + 1))
    try:
        if transpose:
            y = conv_transpose2d(x, np.zeros((2, 3, k, k)), stride=s, padding=p, dilation=d)
        else:
            y = conv2d(x, np.zeros((3, 2, k, k)), stride=s, padding=p, dilation=d)
    except ParameterError:
        with pytest.raises(ParameterError):
            calculate(
                x.shape,
                (2, 3, k, k) if transpose else (3, 2, k, k),
                stride=s,
                padding=p,
                dilation=d,
                transpose=transpose,
            )
        return
    weight = (2, 3, k, k) if transpose else (3, 2, k, k)
    r = calculate(x.shape, weight, stride=s, padding=p, dilation=d, transpose=transpose)
    assert r.geometry.output_shape == y.shape
    for formula, out in zip(r.formulas, y.shape[2:], strict=True):
        expression, value = formula.split("=", 1)[1].rsplit("=", 1)
        assert int(value) == out
        assert (
            eval(expression.replace("floor", "")) // 1 == out
            or int(eval(expression.replace("floor((", "((").replace(") / ", ") // "))) == out
        )


def test_coverage_warning_names_unread_rows():
    r = calculate((1, 1, 10, 10), (1, 1, 3, 3), stride=4)
    assert "4 input rows (H index 3, 7, 8, 9) are never read" in r.warnings[0]
    assert calculate((1, 1, 9, 9), (1, 1, 3, 3), stride=3).warnings == []


def test_transposed_output_padding_options():
    r = calculate((1, 1, 2, 2), (1, 1, 3, 3), stride=2, padding=1, transpose=True)
    assert r.output_padding_options[0] == [(0, 3), (1, 4)]


@given(st.integers(3, 40), st.integers(1, 5), st.integers(1, 3), st.integers(1, 40), st.booleans())
def test_solved_padding_reaches_the_target(size, k, s, target, transpose):
    try:
        pads, op = solve_target(
            (size, size), (k, k), target_hw=(target, target), stride=s, transpose=transpose
        )
    except ParameterError as err:
        assert "no padding gives H" in str(err)
        return
    assume(True)
    x = np.zeros((1, 1, size, size))
    if transpose:
        assert pads[0] == pads[1]
        y = conv_transpose2d(
            x, np.zeros((1, 1, k, k)), stride=s, padding=pads[::2], output_padding=op
        )
    else:
        y = conv2d(x, np.zeros((1, 1, k, k)), stride=s, padding=pads)
    assert y.shape[2:] == (target, target)


def test_resnet_stem_chain_and_errors():
    r = chain((1, 3, 224, 224), [parse_layer("k=7,s=2,p=3,f=64"), parse_layer("k=3,s=2,p=1")])
    assert [row[2].geometry.output_shape for row in r.rows] == [(1, 64, 112, 112), (1, 64, 56, 56)]
    assert "112" in r.text() and r.as_dict()["layers"][1]["output_shape"] == [1, 64, 56, 56]
    with pytest.raises(ParameterError, match="layer 2"):
        chain((1, 3, 8, 8), [parse_layer("k=3"), parse_layer("k=9")])
    with pytest.raises(ParameterError, match="key=value"):
        parse_layer("k=3,q=1")


def test_parsers_and_weight_rule():
    assert parse_shape("1, 3, 5, 7") == (1, 3, 5, 7) and parse_shape("5x7") == (1, 1, 5, 7)
    with pytest.raises(ParameterError, match="input shape"):
        parse_shape("1,2,3,4,5")
    assert weight_shape_for((3,), 3) == ((3, 1, 3, 3), 3)
    assert weight_shape_for((5, 5), 3, filters=16) == ((16, 3, 5, 5), 1)
    assert weight_shape_for((3, 5, 5), 3) == ((1, 3, 5, 5), 1)


def test_impossible_configuration_shows_the_formula():
    with pytest.raises(ParameterError, match=re.escape("H_out = floor((5 + 0 + 0 - 1*(7-1) - 1)")):
        calculate((1, 1, 5, 5), (1, 1, 7, 7))


def test_target_prefers_symmetric_padding_pytorch_can_express():
    torch = pytest.importorskip("torch")
    pads, _ = solve_target((32, 32), (3, 3), target_hw=(16, 16), stride=2)
    assert pads == (1, 1, 1, 1)
    layer = torch.nn.Conv2d(1, 1, 3, stride=2, padding=pads[0])
    assert layer(torch.zeros(1, 1, 32, 32)).shape[-2:] == (16, 16)
    # No even total reaches 32 with a 4x4 kernel at stride 1: the odd pixel goes after.
    assert solve_target((32, 32), (4, 4), target_hw=(32, 32))[0] == (1, 2, 1, 2)


@pytest.mark.parametrize(
    "args",
    [
        ("100000000x100000000", "3", dict(stride=4)),
        ("99999999999999999999999x99999999999999999999999", "3", dict(stride=2)),
        ("99999999999999999999999x7", "5", dict(stride=3, dilation=10**20)),
    ],
)
def test_huge_sizes_are_arithmetic(args):
    shape, kernel, options = args
    start = time.perf_counter()
    geo_input = parse_shape(shape)
    k = int(kernel)
    r = calculate(
        geo_input, (1, 1, k, k), padding=(options.get("dilation", 1) * (k - 1)), **options
    )
    assert time.perf_counter() - start < 2
    assert r.geometry.output_shape[2] >= 1


def test_huge_size_warning_counts():
    r = calculate((1, 1, 10**8, 10**8), (1, 1, 3, 3), stride=4)
    assert r.warnings[0].startswith("25000000 input rows (H index 3, 7, 11, 15, 19, 23 ...)")
    big = 99999999999999999999999
    r = calculate((1, 1, big, big), (1, 1, 3, 3), stride=4)
    assert r.warnings[0].startswith(f"{big // 4} input rows (H index 3, 7, 11")


def test_huge_target_and_output_padding_options():
    padding, extra = solve_target((224, 224), (3, 3), target_hw=(10**12, 10**12))
    assert padding[0] + padding[1] == 10**12 - 224 + 2 and extra == (0, 0)
    padding, extra = solve_target(
        (224, 224), (3, 3), target_hw=(10**12, 10**12), stride=10**12, transpose=True
    )
    r = calculate(
        (1, 1, 224, 224),
        (1, 1, 3, 3),
        stride=10**12,
        padding=padding,
        transpose=True,
        output_padding=extra,
    )
    assert r.geometry.output_shape[2:] == (10**12, 10**12)
    opts = r.output_padding_options[0]
    assert len(opts) == 8 and opts[-1][0] == 10**12 - 1
    assert ", ..., 999999999999 -> " in r.text()


def test_kernel_shapes_follow_the_same_rule_as_apply_and_upsample():
    from convcli.kernels.filters import Filter
    from convcli.kernels.shaping import weight_for_channels

    for shape, transpose in [((3, 5, 5), False), ((3, 5, 5), True), ((8, 3, 3, 3), False)]:
        weight, groups = weight_for_channels(Filter(np.ones(shape)), 3, transpose=transpose)
        assert weight_shape_for(shape, 3, transpose=transpose) == (weight.shape, groups)
    with pytest.raises(ParameterError, match="does not divide"):
        weight_shape_for((4, 2, 3, 3), 3)  # 2 channels per group cannot split 3


def test_output_padding_without_transpose_is_a_usage_error():
    with pytest.raises(ParameterError, match="output_padding 1 applies to transposed"):
        calculate((1, 3, 8, 8), (3, 1, 3, 3), groups=3, output_padding=1)
    with pytest.raises(ParameterError, match=r"op=1 \(output_padding\) applies to transposed.*t=1"):
        parse_layer("k=3,op=1")
    assert parse_layer("k=3,op=0").output_padding == 0
    assert parse_layer("k=3,s=2,t=1,op=1").output_padding == 1
    assert calculate((1, 1, 4, 4), (1, 1, 3, 3), stride=2, transpose=True, output_padding=1)
