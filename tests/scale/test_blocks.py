"""Blocks without Dask: every block of a plan, run on its own window and put in place,
gives the in-memory function's result on the whole image (the unit of a streaming writer)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convcli
from convcli.conv import engines
from convcli.conv.engines.correlate import correlate
from convcli.conv.geometry import conv2d_geometry, conv_transpose2d_geometry
from convcli.scale import blocks
from convcli.scale.blocks import run_block
from convcli.scale.plan import plan_blocks
from convcli.scale.sources import ArraySource
from tests.scale.checks import assert_matches
from tests.strategies import any_transpose_cases, conv_cases

chunk_sizes = st.tuples(st.integers(1, 3), st.integers(1, 7), st.integers(1, 7))


def run_plan(plan, x, weight, bias) -> np.ndarray:
    dtype = np.result_type(x, weight, np.float32)
    out = np.full(plan.geometry.output_shape, np.nan, dtype)
    for block in plan.blocks():
        rows = slice(block.rows.start, block.rows.stop)
        cols = slice(block.cols.start, block.cols.stop)
        out[slice(*block.samples), :, rows, cols] = run_block(
            plan, block, ArraySource(x), weight, bias
        )
    return out


@pytest.mark.parametrize("path", engines.PATHS)
@given(case=conv_cases(dtype=np.float32, max_size=12), chunks=chunk_sizes)
def test_conv2d_blocks_make_the_whole_result(path, case, chunks):
    options = case.options()
    with engines.force_path(path):
        expected = convcli.conv2d(case.x, case.w, case.b, **options)
        geo = conv2d_geometry(case.x.shape, case.w.shape, **options)
        got = run_plan(plan_blocks(geo, chunks=chunks), case.x, case.w, case.b)
    assert_matches(got, expected, terms=(case.x, case.w))


@pytest.mark.parametrize("path", engines.PATHS)
@given(case=any_transpose_cases(dtype=np.float32), chunks=chunk_sizes)
def test_transposed_blocks_make_the_whole_result(path, case, chunks):
    x = case.x if case.x.ndim == 4 else case.x[None]
    options = case.options()
    with engines.force_path(path):
        expected = convcli.conv_transpose2d(x, case.w, case.b, **options)
        geo = conv_transpose2d_geometry(x.shape, case.w.shape, **options)
        got = run_plan(plan_blocks(geo, chunks=chunks), x, case.w, case.b)
    assert_matches(got, expected, terms=(x, case.w))


def test_a_block_runs_its_engines_on_one_thread_with_the_settings_given(monkeypatch):
    seen = []

    def spy(*args, **kwargs):
        seen.append((engines.thread_count(), engines.settings().path))
        return correlate(*args, **kwargs)

    monkeypatch.setattr(blocks, "correlate", spy)
    monkeypatch.setenv("CONVCLI_THREADS", "2")
    x, w = np.ones((1, 1, 8, 8), np.float32), np.ones((1, 1, 3, 3), np.float32)
    plan = plan_blocks(conv2d_geometry(x.shape, w.shape), chunks=3)
    chosen = engines.Settings(path="fft")
    result = [run_block(plan, block, ArraySource(x), w, settings=chosen) for block in plan.blocks()]
    assert len(seen) == len(result) == 4 and set(seen) == {(1, "fft")}
    assert engines.thread_count() == 2 and engines.settings().path is None  # restored


def test_engine_settings_stay_in_their_thread():
    inside = threading.Event()
    leave = threading.Event()

    def block():
        with engines.using(engines.Settings(path="rows", threads=1)):
            inside.set()
            leave.wait(5)

    worker = threading.Thread(target=block)
    worker.start()
    inside.wait(5)
    try:
        assert engines.settings().path is None and engines.thread_count() != 0
        with engines.force_path("fft"):
            assert engines.settings().path == "fft"
    finally:
        leave.set()
        worker.join()


def test_transposed_block_receiving_nothing_is_the_bias():
    # Stride 4 with a 1x1 kernel: three of every four output rows receive no input.
    x, w, b = np.ones((1, 1, 3, 3)), np.ones((1, 2, 1, 1)), np.array([0.5, -1.0])
    plan = plan_blocks(conv_transpose2d_geometry(x.shape, w.shape, stride=4), chunks=(1, 9))
    empty = [block for block in plan.blocks() if not block.rows.runs]
    assert len(empty) == 6
    for block in empty:
        out = run_block(plan, block, ArraySource(x), w, b)
        np.testing.assert_array_equal(out, np.broadcast_to(b[None, :, None, None], out.shape))
