"""convcli.scale.conv2d / conv_transpose2d against the in-memory functions on the whole
array: every engine forced, every padding spec and mode, strides, dilations, groups, pads
larger than the image, chunks smaller than the halo, inputs chunked any way."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convcli
from convcli.conv import engines
from convcli.scale import plan as plan_module
from tests.scale.checks import assert_matches
from tests.scale.test_sources import CountingSource
from tests.strategies import any_transpose_cases, conv_cases

da = pytest.importorskip("dask.array")
get_dependencies = pytest.importorskip("dask.core").get_dependencies
scale = pytest.importorskip("convcli.scale.operations")

chunk_sizes = st.one_of(
    st.integers(1, 8), st.tuples(st.integers(1, 3), st.integers(1, 8), st.integers(1, 8))
)


@st.composite
def inputs(draw, x: np.ndarray):
    """``x`` as given to convcli.scale: NumPy, a Dask array chunked at random, or a region
    source."""
    kind = draw(st.sampled_from(["numpy", "dask", "source"]))
    if kind == "numpy":
        return x
    if kind == "source":
        return CountingSource(x if x.ndim == 4 else x[None])
    chunks = tuple(draw(st.integers(1, max(1, size))) for size in x.shape)
    return da.from_array(x, chunks=chunks)


def _batched(x):
    return x[None] if np.ndim(x) == 3 else x


@pytest.mark.parametrize("path", engines.PATHS)
@given(case=conv_cases(dtype=np.float32, max_size=12), chunks=chunk_sizes, data=st.data())
def test_conv2d_equals_the_in_memory_function(path, case, chunks, data):
    options = case.options()
    x = data.draw(inputs(case.x))
    with engines.force_path(path):
        expected = convcli.conv2d(case.x, case.w, case.b, **options)
        y = scale.conv2d(x, case.w, case.b, chunks=chunks, **options)
    # Computed outside force_path, on Dask's threads: the path went into the graph.
    exact = path in ("separable", "taps") and case.w.shape[1] == 1
    assert_matches(y.compute(scheduler="threads"), expected, exact=exact, terms=(case.x, case.w))


@pytest.mark.parametrize("path", engines.PATHS)
@given(case=any_transpose_cases(dtype=np.float32), chunks=chunk_sizes, data=st.data())
def test_conv_transpose2d_equals_the_in_memory_function(path, case, chunks, data):
    options = case.options()
    x = data.draw(inputs(case.x))
    with engines.force_path(path):
        expected = _batched(convcli.conv_transpose2d(case.x, case.w, case.b, **options))
        y = scale.conv_transpose2d(x, case.w, case.b, chunks=chunks, **options)
    assert_matches(_batched(y.compute(scheduler="threads")), expected, terms=(case.x, case.w))


# Cases the random ones reach rarely: even kernels under "same" at strides 2 and 3,
# 4-tuples, pads several times the image in every mode that allows them, a stride far
# above the kernel (the windows' rows are gathered), blocks wholly inside the padding.
NOTABLE = [
    dict(weight=(2, 1, 4, 4), groups=2, stride=2, padding="same", padding_mode="reflect"),
    dict(weight=(2, 1, 4, 2), groups=2, stride=3, padding="same", padding_mode="symmetric"),
    dict(weight=(3, 2, 3, 3), padding=(0, 5, 2, 1), padding_mode="replicate"),
    dict(weight=(2, 1, 3, 3), groups=2, padding=(20, 3, 17, 25), padding_mode="circular"),
    dict(weight=(2, 1, 3, 3), groups=2, padding=(30, 0, 0, 30), padding_mode="symmetric"),
    dict(weight=(2, 2, 3, 3), padding=(40, 40, 40, 40), padding_mode="zeros"),
    dict(weight=(2, 2, 3, 2), stride=(9, 7), padding=4, padding_mode="reflect"),
    dict(weight=(2, 1, 3, 3), groups=2, dilation=(4, 5), padding="same"),
    dict(weight=(4, 1, 9, 9), groups=2, padding="same", padding_mode="reflect"),
]


@pytest.mark.parametrize("path", engines.PATHS)
@pytest.mark.parametrize("case", NOTABLE, ids=lambda c: str(c))
@pytest.mark.parametrize("chunks", [2, 5, (2, 7, 3)])
def test_notable_cases(path, case, chunks, rng):
    options = dict(case)
    x = rng.standard_normal((2, 2, 13, 11)).astype(np.float32)
    w = rng.standard_normal(options.pop("weight")).astype(np.float32)
    b = rng.standard_normal(w.shape[0]).astype(np.float32)
    with engines.force_path(path):
        expected = convcli.conv2d(x, w, b, **options)
        y = scale.conv2d(da.from_array(x, chunks=(1, 1, 5, 4)), w, b, chunks=chunks, **options)
    assert_matches(y.compute(), expected, exact=path in ("separable", "taps") and w.shape[1] == 1)


@pytest.mark.parametrize("path", engines.PATHS)
def test_default_blocks_are_bit_identical(path, rng, monkeypatch):
    """Default blocks start on the engine's tile grid, so the whole image's tiles and the
    blocks' tiles are the same sums (rows: same-width products; fft: same transforms)."""
    monkeypatch.setattr(plan_module, "BLOCK", 96)
    x = rng.standard_normal((1, 3, 1100, 700)).astype(np.float32)
    for w, options in [
        (rng.standard_normal((3, 1, 9, 9)), dict(groups=3, padding="same", padding_mode="reflect")),
        (rng.standard_normal((3, 1, 5, 5)), dict(groups=3, padding=2, stride=2)),
        (np.outer([1, 4, 6, 4, 1], [1, 2, 1]) * np.ones((3, 1, 1, 1)), dict(groups=3)),
    ]:
        w = w.astype(np.float32)
        with engines.force_path(path), engines.tile_elements(200_000):
            expected = convcli.conv2d(x, w, **options)
            y = scale.conv2d(x, w, **options)
        assert y.numblocks[2] > 1
        exact = path != "rows"  # rows: BLAS may round by alignment
        assert_matches(y.compute(), expected, exact=exact)


