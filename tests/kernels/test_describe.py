"""describe.py: what convcli kernels SPEC prints."""

from __future__ import annotations

import numpy as np
import pytest

from convcli.kernels.describe import describe_filter
from convcli.kernels.filters import Filter
from convcli.kernels.loader import load_filter
from tests.paths import FILTERS


def test_describe():
    text = describe_filter(load_filter("sobel-x"))
    assert text.splitlines()[0].split() == ["-1", "0", "1"]
    assert "shape: 3x3" in text and "sum: 0" in text


def test_describe_summarizes_large_kernels_with_shape_and_sum():
    text = describe_filter(load_filter("gaussian:1001"))
    lines = text.splitlines()
    assert len(lines) < 20 and len(text) < 2000
    assert "shape: 1001x1001   sum: 1" in text
    assert "showing rows 0-2, 500, 998-1000 and columns 0-2, 500, 998-1000" in text
    centre = lines[4].split()  # first three, ..., the centre, ..., last three
    assert centre[3] == centre[5] == "..." and float(centre[4]) == pytest.approx(
        load_filter("gaussian:1001").weight.max(), rel=1e-5
    )
    many = describe_filter(Filter(np.ones((20, 3, 2, 2))))
    assert "... (54 more 2-D slices)" in many and "[19, 2]" in many and "[10, 0]" not in many
    small = describe_filter(load_filter("gaussian:15"))
    assert "..." not in small and len(small.splitlines()) == 15 + 2


def test_describe_shows_a_filter_files_options_and_normalized_sum(tmp_path):
    path = tmp_path / "norm.json"
    path.write_text(
        '{"weight": [[1, 2, 1]], "stride": [2, 1], "padding": "same", "dilation": 1, '
        '"groups": 1, "pad_mode": "replicate", "flip": true, "normalize": true}'
    )
    text = describe_filter(load_filter(str(path)))
    assert "shape: 1x3   sum: 4" in text
    assert (
        "options: stride 2,1, padding same, dilation 1, groups 1, pad_mode replicate, "
        "flip true, normalize true"
    ) in text
    assert "normalized sum: 1 (the weight divided by 4" in text
    four = tmp_path / "four.json"
    four.write_text('{"weight": [[[[1, 1]]], [[[2, 2]]]], "normalize": true}')
    assert "normalized sums: 1, 1 (each of the 2 filters" in describe_filter(load_filter(str(four)))
    assert "options" not in describe_filter(load_filter("box:3"))


def test_describe_calls_a_zero_sum_zero():
    assert "sum: 0 " in describe_filter(load_filter(str(FILTERS / "sobel-xy.json"))) + " "


def test_describe_shows_every_kernel_of_a_bank_and_its_rule(tmp_path):
    text = describe_filter(load_filter("scharr"))
    assert text.startswith("kernel 1 of 2:\n -3   0   3\n-10   0  10")
    assert "kernel 2 of 2:\n -3 -10  -3\n  0   0   0\n  3  10   3" in text
    assert "bank: 2 kernels of 3x3 (sums 0, 0), combined by magnitude sqrt(r1^2 + r2^2)" in text
    config = tmp_path / "l1.json"
    config.write_text(
        '{"bank": ["sobel-x", "sobel-y", "sobel-x", "sobel-y"], "combine": "abs-sum"}'
    )
    assert "combined by abs-sum |r1| + |r2| + |r3| + ..." in describe_filter(
        load_filter(str(config))
    )
