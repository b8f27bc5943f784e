"""One output block: the in-memory operation on the block's own window, single-threaded.

NumPy only, called once per block by the Dask graph (or by anything that runs a plan
block by block). The unit of work is the library's own function, on the window that
:mod:`convcli.scale.plan` worked out, so a block and the whole image cannot disagree
about padding, stride, dilation, groups or NaN:

- ``conv2d``: the rows and columns read, padded through the window index (the padding
  model's map, -1 for zeros) by the library's ``PaddedSource``, tile by tile as the
  engines ask (views away from the borders), correlated by the library's engines: the
  in-memory ``conv2d`` without its argument checks (made once, on the whole image);
- ``conv_transpose2d``: the input range read, then the library's phase-wise transposed
  convolution cropped to the block (``transpose_into``), plus the bias; a block that
  receives no input is the bias alone.

Inside a block the engines run on one thread (:func:`convcli.conv.engines.using`):
Dask runs blocks on every core, and tile threads on top would oversubscribe them. The
path and tile budget are those in force where the graph was built.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np

from convcli.conv import engines, memory
from convcli.conv.engines.correlate import correlate
from convcli.conv.operations import add_bias
from convcli.conv.padding import PaddedSource
from convcli.conv.transposed import transpose_into
from convcli.scale.plan import Block, ConvAxis, Plan, TransposeAxis
from convcli.scale.sources import RegionSource, read_window

# Arrays this large or larger are mapped for themselves and unmapped when freed. glibc
# otherwise raises its threshold to the largest block freed so far (up to 32 MiB), after
# which block-sized arrays come from per-thread heaps that keep their pages: a worker's
# memory then grows with every thread that ever ran a block.
MMAP_THRESHOLD = 4 << 20
_malloc_set = threading.Event()


def return_freed_memory() -> None:
    """Make glibc give large freed arrays back to the system (once per process; nothing
    where ``mallopt`` does not exist). Workers started with ``MALLOC_MMAP_THRESHOLD_`` in
    their environment get the same from the start."""
    if _malloc_set.is_set():
        return
    _malloc_set.set()
    memory.mallopt(memory.M_MMAP_THRESHOLD, MMAP_THRESHOLD)


@contextmanager
def one_thread(settings: engines.Settings) -> Iterator[None]:
    """Run the block with ``settings`` (path, tile budget) on one engine thread."""
    return_freed_memory()
    with engines.using(replace(settings, threads=1)):
        yield


def conv2d_block(
    window: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    rows: ConvAxis,
    cols: ConvAxis,
    *,
    groups: int,
    settings: engines.Settings,
) -> np.ndarray:
    """One block of ``conv2d``: ``window`` holds the source rows ``rows.runs`` times the
    columns ``cols.runs`` (all channels, the block's samples).

    Examples
    --------
    >>> from convcli import conv2d
    >>> from convcli.scale.plan import conv_axis
    >>> x = np.arange(36.0).reshape(1, 1, 6, 6)
    >>> axis = dict(size=6, kernel=3, stride=1, dilation=1, before=1, mode="reflect")
    >>> rows, cols = conv_axis(0, 2, **axis), conv_axis(0, 6, **axis)
    >>> window = x[:, :, slice(*rows.runs[0]), slice(*cols.runs[0])]
    >>> block = conv2d_block(window, np.ones((1, 1, 3, 3)), None, rows, cols, groups=1,
    ...                      settings=engines.Settings())
    >>> whole = conv2d(x, np.ones((1, 1, 3, 3)), padding=1, padding_mode="reflect")
    >>> bool(np.array_equal(block, whole[..., :2, :]))
    True
    """
    rows_index, cols_index = rows.window_index(), cols.window_index()
    if not (rows.runs and cols.runs):  # the window lies wholly in the zeros of the padding
        window = np.zeros((*window.shape[:2], 1, 1), window.dtype)
        rows_index, cols_index = np.full_like(rows_index, -1), np.full_like(cols_index, -1)
    filters = weight.shape[0]
    shape = (window.shape[0], filters, rows.stop - rows.start, cols.stop - cols.start)
    out = memory.allocate(shape, np.result_type(window, weight, np.float32), "the block")
    # The padded window, made tile by tile as in memory (views away from the borders).
    source = PaddedSource.from_maps(window, rows_index, cols_index)
    with one_thread(settings):
        correlate(
            source,
            weight,
            stride=(rows.window_stride, cols.window_stride),
            dilation=(rows.window_dilation, cols.window_dilation),
            groups=groups,
            out=out,
        )
    add_bias(out, bias, filters)
    return out


def conv_transpose2d_block(
    window: np.ndarray | None,
    weight: np.ndarray,
    bias: np.ndarray | None,
    rows: TransposeAxis,
    cols: TransposeAxis,
    samples: int,
    *,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    dtype: np.dtype,
    settings: engines.Settings,
) -> np.ndarray:
    """One block of ``conv_transpose2d``: ``window`` holds the input range ``rows.runs``
    times ``cols.runs`` (None when the block receives nothing) of ``samples`` samples.

    Examples
    --------
    >>> from convcli.scale.plan import transpose_axis
    >>> x = np.arange(1.0, 7.0).reshape(1, 1, 1, 6)
    >>> one = transpose_axis(0, 1, size=1, kernel=1, stride=1, dilation=1, before=0)
    >>> cols = transpose_axis(3, 7, size=6, kernel=3, stride=2, dilation=1, before=0)
    >>> window = x[..., slice(*cols.runs[0])]
    >>> conv_transpose2d_block(window, np.ones((1, 1, 1, 3)), None, one, cols, 1,
    ...     stride=(1, 2), dilation=(1, 1), groups=1, dtype=np.float64,
    ...     settings=engines.Settings())[0, 0]
    array([[2., 5., 3., 7.]])
    """
    filters = weight.shape[1] * groups
    out = np.zeros((samples, filters, rows.stop - rows.start, cols.stop - cols.start), dtype)
    if window is not None:
        # A negative crop: the block's first positions come before anything the window
        # scatters to; they stay zero.
        view = out[..., max(0, -rows.crop) :, max(0, -cols.crop) :]
        with one_thread(settings):
            transpose_into(
                window,
                weight,
                stride=stride,
                dilation=dilation,
                groups=groups,
                top=max(0, rows.crop),
                left=max(0, cols.crop),
                out=view,
            )
    add_bias(out, bias, filters)
    return out


def run_block(
    plan: Plan,
    block: Block,
    source: RegionSource,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    settings: engines.Settings | None = None,
) -> np.ndarray:
    """Read ``block``'s window from ``source`` and compute it: one step of running a plan
    without Dask (a writer streaming blocks to a file, say). ``settings`` default to
    those in force in the calling thread.

    Examples
    --------
    >>> from convcli import conv2d
    >>> from convcli.conv.geometry import conv2d_geometry
    >>> from convcli.scale.plan import plan_blocks
    >>> from convcli.scale.sources import ArraySource
    >>> x, w = np.arange(36.0).reshape(1, 1, 6, 6), np.ones((1, 1, 3, 3))
    >>> plan = plan_blocks(conv2d_geometry(x.shape, w.shape, padding=1), chunks=4)
    >>> out = np.empty(plan.geometry.output_shape)
    >>> for block in plan.blocks():
    ...     where = (slice(*block.samples), slice(None), slice(block.rows.start, block.rows.stop),
    ...              slice(block.cols.start, block.cols.stop))
    ...     out[where] = run_block(plan, block, ArraySource(x), w)
    >>> bool(np.array_equal(out, conv2d(x, w, padding=1)))
    True
    """
    geo = plan.geometry
    settings = engines.settings() if settings is None else settings
    rows, cols = block.rows.runs, block.cols.runs
    if not geo.transpose:
        window = read_window(source, block.samples, rows, cols)
        return conv2d_block(
            window, weight, bias, block.rows, block.cols, groups=geo.groups, settings=settings
        )
    window = read_window(source, block.samples, rows, cols) if rows and cols else None
    return conv_transpose2d_block(
        window,
        weight,
        bias,
        block.rows,
        block.cols,
        block.samples[1] - block.samples[0],
        stride=geo.stride,
        dilation=geo.dilation,
        groups=geo.groups,
        dtype=np.result_type(source.dtype, weight.dtype, np.float32),
        settings=settings,
    )
