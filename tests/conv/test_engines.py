"""Every fast path, forced in turn, against the reference — across tile seams too."""

from __future__ import annotations

import functools
import threading

import numpy as np
import pytest
from hypothesis import given

from convcli import conv2d, conv2d_backward, conv_transpose2d
from convcli.conv import engines
from convcli.conv.engines import blas
from convcli.conv.engines import correlate as correlate_module
from convcli.conv.engines import tiles as tiles_module
from convcli.conv.engines.algorithms import next_fast_len
from convcli.conv.engines.correlate import choose_path
from convcli.conv.engines.tiles import plan_tiles
from tests.conftest import assert_close, term_scale
from tests.reference import (
    ref_conv2d,
    ref_conv2d_backward,
    ref_conv_transpose2d,
    ref_same_padding,
)
from tests.strategies import conv_cases

TOLERANCE = {"rows": 1e-5, "separable": 1e-5, "fft": 1e-4, "taps": 1e-5}


@pytest.mark.parametrize("path", engines.PATHS)
@given(case=conv_cases(dtype=np.float32))
def test_forced_path_matches_reference(path, case):
    with engines.force_path(path):
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
    assert_close(y, expected, rtol=TOLERANCE[path], scale=term_scale(case.x, case.w))


def _same_pads(size, kernel, stride, dilation) -> tuple[int, int, int, int]:
    rows = ref_same_padding(size[0], kernel[0], stride[0], dilation[0])
    cols = ref_same_padding(size[1], kernel[1], stride[1], dilation[1])
    return (*rows, *cols)


@functools.cache
def _seam_case(mode: str, stride: int):
    rng = np.random.default_rng(7 + stride)
    x = rng.standard_normal((2, 3, 61, 47)).astype(np.float32)
    w = rng.standard_normal((3, 1, 5, 4)).astype(np.float32)
    pads = _same_pads((61, 47), (5, 4), (stride, stride), (1, 1))
    expected = ref_conv2d(x, w, stride=(stride, stride), pads=pads, groups=3, mode=mode)
    return x, w, expected


@pytest.mark.parametrize("path", engines.PATHS)
@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
@pytest.mark.parametrize("stride", [1, 2])
def test_paths_across_tile_seams(path, mode, stride):
    """Tiny tiles force many seams and border windows; results must not depend on them."""
    x, w, expected = _seam_case(mode, stride)
    with engines.force_path(path), engines.tile_elements(500):
        y = conv2d(x, w, padding="same", groups=3, padding_mode=mode, stride=stride)
    assert_close(y, expected, rtol=TOLERANCE[path])


# Images of several tiles: (name, weight shape, groups, options). Every path runs each;
# the reference runs once per case.
BIG_CASES = {
    "depthwise5-same": ((3, 1, 5, 5), 3, dict(padding="same")),
    "depthwise7x4-reflect-s2-d2": (
        (3, 1, 7, 4),
        3,
        dict(padding="same", stride=2, dilation=(1, 2), padding_mode="reflect"),
    ),
    "dense3-circular": ((4, 3, 3, 3), 1, dict(padding=1, padding_mode="circular")),
    "large15-symmetric": ((3, 1, 15, 15), 3, dict(padding="same", padding_mode="symmetric")),
    "dense4x4-replicate-s3": (
        (2, 3, 4, 4),
        1,
        dict(padding=(2, 1, 0, 3), stride=(3, 1), padding_mode="replicate"),
    ),
}


def _resolve(options, size, kernel) -> dict:
    stride = options.get("stride", 1)
    dilation = options.get("dilation", 1)
    stride = (stride, stride) if isinstance(stride, int) else stride
    dilation = (dilation, dilation) if isinstance(dilation, int) else dilation
    padding = options["padding"]
    if padding == "same":
        pads = _same_pads(size, kernel, stride, dilation)
    elif isinstance(padding, int):
        pads = (padding,) * 4
    else:
        pads = padding
    mode = options.get("padding_mode", "zeros")
    return dict(stride=stride, dilation=dilation, pads=pads, mode=mode)


@functools.cache
def _big_case(name: str):
    shape, groups, options = BIG_CASES[name]
    rng = np.random.default_rng(sorted(BIG_CASES).index(name))
    x = rng.standard_normal((1, 3, 300, 257)).astype(np.float32)
    w = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape[0]).astype(np.float32)
    ref_options = _resolve(options, x.shape[2:], shape[2:])
    return x, w, b, ref_conv2d(x, w, b, groups=groups, **ref_options)


@pytest.mark.parametrize("path", engines.PATHS)
@pytest.mark.parametrize("name", BIG_CASES)
def test_paths_on_images_of_many_tiles(path, name, monkeypatch):
    """1x3x300x257 with a small tile budget: seams in both directions, on two threads."""
    x, w, b, expected = _big_case(name)
    _, groups, options = BIG_CASES[name]
    planned = []

    def spy(*args, **kwargs):
        tiles = plan_tiles(*args, **kwargs)
        planned.append(len(tiles))
        return tiles

    monkeypatch.setattr(correlate_module, "plan_tiles", spy)
    with engines.force_path(path), engines.tile_elements(20_000):
        y = conv2d(x, w, b, groups=groups, **options)
    assert y.dtype == np.float32
    assert_close(y, expected, rtol=TOLERANCE[path])
    assert planned and min(planned) >= 2, f"only {planned} tiles: no seam tested"


