"""A job's stages over a region source equal apply_steps on the whole image, region by
region, with the same geometries, weight shapes and warnings."""

from __future__ import annotations

import numpy as np
import pytest

from convcli.errors import ParameterError
from convcli.jobs import pipeline
from convcli.jobs.pipeline import Step
from convcli.kernels import load_filter
from convcli.scale.sources import ArraySource
from convcli.scale.stages import Padded, build
from tests.paths import FILTERS
from tests.scale.checks import assert_matches

RNG = np.random.default_rng(11)
GRAY = RNG.random((1, 1, 40, 50), dtype=np.float32)
RGB = RNG.random((1, 3, 40, 50), dtype=np.float32)
RGBA = RNG.random((2, 4, 40, 50), dtype=np.float32)
WITH_NAN = RGB.copy()
WITH_NAN[0, 1, 10, 10] = np.nan
TINY = RNG.random((1, 1, 5, 6), dtype=np.float32)
SMALL = RGB[:, :, :15, :20]  # upsampled: a few hundred blocks of 2x3


def S(spec: str, **options) -> Step:
    return Step(load_filter(spec), **options)


CASES = {
    "gaussian": (RGB, [S("gaussian:9")], False),
    "two steps": (RGB, [S("box:3"), S("sobel")], False),
    "RGBA blur, premultiplied": (RGBA, [S("gaussian:5")], True),
    "RGBA derivative, alpha carried": (RGBA, [S("sobel-x")], True),
    "RGBA bank, alpha carried": (RGBA, [S("sobel")], True),
    "RGBA chain": (RGBA, [S("gaussian:5"), S("sobel"), S("box:3")], True),
    "colour-only weight drops alpha": (RGBA, [S(str(FILTERS / "luma.toml"))], True),
    "4-D bank": (RGB, [S(str(FILTERS / "sobel-xy.json"))], False),
    "stride": (RGB, [S("box:3", stride=2)], False),
    "dilation": (RGB, [S("box:3", dilation=3)], False),
    "circular, uneven stride": (RGB, [S("gaussian:9", pad_mode="circular", stride=(2, 3))], False),
    "reflect falls back to symmetric on a small image": (TINY, [S("box:9")], False),
    "valid, stride and dilation": (
        GRAY,
        [S("box:3", padding="valid", stride=4, dilation=2)],
        False,
    ),
    "fft": (RGB, [S("gaussian:31")], False),
    "NaN": (WITH_NAN, [S("gaussian:5")], False),
    "upsample, edge-replicated": (SMALL, [S("bilinear:2", transpose=True, stride=2)], False),
    "upsample bicubic x3": (SMALL, [S("bicubic:3", transpose=True, stride=3)], False),
    "upsample, zeros": (
        SMALL,
        [S("bilinear:2", transpose=True, stride=2, pad_mode="zeros")],
        False,
    ),
    "upsample RGBA": (RGBA[:, :, :15, :20], [S("bilinear:2", transpose=True, stride=2)], True),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("chunks", [(7, 11), (2, 3)], ids=["7x11", "2x3"])
def test_regions_of_the_stages_are_apply_steps(case, chunks):
    x, steps, has_alpha = CASES[case]
    whole = pipeline.apply_steps(x.copy(), steps, has_alpha=has_alpha)
    built = build(ArraySource(x), steps, has_alpha=has_alpha)
    assert built.final.shape == whole.values.shape
    n, c, h, w = built.final.shape
    out = np.empty(built.final.shape, np.float32)
    for r0 in range(0, h, chunks[0]):
        for c0 in range(0, w, chunks[1]):
            rows, cols = slice(r0, min(h, r0 + chunks[0])), slice(c0, min(w, c0 + chunks[1]))
            out[:, :, rows, cols] = built.final.read_region(slice(0, n), slice(0, c), rows, cols)
    assert_matches(out, whole.values)
    assert built.geometries == whole.geometries
    assert built.weight_shapes == whole.weight_shapes
    assert built.warnings == whole.warnings
    assert built.has_alpha == whole.has_alpha


def test_a_channel_and_a_sample_alone():
    x, steps, has_alpha = CASES["RGBA chain"]
    whole = pipeline.apply_steps(x.copy(), steps, has_alpha=has_alpha).values
    built = build(ArraySource(x), steps, has_alpha=has_alpha)
    part = built.final.read_region(slice(1, 2), slice(3, 4), slice(10, 20), slice(0, 5))
    assert_matches(part, whole[1:2, 3:4, 10:20, 0:5])


def test_a_step_the_whole_image_refuses_fails_when_built():
    with pytest.raises(ParameterError, match="too large for the 5x6 image"):
        build(ArraySource(TINY), [S("box:15")], has_alpha=False)


def test_padded_regions_go_through_the_padding_model():
    x = np.arange(20.0, dtype=np.float32).reshape(1, 1, 4, 5)
    padded = Padded(ArraySource(x), (2, 1, 3, 0), "reflect")
    expected = np.pad(x, ((0, 0), (0, 0), (2, 1), (3, 0)), mode="reflect")
    assert padded.shape == expected.shape
    got = padded.read_region(slice(0, 1), slice(0, 1), slice(1, 7), slice(0, 6))
    np.testing.assert_array_equal(got, expected[:, :, 1:7, 0:6])