def test_nan_and_inf_land_where_they_do_in_memory(rng):
    """Automatically, an input holding NaN or Inf takes the rows path, which keeps them
    where the windows put them: in the whole image, and in the blocks that hold one (the
    others may take a faster path). (A forced FFT spreads a NaN over its tile, so forced
    paths are not compared here.)"""
    x = rng.standard_normal((1, 2, 40, 37)).astype(np.float32)
    x[0, 0, 5, 7], x[0, 1, 30, 2], x[0, 0, 20, 36] = np.nan, np.inf, -np.inf
    for w in (rng.random((2, 1, 5, 5)), np.ones((2, 1, 9, 9)) / 81, rng.random((2, 1, 15, 15))):
        w = w.astype(np.float32)
        expected = convcli.conv2d(x, w, groups=2, padding=2, padding_mode="circular")
        y = scale.conv2d(x, w, groups=2, padding=2, padding_mode="circular", chunks=(9, 8))
        assert_matches(y.compute(), expected)
        assert np.isnan(expected).any() and np.isinf(expected).any()


def test_each_block_reads_its_own_window_once(rng):
    x = rng.standard_normal((2, 3, 40, 50)).astype(np.float32)
    w = rng.standard_normal((3, 1, 5, 3)).astype(np.float32)
    source = CountingSource(x)
    y = scale.conv2d(source, w, groups=3, padding=(2, 2, 1, 1), chunks=(1, 10, 25))
    assert source.reads == []  # lazy: nothing read before compute
    np.testing.assert_allclose(
        y.compute(scheduler="sync"),
        convcli.conv2d(x, w, groups=3, padding=(2, 2, 1, 1)),
        rtol=1e-6,
        atol=1e-6,
    )
    # 2 samples x 4 row bands x 2 column bands, one read each; each block reads its
    # output rows (stride 1) plus the 2 + 2 rows of the kernel's halo, clipped to the
    # image (zeros padding reads nothing outside it), and all channels.
    assert len(source.reads) == 16
    regions = {(s.start, r.start, r.stop, c.start, c.stop) for s, ch, r, c in source.reads}
    assert len(regions) == 16 and all(ch == slice(0, 3) for _, ch, _, _ in source.reads)
    for sample in (0, 1):
        for o0 in range(0, 40, 10):
            for c0 in (0, 25):
                rows = (max(0, o0 - 2), min(40, o0 + 12))
                cols = (max(0, c0 - 1), min(50, c0 + 26))
                assert (sample, *rows, *cols) in regions


