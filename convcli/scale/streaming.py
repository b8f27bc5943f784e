"""One image through a job, block by block: never whole in memory, the same numbers as
the in-memory path.

:func:`run_blocks` builds the job's stages over the input (:mod:`convcli.scale.stages`),
cuts the output into blocks (:func:`block_grid`: rows of blocks on the engine's tile
grid, a row small enough to hold) and the blocks into bands (:mod:`convcli.scale.bands`:
whole rows, at least two blocks per worker). Each band is one Dask graph, one
:func:`compute_block` task per block, computed in parallel by the scheduler
(:mod:`convcli.scale.schedulers`) and returned in order; while the next band computes, a
writer thread hands this one to the sink (:mod:`convcli.scale.sinks`), so at most two
bands of results are held, and a TIFF is written in row order. What the whole image
decides stays whole-image: min, max and the clipped counts are reductions over the
blocks, and ``--range normalize`` first runs a pass that computes only the min and max.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from convcli.conv import engines
from convcli.errors import ResourceError
from convcli.images import writing
from convcli.images.flatten import Colour, flatten
from convcli.jobs import pipeline
from convcli.jobs.ranges import colours, extreme, finite_extremes, map_range
from convcli.scale import bands, sinks, stages
from convcli.scale.plan import BLOCK

BAND_BYTES = 64 << 20  # float32 bytes of one row of blocks at most: what a TIFF sink holds


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
    alpha: bool = False  # the last channel is alpha (normalize leaves it alone)
    exact: int | None = None  # the values are integers over this: rounded to them


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
    if mapping.stats_only:  # normalize's bounds: the finite colours' (as map_range's)
        return BlockResult(*finite_extremes(colours(values, alpha=mapping.alpha)))
    if mapping.exact is not None:
        # In memory these sums were taken in integers (exact bounds and counts); floats
        # are within far less than 0.5 of them: rounded back, the report is the same.
        values = np.rint(np.multiply(values, np.float32(mapping.exact), dtype=np.float32))
        values /= np.float32(mapping.exact)
    result = BlockResult(extreme(values, np.fmin), extreme(values, np.fmax))
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
        pixels, result.below, result.above = map_range(
            values, mapping.value_range, bounds=bounds, alpha=mapping.alpha
        )
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
    exact: int | None = None,
) -> Streamed:
    """Filter region source ``source`` by ``steps`` into the sink ``sink_for(output shape,
    alpha)`` makes, a band of blocks at a time on ``scheduler``
    (:class:`~convcli.scale.schedulers.Scheduler`); return the report's numbers.
    ``exact``: the divisor over which the in-memory job sums exactly
    (:func:`convcli.jobs.pipeline.exact_divisor`), to report as it does."""
    built = stages.build(source, steps, has_alpha=has_alpha)
    shape = tuple(built.final.shape)
    sink = sink_for(shape, built.has_alpha)
    try:
        unit = engine_unit(built)
        if isinstance(sink, sinks.ZarrSink):  # blocks own whole chunks: no shared writes
            unit = sink.chunk
        band = max(1, BAND_BYTES // (4 * shape[1] * shape[3]))
        grid = block_grid(shape, chunks=chunks, unit=unit, band_rows=band)
        grouped = bands.bands_of(grid, 2 * scheduler.workers)
        final = scheduler.share(built.final)
        start = time.perf_counter()
        passes = 2 if value_range == "normalize" else 1
        done = 0

        def computed(mapping: Mapping, part=None) -> Iterator[list[tuple]]:
            """Each band's (block, result) pairs, in order, as they are computed."""
            nonlocal done
            items = ([(block, mapping, part) for block in band] for band in grouped)
            for band, results in zip(
                grouped, scheduler.map_bands(compute_block, final, items), strict=True
            ):
                for _ in band:
                    done += 1
                    if progress is not None:
                        progress(done, passes * len(grid))
                yield list(zip(band, results, strict=True))

        bounds = None
        if passes == 2:  # the whole image's min and max first
            low, high = _extremes(shape[0])
            stats = Mapping(value_range, stats_only=True, alpha=built.has_alpha)
            for pairs in computed(stats):
                for block, result in pairs:
                    _fold(low, high, block, result)
            bounds = (low, high)
        depth = sink.depth if sink.payload == "integers" else None
        mapping = Mapping(
            value_range,
            bounds,
            depth,
            background=sink.background,
            alpha=built.has_alpha,
            exact=exact,
        )
        totals = _Totals(shape[0])

        def counted(pairs: list[tuple]) -> list[tuple]:
            for block, result in pairs:
                totals.add(block, result)
            return pairs

        bands.write_while_computing(sink, map(counted, computed(mapping, sink.part)))
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
