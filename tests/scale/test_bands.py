"""Bands of blocks, and the writer that takes one band while the next is computed."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convcli.errors import OutputError
from convcli.scale import bands
from convcli.scale.streaming import block_grid


@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 40), st.integers(1, 40)),
    chunks=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    least=st.integers(1, 12),
)
def test_bands_are_whole_rows_in_order_each_but_the_last_at_least_so_many(shape, chunks, least):
    n, height, width = shape
    grid = block_grid((n, 1, height, width), chunks=chunks)
    found = bands.bands_of(grid, least)
    assert [block for band in found for block in band] == grid
    assert all(len(band) >= least for band in found[:-1])
    rows = [(block.samples, block.rows) for block in grid]
    end = 0
    for band in found[:-1]:  # a band ends where a row ends
        end += len(band)
        assert rows[end] != rows[end - 1]


class SlowSink:
    """Takes its pairs slowly, noting when it is done with each band."""

    target = "slow.tif"

    def __init__(self, fail_at: int | None = None) -> None:
        self.events, self.fail_at, self.taken = [], fail_at, []

    def write(self, pairs) -> None:
        for band, item in pairs:
            if item == self.fail_at:
                raise OutputError("slow.tif: cannot write (No space left on device)")
            time.sleep(0.01)
            self.taken.append((band, item))
            if item == 2:
                self.events.append(("written", band))

    def discard(self) -> None:
        pass


def computed(events: list, count: int):
    for band in range(count):
        events.append(("computed", band))
        yield [(band, item) for item in range(3)]


def test_two_bands_at_most_are_held_and_every_pair_is_written_in_order():
    sink = SlowSink()
    bands.write_while_computing(sink, computed(sink.events, 6))
    assert sink.taken == [(band, item) for band in range(6) for item in range(3)]
    for band in range(2, 6):  # band k+2 waits until the sink is done with band k
        assert sink.events.index(("written", band - 2)) < sink.events.index(("computed", band))


def test_the_writers_error_stops_the_computing_thread_at_its_next_band():
    sink = SlowSink(fail_at=1)
    with pytest.raises(OutputError, match="No space left"):
        bands.write_while_computing(sink, computed(sink.events, 50))
    assert len([e for e in sink.events if e[0] == "computed"]) <= 3
    assert "convcli-writer" not in {thread.name for thread in threading.enumerate()}
