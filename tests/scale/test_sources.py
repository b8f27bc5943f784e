"""Region sources: a block's window is read run by run, each region once, in order."""

from __future__ import annotations

import numpy as np
import pytest

from convcli.errors import ImageError
from convcli.scale.sources import ArraySource, RegionSource, pack, read_window


class CountingSource:
    """A toy region reader: an array behind ``read_region``, every call recorded."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype
        self.reads: list[tuple[slice, ...]] = []

    def read_region(self, samples, channels, rows, cols):
        self.reads.append((samples, channels, rows, cols))
        return self.array[samples, channels, rows, cols].copy()


def test_a_counting_source_is_a_region_source():
    assert isinstance(CountingSource(np.zeros((1, 1, 2, 2))), RegionSource)
    assert isinstance(ArraySource(np.zeros((1, 1, 2, 2))), RegionSource)


def test_read_window_packs_runs_in_order():
    x = np.arange(2 * 3 * 10 * 12, dtype=np.float32).reshape(2, 3, 10, 12)
    source = CountingSource(x)
    rows, cols = ((7, 10), (0, 2)), ((0, 3), (5, 6), (11, 12))
    window = read_window(source, (1, 2), rows, cols)
    expected = x[1:2][:, :, [7, 8, 9, 0, 1]][..., [0, 1, 2, 5, 11]]
    np.testing.assert_array_equal(window, expected)
    assert len(source.reads) == 6  # one per pair of runs, nothing twice
    assert {(r.start, r.stop, c.start, c.stop) for _, _, r, c in source.reads} == {
        (r0, r1, c0, c1) for r0, r1 in rows for c0, c1 in cols
    }


def test_one_run_each_way_is_one_read_returned_as_is():
    x = np.arange(64.0).reshape(1, 1, 8, 8)
    window = read_window(ArraySource(x), (0, 1), ((2, 5),), ((1, 8),))
    assert np.shares_memory(window, x)  # a view of a NumPy source: no copy
    np.testing.assert_array_equal(window, x[:, :, 2:5, 1:8])


def test_no_rows_is_an_empty_window():
    window = read_window(CountingSource(np.ones((1, 2, 4, 4))), (0, 1), (), ((0, 4),))
    assert window.shape == (1, 2, 0, 4)


def test_a_region_of_the_wrong_shape_is_an_image_error():
    class Short(CountingSource):
        def read_region(self, samples, channels, rows, cols):
            return super().read_region(samples, channels, rows, cols)[..., :-1]

    with pytest.raises(ImageError, match=r"Short.read_region returned shape \(1, 1, 2, 1\)"):
        read_window(Short(np.ones((1, 1, 4, 4))), (0, 1), ((0, 2),), ((0, 2),))


def test_unbatched_array_source_is_one_sample():
    x = np.arange(2 * 3 * 4.0).reshape(2, 3, 4)
    source = ArraySource(x)
    assert source.shape == (1, 2, 3, 4) and source.dtype == x.dtype
    region = source.read_region(slice(0, 1), slice(1, 2), slice(0, 2), slice(1, 3))
    np.testing.assert_array_equal(region, x[None, 1:2, 0:2, 1:3])


def test_pack_places_pieces():
    a, b = np.arange(6.0).reshape(2, 3), np.arange(10.0, 14.0).reshape(2, 2)
    places = [
        ((slice(0, 2), slice(0, 2)), (slice(0, 2), slice(1, 3))),
        ((slice(0, 2), slice(2, 4)), (slice(0, 2), slice(0, 2))),
    ]
    np.testing.assert_array_equal(
        pack((2, 4), np.float64, places, a, b), [[1, 2, 10, 11], [4, 5, 12, 13]]
    )
