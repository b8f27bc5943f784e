"""Tiles: cutting an output into cache-sized blocks and running them in threads.

NumPy releases the GIL inside its loops and BLAS calls, so a thread pool over
tiles uses every core. Tiles also bound memory: each one gathers only the
input window it needs (halo included) and writes its block of the
preallocated result, so no whole-image temporary is ever made.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple, TypeVar

import numpy as np

from convcli.conv.engines import thread_count
from convcli.conv.engines.blas import blas_threads

T = TypeVar("T")
Item = TypeVar("Item")

_pool: ThreadPoolExecutor | None = None
_pool_size = 0


class Tile(NamedTuple):
    """Output block: samples ``n0:n1``, rows ``r0:r1``, columns ``c0:c1``."""

    n0: int
    n1: int
    r0: int
    r1: int
    c0: int
    c1: int


def plan_tiles(
    n: int,
    height: int,
    width: int,
    *,
    per_pixel: int,
    budget: int,
    full_width: bool = False,
    rows: int | None = None,
    block_w: int | None = None,
    unit: int = 1,
) -> list[Tile]:
    """Cut an (n, height, width) output into tiles of about ``budget`` buffer elements.

    ``per_pixel`` is how many buffer elements one output pixel of one sample
    costs the engine (e.g. output + temporary channels). Blocks span the full
    width when ``full_width`` (the weight gradient's flattened rows need it) or
    when the width is modest; rows are then chosen to fill the budget. ``rows``
    and ``block_w`` fix the tile size instead (the FFT engine's transform size;
    the rows engine's narrower blocks for tall kernels). Column blocks are a multiple
    of ``unit`` wide (whole pixels when a pixel's channels are side by side).
    """
    if block_w is None:
        block_w = width if full_width or width <= 8192 * unit else 4096 * unit
    block_w = max(1, min(block_w, width))
    if block_w < width:
        block_w = max(unit, block_w // unit * unit)
    if rows is None:
        rows = max(1, min(height, budget // max(1, per_pixel * block_w)))
        # Enough bands to keep every thread busy, when each band still has real work:
        # 8+ rows and 64K+ buffer elements (below that, handing out tiles costs more).
        # Two per thread balance uneven tiles; for small jobs (under ~1 ms of work per
        # thread) one per thread costs less in hand-offs: 512x512 RGB 3x3 ran 1.48
        # ns/px against 2.30, 1024x1024 1.25 against 1.39 the other way round.
        work = height * block_w * per_pixel
        bands = thread_count() * (2 if work >= 1 << 23 else 1)
        if height // bands >= 8 and work >= bands << 16:
            rows = min(rows, -(-height // bands))
    # Whole images that fit several times in the budget go together (small batches).
    samples = 1
    if rows >= height and block_w >= width:
        samples = max(1, min(n, budget // max(1, per_pixel * width * height)))
    return [
        Tile(n0, min(n0 + samples, n), r0, min(r0 + rows, height), c0, min(c0 + block_w, width))
        for n0 in range(0, n, samples)
        for r0 in range(0, height, rows)
        for c0 in range(0, width, block_w)
    ]


def run_parallel(work: Callable[[Item], T], tiles: Iterable[Item]) -> list[T]:
    """Run ``work`` on every tile (or other item), on the shared pool when it pays;
    keep the order.

    BLAS is held to one thread meanwhile, so that matrix products inside tiles
    neither oversubscribe the cores nor pay OpenBLAS's thread start-up per product.
    """
    tiles = list(tiles)
    threads = thread_count()

    def quiet(tile: Item) -> T:
        # NaN and Inf in, NaN and Inf out, as in torch: not a warning per tile.
        # (NumPy's error state is per thread, so it is set here, in the worker.)
        with np.errstate(all="ignore"):
            return work(tile)

    # BLAS stays on one thread either way: our tiles are the parallel unit, and
    # OpenBLAS threading each row's small product costs more than it computes.
    with blas_threads(1):
        if threads == 1 or len(tiles) == 1:
            return [quiet(t) for t in tiles]
        return list(_executor(threads).map(quiet, tiles))


def reduce_parallel(reduce: np.ufunc, x: np.ndarray) -> np.ndarray:
    """``reduce.reduce`` of (N, ...) ``x`` over all but its first axis -> (N,), in bands
    of rows (the second-to-last axis) spread over the tile threads: exact for min and max
    whatever the order, and no copy of a view. A 4096x4096 RGB image is 200 MB: a pass
    over it on one core is tens of ms.

    Examples
    --------
    >>> reduce_parallel(np.fmax, np.array([[[1.0, np.nan]], [[3.0, -2.0]]])).tolist()
    [1.0, 3.0]
    """
    axes = tuple(range(1, x.ndim))
    block = 1 << 20  # values per band and sample
    if x.ndim < 3 or x[:1].size <= block:
        return reduce.reduce(x, axis=axes)
    rows = max(1, block * x.shape[-2] // x[:1].size)
    bands = range(0, x.shape[-2], rows)
    parts = run_parallel(lambda r0: reduce.reduce(x[..., r0 : r0 + rows, :], axis=axes), bands)
    return reduce.reduce(np.stack(parts), axis=0)


def _executor(threads: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    if _pool is None or _pool_size != threads:
        if _pool is not None:
            _pool.shutdown(wait=False)
        _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="convcli")
        _pool_size = threads
    return _pool


_local = threading.local()


def scratch(slot: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A per-thread buffer for ``slot``, reused from tile to tile (contents undefined).

    Fresh large arrays come from mmap and cost a page fault per 4 KiB on every
    tile; reusing one buffer per thread and purpose avoids that, which on this
    machine halves the time of a small-kernel convolution.
    """
    buffers = _local.__dict__.setdefault("buffers", {})
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    buf = buffers.get(slot)
    if buf is None or buf.size < size:
        buf = buffers[slot] = np.empty(max(size, 1), np.uint8)
    return buf[:size].view(dtype).reshape(shape)
