"""The tile pool's helpers: reductions in bands of rows."""

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
