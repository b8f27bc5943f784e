"""Bands of blocks: whole rows of an output's blocks, each computed as one Dask graph
(:mod:`convcli.scale.streaming`), and the thread that writes one band while the next
is computed.

The writer is not a scheduler: one thread, one sink, the bands in order. It lets the
sink's I/O and encoding (a TIFF's deflate) overlap the next band's blocks, and holds the
computing thread back when the sink falls behind, so that two bands of results at most
are ever held.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

from convcli.conv import engines
from convcli.images import outputs
from convcli.scale import sinks

_GRACE = 1.0  # seconds an interrupted run waits for the writer to stop


def bands_of(grid: list, least: int) -> list[list]:
    """``grid``'s blocks (row by row, as :func:`convcli.scale.streaming.block_grid` makes
    them) cut into bands: whole rows of blocks, consecutive rows together until a band
    holds ``least`` blocks (so that every worker has more than one block of each band).

    Examples
    --------
    >>> from convcli.scale.streaming import block_grid
    >>> grid = block_grid((1, 1, 50, 30), chunks=(10, 20))
    >>> [len(band) for band in bands_of(grid, 1)], [len(band) for band in bands_of(grid, 3)]
    ([2, 2, 2, 2, 2], [4, 4, 2])
    """
    found, band = [], []
    for _, row in itertools.groupby(grid, key=lambda block: (block.samples, block.rows)):
        band += row
        if len(band) >= least:
            found.append(band)
            band = []
    return [*found, band] if band else found


def write_while_computing(sink: sinks.Sink, bands: Iterator[list[tuple]]) -> None:
    """Hand the ``(block, result)`` pairs of each band, in order, to ``sink.write`` on a
    writer thread, while this thread computes the next band (``bands`` computes as it is
    iterated). At most two bands are held: the one being written, the one computed."""
    writer = _Writer(sink)
    try:
        for band in bands:
            writer.put(band)
        writer.finish()
    except BaseException as err:
        writer.abort(interrupted=not isinstance(err, Exception))
        raise


class _Aborted(Exception):
    """The computing thread stopped: the sink stops too (and removes what it wrote)."""


class _Writer:
    """``sink.write`` on a thread of its own, fed band by band (see
    :func:`_write_while_computing`), with the engine settings of the thread that made it.
    Not a scheduler: one thread, one sink, the bands in order."""

    def __init__(self, sink: sinks.Sink) -> None:
        self.sink = sink
        self.changed = threading.Condition()
        self.writing: list[tuple] | None = None  # the band the sink is taking
        self.waiting: list[tuple] | None = None  # the next band, handed over
        self.last = self.aborted = self.ended = False
        self.error: BaseException | None = None
        settings = engines.settings()
        self.thread = threading.Thread(
            target=self._run, args=(settings,), name="convcli-writer", daemon=True
        )
        self.thread.start()

    def _run(self, settings: engines.Settings) -> None:
        try:
            with engines.using(settings):
                self.sink.write(self._pairs())
        except BaseException as err:  # handed to the computing thread
            self.error = err
        finally:
            with self.changed:
                self.ended = True
                self.changed.notify_all()

    def _pairs(self) -> Iterator[tuple]:
        while True:
            with self.changed:
                self.writing = None  # asked for more: done with the band before
                self.changed.notify_all()
                self.changed.wait_for(lambda: self.waiting is not None or self.last or self.aborted)
                if self.aborted:
                    raise _Aborted
                if self.waiting is None:
                    return
                self.writing, self.waiting = self.waiting, None
            yield from self.writing

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error
        raise RuntimeError(f"{self.sink.target}: the writer stopped before the last block")

    def put(self, band: list[tuple]) -> None:
        """Hand ``band`` over once the sink is done with the band before the last one."""
        with self.changed:
            self.changed.wait_for(lambda: self.writing is self.waiting is None or self.ended)
            if self.ended:
                self._raise()
            self.waiting = band
            self.changed.notify_all()

    def finish(self) -> None:
        """No more bands: wait for the sink to write the last one and put its output in place."""
        with self.changed:
            self.last = True
            self.changed.notify_all()
        self.thread.join()
        if self.error is not None or self.waiting is not None:
            self._raise()

    def abort(self, *, interrupted: bool) -> None:
        """Stop the sink (it removes its temporary). Interrupted, the process is about to
        end and the sink may be blocked in a write (a pipe): it gets a moment, then every
        temporary output not yet in place is removed."""
        with self.changed:
            self.aborted = True
            self.changed.notify_all()
        self.thread.join(timeout=_GRACE if interrupted else None)
        if self.thread.is_alive():
            outputs.remove_unplaced(final=True)