def test_circular_blocks_read_both_ends_and_nothing_between(rng):
    x = rng.standard_normal((1, 1, 30, 6)).astype(np.float32)
    source = CountingSource(x)
    w = np.ones((1, 1, 5, 1), np.float32)
    y = scale.conv2d(source, w, padding=(2, 2, 0, 0), padding_mode="circular", chunks=10)
    assert_matches(
        y.compute(scheduler="sync"),
        convcli.conv2d(x, w, padding=(2, 2, 0, 0), padding_mode="circular"),
    )
    rows = sorted((r.start, r.stop) for _, _, r, _ in source.reads)
    # First band: rows 28-29 (wrapped) and 0-11; middle: 8-21; last: 18-29 and 0-1.
    assert rows == [(0, 2), (0, 12), (8, 22), (18, 30), (28, 30)]


def test_transposed_blocks_that_receive_nothing_read_nothing():
    x = np.ones((1, 1, 3, 3), np.float32)
    source = CountingSource(x)
    w, b = np.ones((1, 2, 1, 1), np.float32), np.array([0.5, -1.0], np.float32)
    y = scale.conv_transpose2d(source, w, b, stride=4, chunks=(1, 9))
    assert_matches(y.compute(scheduler="sync"), convcli.conv_transpose2d(x, w, b, stride=4))
    assert sorted(r.start for _, _, r, _ in source.reads) == [0, 1, 2]  # rows 0, 4, 8 only


