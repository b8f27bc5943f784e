"""One image through a job, block by block: never whole in memory, the same numbers as
the in-memory path.

:func:`run_blocks` builds the job's stages over the input (:mod:`convcli.scale.stages`),
cuts the output into blocks (:func:`block_grid`: rows of blocks on the engine's tile
grid, a row small enough to hold) and the blocks into bands (:func:`bands_of`: whole
rows, at least two blocks per worker). Each band is one Dask graph, one
:func:`compute_block` task per block, computed in parallel by the scheduler
(:mod:`convcli.scale.schedulers`) and returned in order; while the next band computes, a
writer thread hands this one to the sink (:mod:`convcli.scale.sinks`), so at most two
bands of results are held, and a TIFF is written in row order. What the whole image
decides stays whole-image: min, max and the clipped counts are reductions over the
blocks, and ``--range normalize`` first runs a pass that computes only the min and max.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from convcli.conv import engines
from convcli.errors import ResourceError
from convcli.images import outputs, writing
from convcli.images.flatten import Colour, flatten
from convcli.jobs import pipeline
from convcli.jobs.ranges import extreme, map_range
from convcli.scale import sinks, stages
from convcli.scale.plan import BLOCK

BAND_BYTES = 64 << 20  # float32 bytes of one row of blocks at most: what a TIFF sink holds
_GRACE = 1.0  # seconds an interrupted run waits for the writer to stop


class Block:
    """One output block: one sample, a row range and a column range (``(start, stop)``)."""

    __slots__ = ("cols", "rows", "samples")

    def __init__(self, samples, rows, cols) -> None:
        self.samples, self.rows, self.cols = samples, rows, cols

    def __repr__(self) -> str:
        return f"Block(samples={self.samples}, rows={self.rows}, cols={self.cols})"


def _sizes(total: int, size: int) -> list[tuple[int, int]]:
    return [(a, min(total, a + size)) for a in range(0, total, size)]


def block_grid(
    shape: tuple[int, ...],
    *,
    chunks: tuple[int, int] | None = None,
    unit: tuple[int, int] = (1, 1),
    band_rows: int | None = None,
) -> list[Block]:
    """Blocks over an (N, C, H, W) output, row by row: ``chunks`` (h, w) exactly, or about
    :data:`~convcli.scale.plan.BLOCK` squared pixels, multiples of ``unit`` (the engine's
    tile grid, or a writer's chunks), no taller than ``band_rows``.

    Examples
    --------
    >>> [(b.rows, b.cols) for b in block_grid((1, 1, 5, 6), chunks=(3, 4))]
    [((0, 3), (0, 4)), ((0, 3), (4, 6)), ((3, 5), (0, 4)), ((3, 5), (4, 6))]
    >>> blocks = block_grid((1, 3, 10000, 10000), unit=(1, 512), band_rows=600)
    >>> blocks[0].rows, blocks[0].cols
    ((0, 600), (0, 2048))
    """
    n, _, height, width = shape
    if chunks is None:
        wide = width if width <= BLOCK * 3 // 2 else max(unit[1], BLOCK // unit[1] * unit[1])
        tall = max(1, BLOCK * BLOCK // wide)
        if band_rows is not None:
            tall = min(tall, band_rows)
        tall = max(unit[0], tall // unit[0] * unit[0])
    else:
        tall, wide = chunks
    count = n * math.ceil(height / tall) * math.ceil(width / wide)
    if count > 10**7:
        raise ResourceError(
            f"the output {tuple(shape)} in blocks of {tall}x{wide} would be {count} blocks; "
            f"use larger --chunks"
        )
    return [
        Block((s, s + 1), rows, cols)
        for s in range(n)
        for rows in _sizes(height, tall)
        for cols in _sizes(width, wide)
    ]


@dataclass(frozen=True)
class Mapping:
    """How a block's values become what its sink stores."""

    value_range: str | None  # None: raw values
    bounds: tuple[np.ndarray, np.ndarray] | None = None  # whole-image per-sample min, max
    depth: int | None = None  # integers of this depth (channels last), or None: floats
    stats_only: bool = False  # the min and max only (normalize's first pass)
    background: Colour | None = None  # alpha flattened over it, once mapped


@dataclass
class BlockResult:
    minimum: np.ndarray  # per sample of the block
    maximum: np.ndarray
    below: np.ndarray | None = None  # per sample: values clipped at 0 and at 1
    above: np.ndarray | None = None
    nan: int = 0
    payload: np.ndarray | None = None


def compute_block(final, block: Block, mapping: Mapping, part=None) -> BlockResult:
    """Compute ``block`` of the final stage, map its values, write it (with ``part``) or
    carry its pixels back; runs in a worker, on one engine thread (the scheduler's
    workers are the parallel unit: tile threads inside them would oversubscribe the
    cores)."""
    with engines.using(replace(engines.settings(), threads=1)):
        return _compute_block(final, block, mapping, part)


def _compute_block(final, block: Block, mapping: Mapping, part) -> BlockResult:
    samples, rows, cols = (slice(*block.samples), slice(*block.rows), slice(*block.cols))
    try:
        values = np.asarray(final.read_region(samples, slice(0, final.shape[1]), rows, cols))
    except MemoryError:
        raise ResourceError(
            f"ran out of memory computing a block {block}; use smaller --chunks"
        ) from None
    result = BlockResult(extreme(values, np.fmin), extreme(values, np.fmax))
    if mapping.stats_only:
        return result
    s0 = block.samples[0]
    bounds = None
    if mapping.bounds is not None:
        bounds = tuple(b[s0 : s0 + len(values)] for b in mapping.bounds)
    over = mapping.background
    if mapping.depth is not None and mapping.value_range == "clip":
        # counts as it clips (and flattens), as in memory
        integers = writing.quantize(values, mapping.depth, background=over)
        result.below, result.above = integers.below, integers.above
    else:
        pixels, result.below, result.above = map_range(values, mapping.value_range, bounds=bounds)
        if part is not None:
            part.write(pixels if over is None else flatten(pixels, over), block)
            return result
        if mapping.depth is None:
            result.payload = pixels
            return result
        integers = writing.quantize(pixels, mapping.depth, background=over)
    result.nan = int(integers.nan[: integers.values.shape[-1]].sum())  # alpha's not written
    result.payload = integers.values
    return result


@dataclass
class Streamed:
    """What the report needs of an image filtered in blocks."""

    built: stages.Pipeline
    minimum: float
    maximum: float
    clipped_low: int
    clipped_high: int
    seconds: float
    warnings: list[str]


def engine_unit(built: stages.Pipeline) -> tuple[int, int]:
    """The tile grid of the last step's engine: default blocks on it compute nothing twice."""
    final = built.final
    while not isinstance(final, stages.StepRegions):
        final = getattr(final, "source", None)
        if final is None:
            return 1, 1
    return final.unit


def bands_of(grid: list[Block], least: int) -> list[list[Block]]:
    """``grid`` (row by row, as :func:`block_grid` makes it) cut into bands: whole rows of
    blocks, consecutive rows together until a band holds ``least`` blocks (so that every
    worker has more than one block of each band).

    Examples
    --------
    >>> grid = block_grid((1, 1, 50, 30), chunks=(10, 20))
    >>> [len(band) for band in bands_of(grid, 1)], [len(band) for band in bands_of(grid, 3)]
    ([2, 2, 2, 2, 2], [4, 4, 2])
    """
    bands: list[list[Block]] = []
    band: list[Block] = []
    for index, block in enumerate(grid):
        band.append(block)
        following = grid[index + 1] if index + 1 < len(grid) else None
        row_ends = following is None or (following.samples, following.rows) != (
            block.samples,
            block.rows,
        )
        if row_ends and len(band) >= least:
            bands.append(band)
            band = []
    if band:
        bands.append(band)
    return bands


def run_blocks(
    source,
    sink_for: Callable[[tuple[int, ...], bool], sinks.Sink],
    steps: list[pipeline.Step],
    *,
    has_alpha: bool,
    value_range: str | None,
    scheduler,
    chunks: tuple[int, int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Streamed:
    """Filter region source ``source`` by ``steps`` into the sink ``sink_for(output shape,
    alpha)`` makes, a band of blocks at a time on ``scheduler``
    (:class:`~convcli.scale.schedulers.Scheduler`); return the report's numbers."""
    built = stages.build(source, steps, has_alpha=has_alpha)
    shape = tuple(built.final.shape)
    sink = sink_for(shape, built.has_alpha)
    try:
        unit = engine_unit(built)
        if isinstance(sink, sinks.ZarrSink):  # blocks own whole chunks: no shared writes
            unit = sink.chunk
        band = max(1, BAND_BYTES // (4 * shape[1] * shape[3]))
        grid = block_grid(shape, chunks=chunks, unit=unit, band_rows=band)
        bands = bands_of(grid, 2 * scheduler.workers)
        final = scheduler.share(built.final)
        start = time.perf_counter()
        passes = 2 if value_range == "normalize" else 1
        done = 0

        def computed(band: list[Block], mapping: Mapping, part=None) -> list[tuple]:
            nonlocal done
            items = [(block, mapping, part) for block in band]
            results = list(zip(band, scheduler.map(compute_block, final, items), strict=True))
            for _ in band:
                done += 1
                if progress is not None:
                    progress(done, passes * len(grid))
            return results

        bounds = None
        if passes == 2:  # the whole image's min and max first
            low, high = _extremes(shape[0])
            stats = Mapping(value_range, stats_only=True)
            for band in bands:
                for block, result in computed(band, stats):
                    _fold(low, high, block, result)
            bounds = (low, high)
        depth = sink.depth if sink.payload == "integers" else None
        mapping = Mapping(value_range, bounds, depth, background=sink.background)
        totals = _Totals(shape[0])

        def counted(band: list[Block]) -> list[tuple]:
            results = computed(band, mapping, sink.part)
            for block, result in results:
                totals.add(block, result)
            return results

        _write_while_computing(sink, map(counted, bands))
    except BaseException:
        sink.discard()
        raise
    seconds = time.perf_counter() - start
    warnings = sink.notes + writing.nan_notes(sink.target, totals.nan)
    return Streamed(
        built,
        float(totals.low.min()),
        float(totals.high.max()),
        int(totals.below.sum()),
        int(totals.above.sum()),
        seconds,
        warnings,
    )


def _write_while_computing(sink: sinks.Sink, bands: Iterator[list[tuple]]) -> None:
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


def _extremes(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full(n, np.nan, np.float32), np.full(n, np.nan, np.float32)


def _fold(low: np.ndarray, high: np.ndarray, block: Block, result: BlockResult) -> None:
    where = slice(*block.samples)
    np.fmin(low[where], result.minimum, out=low[where])
    np.fmax(high[where], result.maximum, out=high[where])


class _Totals:
    def __init__(self, n: int) -> None:
        self.low, self.high = _extremes(n)
        self.below, self.above = np.zeros(n, np.int64), np.zeros(n, np.int64)
        self.nan = 0

    def add(self, block: Block, result: BlockResult) -> None:
        _fold(self.low, self.high, block, result)
        where = slice(*block.samples)
        self.below[where] += result.below
        self.above[where] += result.above
        self.nan += result.nan
