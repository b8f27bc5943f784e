"""Block plans: the output cut into blocks, and the source rows and columns each one reads.

NumPy only: ``convcli.scale`` builds its Dask graph from a plan, and a writer that
streams blocks without Dask can run the same plan. A plan starts from the *output*:

- ``conv2d``: output rows ``[o0, o1)`` read the padded rows ``[o0*s, (o1-1)*s + d*(k-1) + 1)``
  (``s`` stride, ``d`` dilation, ``k`` taps), that is source rows ``source_of(p - top)``:
  the one padding model of :mod:`convcli.conv.padding`, every mode, pads of any size.
  A block reads the distinct source rows among those (as runs of consecutive rows) and
  no others; its padded window is those rows taken through :meth:`ConvAxis.window_index`.
  When the stride or dilation leaves most of that span unread (the in-memory gather
  rule, :func:`convcli.conv.gather.reads_sparsely`), the window holds only the rows the
  taps read, output by output, correlated at stride ``k`` and dilation 1.
- ``conv_transpose2d``: output rows ``[o0, o1)`` receive from input rows
  ``m`` in ``[ceil((o0 + top - d*(k-1)) / s), floor((o1 - 1 + top) / s)]`` (clipped to the
  input); a block reads the span of those that some tap really takes into it (with a
  dilation, the ends of that interval may fall between taps), and a block that receives
  none is zeros plus bias.

Rows and columns are planned separately (a block is a row range times a column range),
so a plan costs one window per row band and per column band, not per block.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from convcli.conv.engines.algorithms import Rows, fft_tile
from convcli.conv.gather import reads_sparsely, tap_positions
from convcli.conv.geometry import ConvGeometry
from convcli.conv.padding import _int, source_of
from convcli.errors import ParameterError, ResourceError

BLOCK = 2048  # default output block side: big enough that halos cost little, small enough
# that a block's window, result and engine buffers stay near 100 MB for RGB float32

MAX_BLOCKS = 10**7  # a Dask graph of more tasks would take gigabytes before any work

Runs = tuple[tuple[int, int], ...]


def _runs(read: np.ndarray) -> Runs:
    """Sorted distinct positions as ``(start, stop)`` runs of consecutive values."""
    if read.size == 0:
        return ()
    breaks = np.flatnonzero(np.diff(read) != 1) + 1
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [read.size]))
    return tuple((int(read[a]), int(read[b - 1]) + 1) for a, b in zip(starts, stops, strict=True))


@dataclass(frozen=True)
class ConvAxis:
    """One axis of a ``conv2d`` block: output positions ``[start, stop)`` and what they read.

    ``runs`` are the source ranges read, ascending; the block's padded window along the
    axis is the concatenation of those ranges taken through :meth:`window_index`.
    """

    start: int
    stop: int
    size: int  # the source's length along the axis
    kernel: int
    stride: int
    dilation: int
    before: int  # padding before the source
    mode: str
    runs: Runs

    @property
    def extent(self) -> int:
        """The padded rows from the block's first window to the end of its last one."""
        return (self.stop - self.start - 1) * self.stride + (self.kernel - 1) * self.dilation + 1

    @property
    def sparse(self) -> bool:
        return reads_sparsely(self.stop - self.start, self.kernel, self.extent)

    @property
    def window_stride(self) -> int:
        """The stride of the block's convolution over its window."""
        return self.kernel if self.sparse else self.stride

    @property
    def window_dilation(self) -> int:
        return 1 if self.sparse else self.dilation

    def sources(self) -> np.ndarray:
        """Source position of each window position (-1: a zero of the padding)."""
        if self.sparse:
            padded = tap_positions(
                self.start, self.stop - self.start, self.kernel, self.stride, self.dilation
            )
        else:
            first = self.start * self.stride
            padded = np.arange(first, first + self.extent, dtype=np.int64)
        return source_of(padded - self.before, self.size, self.mode)

    def window_index(self) -> np.ndarray:
        """Position of each window position in the rows read (-1: zero); ``0, 1, 2, ...``
        for a window that is the rows read as they are (away from the image's borders)."""
        sources = self.sources()
        read = np.concatenate([np.arange(a, b) for a, b in self.runs] or [np.zeros(0, int)])
        return np.where(sources >= 0, np.searchsorted(read, sources), -1)


def conv_axis(
    start: int,
    stop: int,
    *,
    size: int,
    kernel: int,
    stride: int,
    dilation: int,
    before: int,
    mode: str,
) -> ConvAxis:
    """The :class:`ConvAxis` of output positions ``[start, stop)``, its reads worked out.

    Examples
    --------
    Output rows 0-1 of a 3-tap kernel with one reflected row on top read source rows 0-2:

    >>> axis = conv_axis(0, 2, size=8, kernel=3, stride=1, dilation=1, before=1,
    ...                  mode="reflect")
    >>> axis.runs, axis.window_index().tolist()
    (((0, 3),), [1, 0, 1, 2])
    """
    axis = ConvAxis(start, stop, size, kernel, stride, dilation, before, mode, ())
    sources = axis.sources()
    runs = _runs(np.unique(sources[sources >= 0]))
    return ConvAxis(start, stop, size, kernel, stride, dilation, before, mode, runs)


