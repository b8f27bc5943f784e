"""Block plans (NumPy only): the blocks tile the output exactly, and each one reads the same
source rows as the whole image does for its outputs, and no others."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from convcli.conv.engines.algorithms import FFT, Rows
from convcli.conv.geometry import conv2d_geometry, conv_transpose2d_geometry
from convcli.errors import ParameterError
from convcli.scale import plan
from convcli.scale.plan import block_sizes, conv_axis, plan_blocks, transpose_axis
from tests.reference import ref_source_index
from tests.strategies import MODES


@st.composite
def conv_axes(draw):
    """One axis of a convolution: sizes down to 1, pads far larger than the image, and
    block sizes down to 1 (smaller than the kernel's halo)."""
    size, k = draw(st.integers(1, 30)), draw(st.integers(1, 6))
    s, d = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    before, after = draw(st.integers(0, 70)), draw(st.integers(0, 70))
    mode = draw(st.sampled_from(MODES))
    if mode == "reflect":
        assume(max(before, after) < size)
    extent = size + before + after
    span = (k - 1) * d + 1
    assume(extent >= span)
    out = (extent - span) // s + 1
    return size, k, s, d, before, after, mode, out, draw(st.integers(1, 12))


def _tiles(starts_stops, total):
    assert starts_stops[0][0] == 0 and starts_stops[-1][1] == total
    for (_, stop), (start, _) in zip(starts_stops, starts_stops[1:], strict=False):
        assert stop == start
    assert all(a < b for a, b in starts_stops)


@given(conv_axes())
def test_conv_blocks_read_what_the_whole_image_reads(axis):
    size, k, s, d, before, after, mode, out, chunk = axis
    whole = ref_source_index(size, before, after, mode)  # numpy.pad's map, the oracle
    edges = [(a, min(a + chunk, out)) for a in range(0, out, chunk)]
    _tiles(edges, out)
    for start, stop in edges:
        block = conv_axis(
            start, stop, size=size, kernel=k, stride=s, dilation=d, before=before, mode=mode
        )
        read = np.concatenate([np.arange(a, b) for a, b in block.runs] or [np.zeros(0, int)])
        # Runs ascending, apart and inside the image.
        assert all(b0 < a1 for (_, b0), (a1, _) in zip(block.runs, block.runs[1:], strict=False))
        assert read.size == 0 or (read[0] >= 0 and read[-1] < size)
        index = block.window_index()
        window = np.full(index.size, -1)
        window[index >= 0] = read[index[index >= 0]]
        taps = np.arange(k)
        outputs = np.arange(stop - start)
        # Tap i of output o reads the same source in the block as in the whole image.
        positions = outputs[:, None] * block.window_stride + taps * block.window_dilation
        expected = whole[(start + outputs)[:, None] * s + taps * d]
        np.testing.assert_array_equal(window[positions], expected)
        # The block reads its window's sources and nothing else: the padded rows
        # [o0*s, (o1-1)*s + d*(k-1) + 1), or where the taps leave most of those unread
        # (stride or dilation far above the kernel size), only the rows the taps read.
        window_rows = np.arange(start * s, (stop - 1) * s + (k - 1) * d + 1)
        assert block.sparse == (2 * (stop - start) * k <= window_rows.size)
        if block.sparse:
            window_rows = (start + outputs)[:, None] * s + taps * d
        sources = whole[window_rows]
        assert set(read.tolist()) == set(sources[sources >= 0].tolist())


@st.composite
def transpose_axes(draw):
    size, k = draw(st.integers(1, 20)), draw(st.integers(1, 6))
    s, d = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    before = draw(st.integers(0, 12))
    out = (size - 1) * s - before + d * (k - 1) + 1 + draw(st.integers(-12, 3))
    assume(out >= 1)
    return size, k, s, d, before, out, draw(st.integers(1, 12))


@given(transpose_axes())
def test_transposed_blocks_read_the_inputs_that_reach_them(axis):
    size, k, s, d, before, out, chunk = axis
    for start in range(0, out, chunk):
        stop = min(start + chunk, out)
        block = transpose_axis(
            start, stop, size=size, kernel=k, stride=s, dilation=d, before=before
        )
        # By brute force: input m reaches output o = m*s + i*d - before.
        reaching = {
            m for m in range(size) for i in range(k) if start <= m * s + i * d - before < stop
        }
        if not reaching:
            assert block.runs == ()
            continue
        # The span of the inputs that reach the block, inside the interval
        # [ceil((o0 + top - d(k-1))/s), floor((o1 - 1 + top)/s)] where they can be.
        assert block.runs == ((min(reaching), max(reaching) + 1),)
        assert min(reaching) >= -(-(start + before - d * (k - 1)) // s)
        assert max(reaching) <= (stop - 1 + before) // s
        assert block.crop == start + before - min(reaching) * s


@pytest.mark.parametrize("transpose", [False, True])
@given(
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    n=st.integers(0, 3),
    chunks=st.one_of(
        st.integers(1, 9),
        st.tuples(st.integers(1, 9), st.integers(1, 9)),
        st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)),
    ),
)
def test_blocks_tile_the_output(transpose, height, width, n, chunks):
    if transpose:
        geo = conv_transpose2d_geometry((n, 2, height, width), (2, 3, 3, 2), stride=2)
    else:
        geo = conv2d_geometry((n, 2, height, width), (3, 2, 3, 2), padding="same")
    p = plan_blocks(geo, chunks=chunks)
    _, _, out_h, out_w = geo.output_shape
    _tiles([(a.start, a.stop) for a in p.rows], out_h)
    _tiles([(a.start, a.stop) for a in p.cols], out_w)
    if n:
        _tiles(list(p.samples), n)
    grid = np.zeros(geo.output_shape[:1] + geo.output_shape[2:], int)
    for block in p.blocks():
        rows, cols = (
            slice(block.rows.start, block.rows.stop),
            slice(block.cols.start, block.cols.stop),
        )
        grid[slice(*block.samples), rows, cols] += 1
    assert (grid == 1).all()
    sizes = (chunks,) * 2 if isinstance(chunks, int) else chunks[-2:]
    assert max(p.chunks[2]) == min(sizes[0], out_h) and max(p.chunks[3]) == min(sizes[1], out_w)
    assert sum(p.chunks[0]) == n and p.chunks[1] == (geo.output_shape[1],)


