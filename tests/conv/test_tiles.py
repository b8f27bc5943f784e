"""The tile pool's helpers: tile plans, reductions in bands of rows."""

from __future__ import annotations

import numpy as np
import pytest

from convcli.conv.engines import tiles


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


@pytest.mark.parametrize("width", [5, 3 * 4097, 3 * 10_000])
def test_column_blocks_hold_whole_pixels(width):
    """Blocks are a multiple of ``unit`` columns wide (a pixel's channels side by side),
    and the tiles cover the output once."""
    plan = tiles.plan_tiles(1, 40, width, per_pixel=3, budget=1 << 16, block_w=1000, unit=3)
    covered = np.zeros((40, width), int)
    for t in plan:
        covered[t.r0 : t.r1, t.c0 : t.c1] += 1
        assert t.c0 % 3 == 0 and ((t.c1 - t.c0) % 3 == 0 or t.c1 == width)
    assert (covered == 1).all()
