"""Reading only what the windows read.

A large stride, dilation or padding makes the padded input far longer than the
rows and columns the kernel's taps ever touch. Gathering just those (each
(output, tap) pair's source row, through the padding mode) and correlating them
at stride k with no padding gives the same sums, with memory and loops that grow
with the output and the kernel instead of with those values.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from convcli.conv.geometry import ConvGeometry
from convcli.conv.padding import source_of
from convcli.errors import ParameterError

_MAX_EXTENT = 1 << 62  # padded sizes stay in int64 index arithmetic


def maps(geo: ConvGeometry) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per axis, the padded rows every (output, tap) pair reads, when that is far less
    than the padded extent: ``map[o*k + i] = source of o*s + i*d - before``.

    A large stride, dilation or padding makes the padded input much longer than what
    the windows read; correlating the gathered rows at stride k (dilation 1, no
    padding) gives the same sums without windows (or loops) that grow with those
    values. None for an axis that is read densely enough as it is.
    """
    maps: list[np.ndarray | None] = []
    for axis in range(2):
        size = geo.input_shape[2 + axis]
        before, after = geo.padding[2 * axis], geo.padding[2 * axis + 1]
        k, s, d = geo.kernel_size[axis], geo.stride[axis], geo.dilation[axis]
        out = geo.output_shape[2 + axis]
        extent = size + before + after
        if not reads_sparsely(out, k, extent):
            maps.append(None)
            continue
        if extent >= _MAX_EXTENT:
            raise ParameterError(
                f"the padded input's {'HW'[axis]} extent {extent} is too large (at most 2**62)"
            )
        positions = tap_positions(0, out, k, s, d) - before
        maps.append(source_of(positions, size, geo.padding_mode))
    return maps[0], maps[1]


def reads_sparsely(outputs: int, k: int, extent: int) -> bool:
    """Whether ``outputs`` windows of ``k`` taps read so little of an axis ``extent`` long
    that gathering the rows they read beats correlating the whole extent."""
    return 2 * outputs * k <= extent


def tap_positions(first: int, count: int, k: int, s: int, d: int) -> np.ndarray:
    """Padded position ``o*s + i*d`` that tap ``i`` of output ``o`` reads, for outputs
    ``first .. first+count-1`` and taps in order: row ``o*k + i`` of the gathered input.

    Examples
    --------
    >>> tap_positions(1, 2, 2, 5, 1).tolist()
    [5, 6, 10, 11]
    """
    outputs = np.arange(first, first + count, dtype=np.int64)
    return (outputs[:, None] * s + np.arange(k, dtype=np.int64)[None, :] * d).ravel()


def take(x: np.ndarray, rows: np.ndarray | None, cols: np.ndarray | None) -> np.ndarray:
    """``x`` at the mapped rows and columns (-1 reads zero)."""
    for axis, index in ((2, rows), (3, cols)):
        if index is not None:
            x = np.take(x, np.maximum(index, 0), axis=axis)
            if (index < 0).any():
                x[(slice(None),) * axis + (index < 0,)] = 0
    return x


def scatter_back(g: np.ndarray, rows, cols, size: tuple[int, int]) -> np.ndarray:
    """Adjoint of :func:`take`: each gathered gradient summed into its source pixel."""
    for axis, index in ((3, cols), (2, rows)):
        if index is None:
            continue
        moved = np.moveaxis(g, axis, 0)
        out = np.zeros((size[axis - 2], *moved.shape[1:]), g.dtype)
        valid = index >= 0
        np.add.at(out, index[valid], moved[valid])
        g = np.moveaxis(out, 0, axis)
    return g


def geometry(geo: ConvGeometry, rows, cols) -> ConvGeometry:
    """The geometry of the same convolution over the gathered input."""
    (n, c, h, w), (kh, kw) = geo.input_shape, geo.kernel_size
    top, bottom, left, right = geo.padding
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    if rows is not None:
        h, top, bottom, sh, dh = rows.size, 0, 0, kh, 1
    if cols is not None:
        w, left, right, sw, dw = cols.size, 0, 0, kw, 1
    mode = "zeros" if rows is not None and cols is not None else geo.padding_mode
    return replace(
        geo,
        input_shape=(n, c, h, w),
        padding=(top, bottom, left, right),
        stride=(sh, sw),
        dilation=(dh, dw),
        padding_mode=mode,
    )


def without_idle_steps(geo: ConvGeometry) -> ConvGeometry:
    """A stride along an axis with one output, or a dilation along an axis with one tap,
    only ever multiplies 0: 1 in its place changes no sum, and keeps a value past int64
    (a stride of 2**66 is valid there: one output) out of the engines' index arithmetic.
    Otherwise both are below the padded extent, which :func:`maps` bounds."""
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    (kh, kw), (oh, ow) = geo.kernel_size, geo.output_shape[2:]
    stride = (sh if oh > 1 else 1, sw if ow > 1 else 1)
    dilation = (dh if kh > 1 else 1, dw if kw > 1 else 1)
    if (stride, dilation) == (geo.stride, geo.dilation):
        return geo
    return replace(geo, stride=stride, dilation=dilation)


def read_only_what_windows_read(x: np.ndarray, geo: ConvGeometry):
    """``(x, geo, rows, cols)``: the gathered input and its geometry when some axis is
    read sparsely (``rows``/``cols`` are the maps, for :func:`scatter_back`), else as given.
    """
    geo = without_idle_steps(geo)
    rows, cols = maps(geo)
    if rows is not None or cols is not None:
        x, geo = take(x, rows, cols), geometry(geo, rows, cols)
    return x, geo, rows, cols