@pytest.mark.parametrize("path", engines.PATHS)
def test_paths_in_float64(path, rng):
    """float64 stays float64 on every path, at float64 accuracy."""
    x = rng.standard_normal((2, 4, 23, 19))
    w = rng.standard_normal((4, 2, 6, 5))
    with engines.force_path(path), engines.tile_elements(400):
        y = conv2d(x, w, groups=2, padding=(3, 1, 0, 2), padding_mode="symmetric", stride=(1, 2))
    assert y.dtype == np.float64
    expected = ref_conv2d(x, w, groups=2, pads=(3, 1, 0, 2), mode="symmetric", stride=(1, 2))
    assert_close(y, expected, rtol=1e-10)


@functools.cache
def _transpose_backward_case():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 4, 13, 11))
    w = rng.standard_normal((6, 2, 3, 4))
    gy = rng.standard_normal((2, 6, 7, 5))  # conv2d(x, w, stride 2, padding 1)'s shape
    opts = dict(groups=2, stride=(2, 2), pads=(1, 1, 1, 1))
    expected_t = ref_conv_transpose2d(gy, w, groups=2, stride=(2, 2))
    expected_b = {
        mode: ref_conv2d_backward(gy, x, w, mode=mode, **opts)
        for mode in ("zeros", "reflect", "circular")
    }
    return x, w, gy, expected_t, expected_b


@pytest.mark.parametrize("path", engines.PATHS)
@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
def test_transpose_and_backward_on_every_path(path, mode):
    x, w, gy, expected_t, expected_b = _transpose_backward_case()
    with engines.force_path(path), engines.tile_elements(300):
        assert_close(conv_transpose2d(gy, w, groups=2, stride=2), expected_t, rtol=1e-9)
        got = conv2d_backward(gy, x, w, groups=2, stride=2, padding=1, padding_mode=mode)
    for g, want in zip(got, expected_b[mode], strict=True):
        assert_close(g, want, rtol=1e-9)


def test_automatic_choice():
    rng = np.random.default_rng(0)
    box = np.ones((3, 1, 5, 5), np.float32)
    assert choose_path(box, 3, np.float32) == "separable"
    sharpen = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float32)
    assert choose_path(np.tile(sharpen, (3, 1, 1, 1)), 3, np.float32) == "taps"  # 3 passes
    assert choose_path(np.ones((3, 1, 3, 3)), 3, np.float32) == "taps"  # 8 additions
    assert choose_path(np.ones((3, 1, 1, 7)), 3, np.float32) == "taps"  # a motion blur
    assert choose_path(rng.random((3, 1, 3, 3)), 3, np.float32) == "rows"  # 9 weights
    assert choose_path(rng.random((3, 1, 7, 7)), 3, np.float32) == "rows"  # full rank
    assert choose_path(rng.random((1, 1, 15, 15)), 1, np.float32) == "fft"
    assert choose_path(rng.random((1, 1, 9, 9)), 1, np.float32) == "rows"
    assert choose_path(np.ones((1, 1, 25, 25)), 1, np.float32) == "separable"  # 2 x 25 passes
    assert choose_path(rng.random((1, 1, 15, 15)), 1, np.float32, (3, 3)) == "rows"
    assert choose_path(np.ones((64, 64, 3, 3)), 1, np.float32) == "rows"
    assert choose_path(rng.random((2, 3, 7, 7)), 1, np.float32) == "fft"  # mixes channels
    nan = np.ones((3, 1, 15, 15))
    nan[0, 0, 0, 0] = np.nan
    assert choose_path(nan, 3, np.float32) == "rows"


def test_force_path_rejects_unknown_names():
    with pytest.raises(ValueError, match="path"), engines.force_path("winograd"):
        pass


def test_threads_from_environment(monkeypatch):
    monkeypatch.setenv("CONVCLI_THREADS", "3")
    assert engines.thread_count() == 3
    monkeypatch.setenv("CONVCLI_THREADS", "zero")
    with pytest.raises(ValueError, match="CONVCLI_THREADS"):
        engines.thread_count()


def test_using_sets_the_engines_for_this_thread_only(monkeypatch):
    monkeypatch.setenv("CONVCLI_THREADS", "3")
    seen = {}
    with engines.force_path("fft"), engines.using(engines.Settings(path="rows", threads=1)):
        seen["here"] = (engines.forced_path(), engines.thread_count(), engines.tile_budget(7))
        worker = threading.Thread(
            target=lambda: seen.update(there=(engines.forced_path(), engines.thread_count()))
        )
        worker.start()
        worker.join()
        assert engines.settings() == engines.Settings(path="rows", threads=1)
    assert seen == {"here": ("rows", 1, 7), "there": ("fft", 3)}
    assert engines.settings() == engines.Settings() and engines.thread_count() == 3
    with pytest.raises(ValueError, match="threads"), engines.using(engines.Settings(threads=0)):
        pass