@dataclass(frozen=True)
class TransposeAxis:
    """One axis of a ``conv_transpose2d`` block: output positions ``[start, stop)``.

    ``runs`` is the one input range they receive from (empty: none); ``crop`` is where
    ``start`` falls in the full transposed output of that range (negative: the block's
    first ``-crop`` positions receive nothing).
    """

    start: int
    stop: int
    runs: Runs
    crop: int


def transpose_axis(
    start: int, stop: int, *, size: int, kernel: int, stride: int, dilation: int, before: int
) -> TransposeAxis:
    """The :class:`TransposeAxis` of output positions ``[start, stop)``.

    Output ``o`` receives input ``m`` through tap ``i`` when ``o = m*s + i*d - before``:
    per tap, a range of ``m``; the block reads from the first to the last of them.

    Examples
    --------
    >>> transpose_axis(4, 8, size=10, kernel=3, stride=2, dilation=1, before=1)
    TransposeAxis(start=4, stop=8, runs=((2, 5),), crop=1)
    """
    reach = []
    for i in range(kernel):  # the inputs tap i takes into [start, stop)
        first = max(0, -(-(start + before - i * dilation) // stride))
        last = min(size - 1, (stop - 1 + before - i * dilation) // stride)
        if first <= last:
            reach.append((first, last))
    if not reach:
        return TransposeAxis(start, stop, (), 0)
    first, last = min(a for a, _ in reach), max(b for _, b in reach)
    return TransposeAxis(start, stop, ((first, last + 1),), start + before - first * stride)


def block_axis(geo: ConvGeometry, axis: int, start: int, stop: int) -> ConvAxis | TransposeAxis:
    """What output positions ``[start, stop)`` of ``geo`` along ``axis`` (0 rows, 1
    columns) read: a :class:`ConvAxis` or a :class:`TransposeAxis`."""
    options = {
        "size": geo.input_shape[2 + axis],
        "kernel": geo.kernel_size[axis],
        "stride": geo.stride[axis],
        "dilation": geo.dilation[axis],
        "before": geo.padding[2 * axis],
    }
    if geo.transpose:
        return transpose_axis(start, stop, **options)
    return conv_axis(start, stop, mode=geo.padding_mode, **options)


class Block(NamedTuple):
    """One output block: its index in the block grid, its samples and its two axes."""

    index: tuple[int, int, int]
    samples: tuple[int, int]
    rows: ConvAxis | TransposeAxis
    cols: ConvAxis | TransposeAxis


@dataclass(frozen=True)
class Plan:
    """The output of one convolution cut into blocks (samples x rows x columns; every
    block holds all the output channels)."""

    geometry: ConvGeometry
    samples: tuple[tuple[int, int], ...]
    rows: tuple[ConvAxis | TransposeAxis, ...]
    cols: tuple[ConvAxis | TransposeAxis, ...]

    @property
    def chunks(self) -> tuple[tuple[int, ...], ...]:
        """The output's block sizes per axis (N, F, H, W), as Dask writes chunks."""
        return (
            tuple(b - a for a, b in self.samples),
            (self.geometry.output_shape[1],),
            tuple(a.stop - a.start for a in self.rows),
            tuple(a.stop - a.start for a in self.cols),
        )

    def blocks(self) -> Iterator[Block]:
        for i, samples in enumerate(self.samples):
            for j, rows in enumerate(self.rows):
                for k, cols in enumerate(self.cols):
                    yield Block((i, j, k), samples, rows, cols)


def _edges(sizes: Sequence[int]) -> list[tuple[int, int]]:
    ends = np.cumsum([0, *sizes]).tolist()
    return list(zip(ends[:-1], ends[1:], strict=True))


def block_sizes(total: int, block: int, *, unit: int = 1, least: int = 0) -> list[int]:
    """Cut ``total`` into blocks of ``block`` (the last one shorter).

    With ``least`` (the default blocks), ``block`` is rounded down to a multiple of
    ``unit`` but kept at ``least`` units or more, and a last block shorter than that joins
    the one before: every block starts on the engine's tile grid and holds ``least``
    tiles or more.

    Examples
    --------
    >>> block_sizes(10, 4), block_sizes(10, 4, unit=3, least=2)
    ([4, 4, 2], [10])
    """
    if least:
        block = max(least * unit, block // unit * unit)
    if -(-total // block) > MAX_BLOCKS:
        raise ResourceError(
            f"{total} outputs in blocks of {block} would be {-(-total // block)} blocks along "
            f"one axis, more than a graph can hold ({MAX_BLOCKS}); use larger chunks"
        )
    sizes = [block] * (total // block) + ([total % block] if total % block else [])
    if least and len(sizes) > 1 and sizes[-1] < least * unit:
        sizes[-2:] = [sizes[-2] + sizes[-1]]
    return sizes


def _chunk_spec(chunks: object) -> tuple[int | None, int | None, int | None]:
    """``chunks`` (None, an int, (h, w) or (n, h, w)) as (n, h, w), None where not given."""
    if chunks is None:
        return None, None, None
    values = (chunks,) if isinstance(chunks, int) or not isinstance(chunks, Sequence) else chunks
    if isinstance(chunks, (str, bytes)) or len(values) not in (1, 2, 3):
        raise ParameterError(
            f"chunks must be an integer, (h, w) or (n, h, w) output block sizes; got {chunks!r}"
        )
    sizes = tuple(_int(v, "chunks") for v in values)
    if min(sizes) < 1:
        raise ParameterError(f"chunks must be positive block sizes, got {chunks!r}")
    if len(sizes) == 1:
        return None, sizes[0], sizes[0]
    return (None, *sizes) if len(sizes) == 2 else sizes  # type: ignore[return-value]


def tile_grid(geo: ConvGeometry, engine: str | None) -> tuple[int, int, int]:
    """``(rows, cols, least)``: default blocks are multiples of that many output rows and
    columns, ``least`` of them or more, so that the engine's tiles in a block are the
    whole image's tiles and round the same way:

    - ``fft``: its transform's tile (two of them, so that a block's window is no smaller
      than the transform);
    - ``rows``: its tile width (each output row is one matrix product as wide as the
      tile, and BLAS rounds differently at other widths);
    - ``separable``: 1 (its passes are elementwise, the same at any cut);
    - a transposed convolution: the stride, so that blocks start on the same phases.
    """
    (kh, kw), (sh, sw), (dh, dw) = geo.kernel_size, geo.stride, geo.dilation
    if geo.transpose:  # (a stride longer than a block has one phase per block anyway)
        return (sh if sh <= BLOCK else 1), (sw if sw <= BLOCK else 1), 1
    if engine == "fft":
        _, _, h, w = geo.input_shape
        top, bottom, left, right = geo.padding
        span = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
        tile = fft_tile(span, (h + top + bottom, w + left + right), geo.stride)[1]
        return tile[0], tile[1], 2
    if engine == "rows":
        f, c = geo.weight_shape[0], geo.input_shape[1]
        return 1, Rows.tile_width(sh, c, f, kh, kw), 1
    return 1, 1, 1


def plan_blocks(geo: ConvGeometry, *, chunks: object = None, engine: str | None = None) -> Plan:
    """Plan the blocks of the convolution ``geo`` (from ``conv2d_geometry`` or
    ``conv_transpose2d_geometry``).

    ``chunks`` is the output block size: an int, (h, w) or (n, h, w); None picks about
    :data:`BLOCK` squared pixels, on the tile grid of ``engine`` (the path the blocks
    will run, from :func:`convcli.conv.engines.correlate.choose_path`), and small images a
    few to a block. Given sizes are kept exactly (e.g. to match a writer's tiles).

    Examples
    --------
    >>> from convcli.conv.geometry import conv2d_geometry
    >>> geo = conv2d_geometry((1, 3, 5000, 3000), (8, 3, 3, 3), padding=1)
    >>> plan_blocks(geo).chunks
    ((1,), (8,), (2048, 2048, 904), (2048, 952))
    >>> plan_blocks(geo, engine="rows").chunks[2:]  # full-width bands: one tile wide
    ((1398, 1398, 1398, 806), (3000,))
    >>> plan_blocks(geo, chunks=(2000, 256)).chunks[2:]
    ((2000, 2000, 1000), (256, 256, 256, 256, 256, 256, 256, 256, 256, 256, 256, 184))
    """
    n, _, height, width = geo.output_shape
    given_n, given_h, given_w = _chunk_spec(chunks)
    unit_h, unit_w, least = tile_grid(geo, engine)
    # Default blocks hold about BLOCK**2 pixels: wide tiles make short blocks.
    cols = block_sizes(width, given_w or BLOCK, unit=unit_w, least=0 if given_w else least)
    tall = given_h or max(1, BLOCK * BLOCK // max(cols))
    rows = block_sizes(height, tall, unit=unit_h, least=0 if given_h else least)
    # Small images go a few to a block, not BLOCK**2 pixels' worth: a batch still spreads
    # over the workers (a block runs on one thread).
    per_block = given_n or max(1, BLOCK * BLOCK // (16 * max(rows) * max(cols)))
    count = len(rows) * len(cols) * -(-n // per_block)
    if count > MAX_BLOCKS:
        raise ResourceError(
            f"the output {geo.output_shape} in blocks of {max(rows)}x{max(cols)} would be "
            f"{count} blocks, more than a graph can hold ({MAX_BLOCKS}); use larger chunks"
        )
    axes = [
        tuple(block_axis(geo, axis, a, b) for a, b in _edges(sizes))
        for axis, sizes in ((0, rows), (1, cols))
    ]
    samples = tuple(_edges(block_sizes(n, per_block))) if n else ((0, 0),)
    return Plan(geo, samples, axes[0], axes[1])