def test_blocks_depend_only_on_the_chunks_they_overlap(rng):
    x = da.from_array(rng.standard_normal((1, 2, 60, 60)).astype(np.float32), chunks=(1, 1, 7, 9))
    w = np.ones((2, 2, 3, 3), np.float32)
    y = scale.conv2d(x, w, padding=1, chunks=20)
    assert len(y.dask.layers) == len(x.dask.layers) + 1  # one layer for every block
    assert y.dask.dependencies[y.name] == {x.name}
    graph = dict(y.__dask_graph__())
    keys = [key for band in y.__dask_keys__()[0][0] for key in band]
    assert len(keys) == 9
    for key in keys:
        _, _, _, i, j = key
        needed = {
            (x.name, 0, c, r // 7, q // 9)
            for c in (0, 1)
            for r in range(max(0, 20 * i - 1), min(60, 20 * i + 21))
            for q in range(max(0, 20 * j - 1), min(60, 20 * j + 21))
        }
        chunks = {d for d in get_dependencies(graph, key) if d[0] == x.name}
        assert chunks == needed


@pytest.mark.parametrize("chunks", [1, 3, None])
def test_steps_past_int64_where_they_multiply_only_zero(chunks):
    x, w = np.arange(35.0).reshape(1, 1, 5, 7), np.ones((1, 1, 1, 3))
    options = dict(stride=(2**66, 1), dilation=(2**66, 1), padding=(0, 0, 1, 1))
    y = scale.conv2d(x, w, chunks=chunks, **options)
    assert_matches(y.compute(), convcli.conv2d(x, w, **options), exact=True)
    row = x[:, :, :1]  # one input row: the stride places nothing
    t = scale.conv_transpose2d(row, w, stride=(2**66, 2), padding=(0, 1), chunks=chunks)
    expected = convcli.conv_transpose2d(row, w, stride=(2**66, 2), padding=(0, 1))
    assert_matches(t.compute(), expected, exact=True)


def test_more_blocks_than_a_graph_can_hold_is_a_resource_error():
    x, w = np.ones((1, 1, 3, 3)), np.ones((1, 1, 1, 1))
    with pytest.raises(convcli.ResourceError, match="more than a graph can hold"):
        scale.conv_transpose2d(x, w, stride=2**66)
    with pytest.raises(convcli.ResourceError, match="blocks of 1x1 would be 1000000000"):
        scale.conv2d(np.ones((1, 1, 10**5, 10**4), np.float32), w, chunks=1)


def test_results_and_dtypes(rng):
    x = rng.integers(0, 255, (3, 10, 12), dtype=np.uint8)  # unbatched, integers
    w = rng.standard_normal((2, 3, 3, 3))  # float64
    y = scale.conv2d(x, w, padding="same", chunks=4)
    assert y.shape == (2, 10, 12) and y.dtype == np.float64
    assert_matches(y.compute(), convcli.conv2d(x, w, padding="same"))
    t = scale.conv_transpose2d(
        da.from_array(x, chunks=5), w.transpose(1, 0, 2, 3)[:3, :2], stride=2, chunks=3
    )
    assert t.dtype == np.float64 and t.ndim == 3
    assert_matches(
        t.compute(), convcli.conv_transpose2d(x, w.transpose(1, 0, 2, 3)[:3, :2], stride=2)
    )
    f32 = scale.conv2d(x.astype(np.float32), w.astype(np.float32))
    assert f32.dtype == np.float32


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x, w: scale.conv2d(x, w, padding=9, padding_mode="reflect"), "reflect padding"),
        (lambda x, w: scale.conv2d(x, w, np.ones(3)), r"bias must have shape \(2,\)"),
        (lambda x, w: scale.conv2d(x, w, chunks=0), "chunks"),
        (lambda x, w: scale.conv2d(x, w, chunks=(1, 2, 3, 4)), "chunks"),
        (lambda x, w: scale.conv2d(x[0, 0], w), "x must be"),
        (lambda x, w: scale.conv2d(x.astype(complex), w), "real numbers"),
        (lambda x, w: scale.conv2d(x, w[:, :1]), "weight takes 1 channels"),
        (lambda x, w: scale.conv2d(CountingSource(x[0]), w), "region source must have"),
        (lambda x, w: scale.conv_transpose2d(x, w, output_padding=2), "output_padding"),
        (lambda x, w: scale.conv2d(da.from_array(x)[da.from_array(x) > 0], w), "unknown"),
    ],
)
def test_bad_arguments_fail_at_the_call(call, message):
    """Validated on the whole image before a graph exists, with the in-memory messages."""
    x, w = np.ones((1, 2, 8, 8), np.float32), np.ones((2, 2, 3, 3), np.float32)
    with pytest.raises(convcli.ParameterError, match=message):
        call(x, w)


def test_a_memory_map_is_read_a_window_at_a_time(tmp_path, rng):
    x = rng.standard_normal((1, 1, 64, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    y = scale.conv2d(mapped, np.ones((1, 1, 3, 3), np.float32), padding=1, chunks=16)
    assert_matches(y.compute(), convcli.conv2d(x, np.ones((1, 1, 3, 3), np.float32), padding=1))


def test_a_zarr_array_is_read_a_window_at_a_time(tmp_path, rng):
    zarr = pytest.importorskip("zarr")
    x = rng.standard_normal((1, 2, 50, 40)).astype(np.float32)
    z = zarr.open_array(
        str(tmp_path / "x.zarr"), mode="w", shape=x.shape, chunks=(1, 1, 16, 16), dtype="float32"
    )
    z[...] = x
    w = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    options = dict(groups=2, padding=1, padding_mode="circular")
    y = scale.conv2d(z, w, chunks=20, **options)
    assert_matches(y.compute(), convcli.conv2d(x, w, **options))