def test_one_thread_runs_tiles_inline(monkeypatch):
    monkeypatch.setattr(tiles_module, "_executor", None)  # the pool would fail if used
    x = np.arange(5000.0).reshape(1, 1, 50, 100)
    with engines.using(engines.Settings(threads=1)), engines.tile_elements(300):
        y = conv2d(x, np.ones((1, 1, 3, 3)))
    assert_close(y, ref_conv2d(x, np.ones((1, 1, 3, 3))))


def test_overlapping_blas_limits_restore_the_count_when_the_last_one_leaves():
    if blas._openblas() is None:
        pytest.skip("NumPy's BLAS is not OpenBLAS")
    get, put = blas._openblas()
    outside = get()
    put(2)  # so that "restored" and "left at one thread" differ
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    counts = {}

    def first():
        with blas.blas_threads(1):
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second():
        first_in.wait(5)
        with blas.blas_threads(1):
            second_in.set()
            first_out.wait(5)
            counts["after the first left"] = get()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert counts == {"after the first left": 1} and get() == 2
    finally:
        put(outside)


def test_next_fast_len():
    assert [next_fast_len(n) for n in (1, 7, 11, 97, 257)] == [1, 8, 12, 100, 270]


# Kernels whose taps share weights, are 1 or -1, or are zero: the taps and separable
# engines sum such taps before one multiplication (or none).
SHARED_TAPS = {
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "laplacian": [[1, 1, 1], [1, -8, 1], [1, 1, 1]],
    "minus": [[0, 0, 0], [0, -1, 0], [0, 0, 0]],
    "ones": [[1, 1], [1, 1]],
    "gaussian": [[1, 2, 1], [2, 4, 2], [1, 2, 1]],
    "zero": [[0, 0, 0], [0, 0, 0], [0, 0, 0]],
}


@pytest.mark.parametrize("path", ["taps", "separable"])
@pytest.mark.parametrize("name", SHARED_TAPS)
def test_shared_unit_and_zero_taps_against_the_reference(path, name, rng):
    kernel = np.array(SHARED_TAPS[name], np.float32)
    # Per channel, two filters each (a bank's layout): the second filter differs, so taps
    # share a weight only where both filters do.
    w = np.stack([kernel, 2 * kernel.T, kernel, kernel[::-1], kernel, -kernel])[:, None]
    x = rng.standard_normal((2, 3, 23, 19)).astype(np.float32)
    with engines.force_path(path), engines.tile_elements(300):
        y = conv2d(x, w, padding=1, groups=3, padding_mode="reflect")
    pads = (1, 1, 1, 1)
    expected = ref_conv2d(x, w, pads=pads, groups=3, mode="reflect")
    assert_close(y, expected, rtol=TOLERANCE[path], scale=term_scale(x, w))


class Gathered:
    """A sink keeping every tile."""

    def __init__(self, shape):
        self.shape = shape
        self.values = np.full(shape, np.nan, np.float32)

    def put(self, at, block):
        self.values[at[0], :, at[1], at[2]] = block


@pytest.mark.parametrize("path", engines.PATHS)
@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
@pytest.mark.parametrize(("stride", "dilation"), [(1, 1), ((2, 1), (1, 2)), (2, 1)])
def test_channels_side_by_side_give_the_planes_values(path, mode, stride, dilation, rng):
    """A decoder's (H, W, C) integers, one kernel for every channel: the elementwise
    engines run the channels side by side as one wide channel (exactly the values they
    compute on planes; a column stride keeps the planes); tiles cross pixels' seams."""
    from convcli.conv.operations import conv2d_into

    stored = rng.integers(0, 256, (2, 29, 31, 3), np.uint8)
    x = stored.transpose(0, 3, 1, 2)
    kernel = rng.standard_normal((3, 4)).astype(np.float32)
    w = np.stack([kernel] * 3)[:, None]
    bias = rng.standard_normal(3).astype(np.float32)
    options = dict(stride=stride, dilation=dilation, groups=3, padding="same", padding_mode=mode)
    if mode == "reflect" and dilation != 1:
        options["padding"] = 2
    with engines.force_path(path), engines.tile_elements(700):
        planes = np.divide(x, np.float32(255), dtype=np.float32)
        expected = conv2d(np.ascontiguousarray(planes), w, bias, **options)
        sink = Gathered(expected.shape)
        conv2d_into(sink, x, w, bias, divisor=255, **options)
    exact = path in ("taps", "separable")
    if exact:
        np.testing.assert_array_equal(sink.values, expected)
    else:
        assert_close(sink.values, expected, rtol=TOLERANCE[path])
