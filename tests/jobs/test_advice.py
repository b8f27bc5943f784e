"""advice.py: warnings where a result would be silently useless."""

from __future__ import annotations

import numpy as np
import pytest

from convcli.conv.geometry import conv2d_geometry
from convcli.jobs.advice import clipping_warnings, step_warnings
from convcli.jobs.pipeline import Step
from convcli.jobs.report import ImageReport
from convcli.kernels.filters import Filter
from convcli.kernels.loader import load_filter


def steps(*specs: str, **options) -> list[Step]:
    return [Step(load_filter(spec), **options) for spec in specs]


@pytest.mark.parametrize(
    "specs",
    [("sobel-x", "sobel-y"), ("sobel", "laplacian"), ("prewitt-y", "prewitt-y"), ("edge", "sobel")],
)
def test_two_derivatives_in_a_row_are_named(specs):
    (warning,) = step_warnings(steps(*specs))
    assert warning.startswith(f"-k {specs[0]} then -k {specs[1]}: ")
    assert "second derivative" in warning and "-k sobel" in warning and '"bank"' in warning


@pytest.mark.parametrize(
    "specs",
    [("gaussian:5", "sobel-x"), ("sobel-x", "box:3"), ("sobel",), ("sobel-x", "box:3", "sobel-y")],
)
def test_derivatives_apart_or_alone_are_fine(specs):
    assert step_warnings(steps(*specs)) == []


def test_a_filters_own_warnings_come_first():
    found = step_warnings(steps("0 -1 0, -1 5 -1, 0 -1 0"))
    assert len(found) == 1 and "is one row of 9 values" in found[0]


def report(share_high: float) -> ImageReport:
    """An image of 100x100 values of which ``share_high`` were clipped above 1."""
    geo = conv2d_geometry((1, 1, 100, 100), (1, 1, 5, 5), padding="same")
    return ImageReport(
        "in.png", "out.png", (1, 1, 100, 100), (1, 1, 100, 100), [((1, 1, 5, 5), geo)],
        0.0, 2.0, 0, round(share_high * 10000), 0.1,
    )  # fmt: skip


def test_a_gain_that_clips_most_of_an_image_names_the_kernel_and_normalize():
    binomial = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1])
    (warning,) = clipping_warnings(report(0.9988), [Step(Filter(binomial, source="b5.txt"))])
    assert warning.startswith("in.png: 99.88% of the values were clipped: kernel b5.txt sums")
    assert "sums to 256" in warning and "--normalize" in warning


@pytest.mark.parametrize(
    ("share", "step"),
    [
        (0.4, Step(Filter(np.full((3, 3), 2.0)))),  # not most of the image
        (0.9, Step(load_filter("sharpen"))),  # sums to 1: the image itself clips
        (0.9, Step(load_filter("sobel-x"))),  # sums to 0
        (0.9, Step(load_filter("sobel"))),  # a bank: no gain to speak of
        (0.9, Step(Filter(np.full((3, 3), 2.0)), normalize=True)),  # already divided
        (0.9, Step(Filter(np.full((3, 3), 2.0)), transpose=True, stride=3)),  # upsampling
    ],
)
def test_no_gain_warning_otherwise(share, step):
    assert clipping_warnings(report(share), [step]) == []


def test_every_gain_of_a_chain_is_named_with_each_filters_sum():
    four_d = Filter(np.stack([np.full((1, 1, 1), 3.0), np.full((1, 1, 1), 1.0)]), source="w.npy")
    chain = [Step(Filter(np.full((1, 1), -2.0), source="neg")), Step(four_d)]
    (warning,) = clipping_warnings(report(0.75), chain)
    assert "kernel neg sums to -2; kernel w.npy sums to 3," in warning
    assert "divides each kernel by its sum" in warning
