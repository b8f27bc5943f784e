"""The quantizing sink: tiles put in any order, from any threads, give what quantizing
the whole float result gives."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from convcli.images.writing import quantize
from convcli.jobs.quantized import Quantizing


@pytest.mark.parametrize("depth", [8, 16])
def test_tiles_in_any_order_are_the_whole_results_integers_counts_and_bounds(depth, rng):
    values = rng.uniform(-0.3, 1.3, (2, 3, 40, 33)).astype(np.float32)
    values[0, 1, 5, 7] = values[1, 2, 30, 1] = np.nan
    values[1, :, 10:20, 3:9] = np.nan  # a tile of sample 1 partly NaN
    expected = quantize(values, depth)
    sink = Quantizing(values.shape, depth)
    cuts = [
        (slice(n, n + 1), slice(r, r + 7), slice(c, c + 10))
        for n, r, c in itertools.product(range(2), range(0, 40, 7), range(0, 33, 10))
    ]
    rng.shuffle(cuts)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda at: sink.put(at, values[at[0], :, at[1], at[2]].copy()), cuts))
    integers, low, high = sink.finish()
    np.testing.assert_array_equal(integers.values, expected.values)
    np.testing.assert_array_equal(integers.below, expected.below)
    np.testing.assert_array_equal(integers.above, expected.above)
    np.testing.assert_array_equal(integers.nan, expected.nan)
    np.testing.assert_array_equal(low, np.fmin.reduce(values, axis=(1, 2, 3)))
    np.testing.assert_array_equal(high, np.fmax.reduce(values, axis=(1, 2, 3)))


def test_a_sample_of_nan_only_has_nan_bounds():
    sink = Quantizing((1, 1, 2, 2), 8)
    sink.put((slice(0, 1), slice(0, 2), slice(0, 2)), np.full((1, 1, 2, 2), np.nan, np.float32))
    integers, low, high = sink.finish()
    assert integers.values.ravel().tolist() == [0, 0, 0, 0]
    assert integers.nan.tolist() == [4]
    assert np.isnan(low[0]) and np.isnan(high[0])
