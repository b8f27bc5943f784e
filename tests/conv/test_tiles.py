"""The tile pool's helpers: per-thread limits and reductions in blocks."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from convcli.conv.engines import thread_count, tiles


@pytest.mark.parametrize("shape", [(1, 5), (2, 3, 700, 800), (3, 1 << 20)])
@pytest.mark.parametrize("reduce", [np.fmin, np.fmax, np.minimum, np.maximum])
def test_reduce_parallel_matches_numpy(shape, reduce):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x.reshape(len(x), -1)[0, 3] = np.nan
    expected = reduce.reduce(x.reshape(len(x), -1), axis=1)
    np.testing.assert_array_equal(tiles.reduce_parallel(reduce, x), expected)
    view = x[:, ::2] if x.ndim == 2 else x[:, :, ::2]  # not contiguous: no copy, same answer
    expected = reduce.reduce(view.reshape(len(view), -1), axis=1)
    np.testing.assert_array_equal(tiles.reduce_parallel(reduce, view), expected)


def test_thread_limit_is_per_thread_and_nests(monkeypatch):
    monkeypatch.setenv("CONVCLI_THREADS", "4")
    seen = {}
    with tiles.thread_limit(1):
        seen["inside"] = tiles.threads_here()
        with tiles.thread_limit(None):
            seen["lifted"] = tiles.threads_here()
        seen["again"] = tiles.threads_here()
        other = threading.Thread(target=lambda: seen.update(other=tiles.threads_here()))
        other.start()
        other.join()
    seen["after"] = tiles.threads_here()
    assert seen == {"inside": 1, "lifted": 4, "again": 1, "other": 4, "after": thread_count()}