def test_default_blocks_start_on_the_engines_tile_grid(monkeypatch):
    monkeypatch.setattr(plan, "BLOCK", 600)
    geo = conv2d_geometry((1, 1, 3000, 2500), (1, 1, 15, 15), padding=7)
    fft = plan_blocks(geo, engine="fft")
    # Blocks of two or more of the FFT engine's tiles, as it cuts the whole image.
    options = {"groups": 1, "stride": (1, 1), "dilation": (1, 1), "dtype": np.float32}
    tile = FFT(np.ones((1, 1, 15, 15)), padded=(3014, 2514), **options).rows_cols
    for sizes, unit in zip(fft.chunks[2:], tile, strict=True):
        assert all(size % unit == 0 for size in sizes[:-1]) and min(sizes) >= 2 * unit
    rows = plan_blocks(geo, engine="rows")
    width = Rows(np.ones((1, 1, 15, 15)), **options).tile_rows_cols()[1]
    assert width > 2500 and rows.chunks[3] == (2500,)  # narrower than one tile: whole rows
    assert rows.chunks[2][0] == 600 * 600 // 2500
    wide = plan_blocks(conv2d_geometry((1, 1, 50, 20000), (1, 1, 15, 15)), engine="rows")
    assert all(size % width == 0 for size in wide.chunks[3][:-1])  # whole tiles
    separable = plan_blocks(geo, engine="separable")
    assert separable.chunks[2][:-1] == (600,) * 4
    upsample = plan_blocks(conv_transpose2d_geometry((1, 1, 1000, 10), (1, 1, 4, 4), stride=3))
    assert all(size % 3 == 0 for size in upsample.chunks[2][:-1])


def test_block_sizes():
    assert block_sizes(10, 3) == [3, 3, 3, 1]
    assert block_sizes(10, 20) == [10]
    assert block_sizes(1000, 256, unit=100, least=2) == [200] * 4 + [200]
    assert block_sizes(1050, 256, unit=100, least=2) == [200] * 4 + [250]  # 50 joins


@pytest.mark.parametrize("chunks", [0, -3, (4, 0), (1, 2, 3, 4), "big", 2.5, True, (2, "x")])
def test_bad_chunks_are_refused(chunks):
    geo = conv2d_geometry((1, 1, 8, 8), (1, 1, 3, 3))
    with pytest.raises(ParameterError, match="chunks"):
        plan_blocks(geo, chunks=chunks)
