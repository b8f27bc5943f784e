"""Floats to a file's integers (quantize), and the PNG writer's bands."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image as PILImage

from convcli.conv import engines
from convcli.images import png
from convcli.images.writing import quantize


def _plain_quantize(x: np.ndarray, top: int) -> tuple[np.ndarray, list, list, list]:
    """The definition, value by value: scale, clip, round half to even, NaN -> 0."""
    values = np.zeros(x.shape, np.int64)
    below, above = [0] * x.shape[0], [0] * x.shape[0]
    nan = [0] * x.shape[1]
    for index in np.ndindex(*x.shape):
        v = float(x[index])
        if np.isnan(v):
            nan[index[1]] += 1
            continue
        below[index[0]] += v < 0
        above[index[0]] += v > 1
        values[index] = round(min(max(np.float32(v) * np.float32(top), 0.0), top))
    return values.transpose(0, 2, 3, 1), below, above, nan


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("threads", [1, None])
def test_quantize_is_the_definition_band_by_band(depth, threads):
    rng = np.random.default_rng(depth)
    x = (rng.random((2, 3, 50, 700), dtype=np.float32) * 1.4 - 0.2).astype(np.float32)
    x[0, 1, 3, :5] = np.nan
    x[1, :, 40:] = 0.5  # bands inside [0, 1] skip counting and clipping
    x[1, 2, 7, 7] = (2 * 17 + 1) / 510  # exactly half-way: rounds to even
    with engines.using(engines.Settings(threads=threads)):
        q = quantize(x, depth)
    values, below, above, nan = _plain_quantize(x, 65535 if depth == 16 else 255)
    assert q.values.dtype == (np.uint16 if depth == 16 else np.uint8)
    np.testing.assert_array_equal(q.values, values)
    assert (q.below.tolist(), q.above.tolist(), q.nan.tolist()) == (below, above, nan)


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("layout", ["planes", "interleaved"])
def test_quantize_into_a_given_array_with_known_bounds(depth, layout):
    """``out`` (any strides) receives the values; the caller's bounds change nothing but
    the work; values whose channels are side by side come out the same."""
    rng = np.random.default_rng(depth)
    stored = (rng.random((1, 37, 90, 3), dtype=np.float32) * 1.4 - 0.2).astype(np.float32)
    x = (
        stored.transpose(0, 3, 1, 2)
        if layout == "interleaved"
        else stored.transpose(0, 3, 1, 2).copy()
    )
    expected = quantize(x, depth)
    for bounds in [None, (float(x.min()), float(x.max())), (0.1, 0.9)]:
        if bounds == (0.1, 0.9):  # inside [0, 1] as the caller says: nothing clipped
            x = np.clip(x, 0.1, 0.9)
            expected = quantize(x, depth)
        whole = np.zeros((1, 40, 95, 3), expected.values.dtype)
        q = quantize(x, depth, out=whole[:, 2:39, 5:], bounds=bounds)
        np.testing.assert_array_equal(whole[:, 2:39, 5:], expected.values)
        assert not whole[:, :2].any() and not whole[:, :, :5].any()
        for part in ("below", "above", "nan"):
            np.testing.assert_array_equal(getattr(q, part), getattr(expected, part))
    phases = np.zeros((1, 74, 180, 3), expected.values.dtype)  # pixels apart: a stride phase
    quantize(x, depth, out=phases[:, 1::2, ::2])
    np.testing.assert_array_equal(phases[:, 1::2, ::2], expected.values)
    assert not phases[:, ::2].any() and not phases[:, :, 1::2].any()
    nan = x.copy()
    nan[0, 1, 5, 5] = np.nan
    q = quantize(nan, depth, bounds=(np.nan, np.nan))
    assert q.nan.tolist() == [0, 1, 0] and q.values[0, 5, 5, 1] == 0


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 2), (700, 1001, 3), (2, 600_000, 1)])
@pytest.mark.parametrize("level", [1, 9])
def test_png_bands_make_one_stream(shape, level):
    """Images of one band and of many (a band is about 1 MiB of rows), any channels."""
    pixels = np.random.default_rng(0).integers(0, 256, shape, np.uint8)
    pixels[: shape[0] // 2] //= 7  # some runs to compress
    stream = io.BytesIO()
    png.write_png(pixels, stream, compress_level=level)
    decoded = np.asarray(PILImage.open(io.BytesIO(stream.getvalue())))
    np.testing.assert_array_equal(decoded.reshape(shape), pixels)


def test_png_stream_checks_out_with_zlib():
    pixels = np.random.default_rng(1).integers(0, 256, (900, 800, 3), np.uint8)
    stream = io.BytesIO()
    png.write_png(pixels, stream)
    data, position, idat = stream.getvalue(), 8, b""
    while position < len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind, body = data[position + 4 : position + 8], data[position + 8 : position + 8 + length]
        crc = int.from_bytes(data[position + 8 + length : position + 12 + length], "big")
        assert zlib.crc32(kind + body) == crc
        idat += body if kind == b"IDAT" else b""
        position += 12 + length
    rows = zlib.decompress(idat)  # checks the combined Adler-32 too
    assert len(rows) == 900 * (800 * 3 + 1)
