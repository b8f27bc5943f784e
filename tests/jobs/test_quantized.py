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


@pytest.mark.parametrize("depth", [8, 16])
def test_integer_tiles_are_their_exact_values_integers_counts_and_bounds(depth, rng):
    """Tiles of exact integers over 255 (an 8-bit image's sums), in any order and from
    any threads: what quantizing their values as floats gives, the bounds as float32."""
    sums = rng.integers(-300, 600, (2, 3, 40, 33)).astype(np.int16)
    values = np.divide(sums, np.float32(255), dtype=np.float32)
    expected = quantize(values, depth)
    sink = Quantizing(values.shape, depth)
    assert sink.takes_integers(255) and not sink.takes_integers(7)
    cuts = [
        (slice(n, n + 1), slice(r, r + 7), slice(c, c + 10))
        for n, r, c in itertools.product(range(2), range(0, 40, 7), range(0, 33, 10))
    ]
    rng.shuffle(cuts)
    with ThreadPoolExecutor(4) as pool:
        list(
            pool.map(
                lambda at: sink.put_integers(at, sums[at[0], :, at[1], at[2]].copy(), 255), cuts
            )
        )
    integers, low, high = sink.finish()
    np.testing.assert_array_equal(integers.values, expected.values)
    np.testing.assert_array_equal(integers.below, expected.below)
    np.testing.assert_array_equal(integers.above, expected.above)
    assert integers.nan.tolist() == [0, 0, 0]
    np.testing.assert_array_equal(low, values.min(axis=(1, 2, 3)))
    np.testing.assert_array_equal(high, values.max(axis=(1, 2, 3)))


def test_sixteen_bit_sums_do_not_become_eight_bit_integers():
    assert not Quantizing((1, 1, 1, 1), 8).takes_integers(65535)
    assert Quantizing((1, 1, 1, 1), 16).takes_integers(65535)
