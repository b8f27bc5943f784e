"""Transposed convolution, vectorized: ``torch.nn.functional.conv_transpose2d``'s
semantics (the gradient of :func:`convcli.conv.operations.conv2d` with respect to its
input).

The output is split into stride phases; each phase is an ordinary correlation of the
input with a flipped sub-kernel (:func:`transpose_into`), so no zeros are inserted and
nothing is scattered.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convcli.conv import memory
from convcli.conv.engines.correlate import Sink, correlate
from convcli.conv.geometry import conv_transpose2d_geometry
from convcli.conv.operations import IntPair, PaddingSpec, add_bias, real_arrays
from convcli.conv.padding import PaddedSource

Pair = tuple[int, int]


def _phases(size: int, k: int, s: int, d: int, before: int, out_size: int):
    """Stride phases of one transposed axis that receive any input.

    Output row ``o = rho + s*m`` gets ``sum_i x[m + (rho + before - i*d)/s] * w[i]``
    over the taps ``i`` with ``i*d == rho + before (mod s)``. Those taps are evenly
    spaced, so each phase is a plain correlation of ``x`` (shifted by ``base``,
    dilation ``step``) with the flipped taps. Taps that would only read past the
    input's edges are dropped (they add nothing), so neither the stride nor the
    dilation sets how much is read. Yields ``(rho, taps, source_map, step)`` for
    the phases below ``min(s, out_size)`` with taps left, at most ``k`` of them;
    the other phases are zero.
    """
    by_phase: dict[int, list[int]] = {}
    for i in range(k):
        rho = (i * d - before) % s
        if rho < out_size:
            by_phase.setdefault(rho, []).append(i)
    for rho, all_taps in sorted(by_phase.items()):
        rows = len(range(rho, out_size, s))
        # Tap i reads x[m + (rho + before - i*d) // s] for m in [0, rows).
        taps = [i for i in all_taps if -rows < (rho + before - i * d) // s < size]
        if not taps:
            continue
        step = (taps[1] - taps[0]) * d // s if len(taps) > 1 else 1
        base = (rho + before - taps[0] * d) // s - (len(taps) - 1) * step
        index = base + np.arange(rows + (len(taps) - 1) * step)
        index[(index < 0) | (index >= size)] = -1
        yield rho, taps, index, step


def transpose_into(
    x: np.ndarray | PaddedSource,
    weight,
    *,
    stride,
    dilation,
    groups,
    top,
    left,
    out: np.ndarray | Sink,
    bias: np.ndarray | None = None,
) -> np.ndarray | Sink:
    """Fill ``out`` with the transposed convolution of ``x`` cropped by ``top``/``left``.

    ``out``'s size sets how much is kept at the bottom/right (rows past the
    scattered extent are zero), so output_padding, negative padding and the
    backward pass's padded size are all just output sizes here. ``x`` may be a
    :class:`PaddedSource` (an edge-padded image, read through its index maps: never
    padded whole). A :class:`~convcli.conv.engines.correlate.Sink` ``out`` gets every
    tile of every phase, plus ``bias``; an array gets no bias (its caller adds it).
    """
    source = x if isinstance(x, PaddedSource) else PaddedSource(x, (0, 0, 0, 0), "zeros")
    c, fg, kh, kw = weight.shape
    cg = c // groups
    (sh, sw), (dh, dw) = stride, dilation
    height, width = out.shape[-2:]
    size_h, size_w = source.shape[-2:]
    phases_h = list(_phases(size_h, kh, sh, dh, top, height))
    phases_w = list(_phases(size_w, kw, sw, dw, left, width))
    missing = len(phases_h) < min(sh, height) or len(phases_w) < min(sw, width)
    unbounded = ~np.isfinite(weight)
    if not isinstance(out, np.ndarray) and (missing or unbounded.any()):
        # Rare (a stride longer than the kernel; Inf or NaN in the weight): made whole.
        whole = np.empty(out.shape, np.result_type(source.dtype, weight, np.float32))
        transpose_into(
            source,
            weight,
            stride=stride,
            dilation=dilation,
            groups=groups,
            top=top,
            left=left,
            out=whole,
        )
        if bias is not None:
            whole += bias.astype(whole.dtype)[None, :, None, None]
        out.put((slice(None), slice(None), slice(None)), whole)
        return out
    if unbounded.any():
        # The phases read zeros past the input's edges, and 0 * Inf would add a NaN that
        # a scatter (torch) never makes: such taps are scattered from real pixels only.
        transpose_into(
            source,
            np.where(unbounded, 0, weight),
            stride=stride,
            dilation=dilation,
            groups=groups,
            top=top,
            left=left,
            out=out,
        )
        pixels = source.window(0, size_h, 0, size_w)
        for ci, fi, i, j in zip(*np.nonzero(unbounded), strict=True):
            rows = _scatter_span(size_h, i * dh - top, sh, height)
            cols = _scatter_span(size_w, j * dw - left, sw, width)
            target = out[:, (ci // cg) * fg + fi, rows[1], cols[1]]
            target += pixels[:, ci, rows[0], cols[0]] * weight[ci, fi, i, j]
        return out
    if missing:
        out[...] = 0  # phases no tap reaches (a stride longer than the kernel)
    for rh, taps_h, rows, step_h in phases_h:
        for rw, taps_w, cols, step_w in phases_w:
            if isinstance(out, np.ndarray):
                view = out[:, :, rh::sh, rw::sw]
            else:
                view = _PhaseSink(out, (rh, sh), (rw, sw), height, width)
            sub = weight[:, :, taps_h][:, :, :, taps_w][:, :, ::-1, ::-1]
            # (C, F/G, ...) -> per group (F/G, C/G, ...): the conv layout of the same taps.
            conv_w = sub.reshape(groups, cg, fg, *sub.shape[2:]).transpose(0, 2, 1, 3, 4)
            conv_w = conv_w.reshape(groups * fg, cg, *sub.shape[2:])
            correlate(
                source.remapped(rows, cols),
                conv_w,
                stride=(1, 1),
                dilation=(step_h, step_w),
                groups=groups,
                out=view,
                bias=bias,
            )
    return out


class _PhaseSink:
    """One stride phase of a sink: its tile at rows ``r`` lands on rows ``rh + sh*r``."""

    def __init__(self, sink: Sink, row: Pair, col: Pair, height: int, width: int) -> None:
        self.sink, self.row, self.col = sink, row, col
        rows, cols = len(range(row[0], height, row[1])), len(range(col[0], width, col[1]))
        self.shape = (*sink.shape[:2], rows, cols)

    def put(self, at: tuple[slice, slice, slice], block: np.ndarray) -> None:
        (rh, sh), (rw, sw) = self.row, self.col
        rows, cols = at[1], at[2]
        self.sink.put(
            (
                at[0],
                slice(rh + sh * rows.start, rh + sh * (rows.stop - 1) + 1, sh),
                slice(rw + sw * cols.start, rw + sw * (cols.stop - 1) + 1, sw),
            ),
            block,
        )


def _scatter_span(size: int, offset: int, s: int, out_size: int) -> tuple[slice, slice]:
    """Input positions ``a`` with ``0 <= a*s + offset < out_size``, and where they land."""
    first = max(0, -(offset // s))  # ceil(-offset / s)
    last = min(size, -(-(out_size - offset) // s))  # exclusive
    if last <= first:
        return slice(0, 0), slice(0, 0)
    start = first * s + offset
    return slice(first, last), slice(start, start + (last - first - 1) * s + 1, s)


def conv_transpose2d(
    x,
    weight,
    bias=None,
    *,
    stride: IntPair = 1,
    padding: PaddingSpec = 0,
    output_padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> np.ndarray:
    """Transposed convolution (fractionally strided), as ``torch.nn.functional.conv_transpose2d``.

    Each input element scales the filter and is added into the output at
    ``stride`` steps; overlaps sum (the seed's "what to do with overlaps").
    It is the adjoint (and the input gradient) of :func:`conv2d`.

    Parameters
    ----------
    x : array (N, C, H, W) or unbatched (C, H, W)
    weight : array (C, F/groups, Hf, Wf)
    bias : array (F,), optional
    stride, dilation : int, (v,) or (h, w)
    padding : int, (p,), (h, w), (top, bottom, left, right), "valid" or "same"
        Rows/columns removed from the full result; "same" gives exactly ``in * stride``
        and is the adjoint of ``conv2d(..., padding="same")`` on an input of that size.
    output_padding : int, (v,) or (h, w)
        Extra rows/columns at the bottom/right; each smaller than the stride or dilation.
    groups : int

    Returns
    -------
    array (N, F, H_out, W_out) with ``out = (in - 1)*s - p_before - p_after + d*(k - 1)
    + output_padding + 1``, dtype ``numpy.result_type(x, weight, numpy.float32)``.

    Examples
    --------
    The seed's 1-D example: ``[a, b]`` with ``[x, y, z]`` at stride 2.

    >>> conv_transpose2d(np.array([[[[1.0, 10.0]]]]), np.array([[[[1.0, 2.0, 3.0]]]]),
    ...                  stride=2)[0, 0, 0]
    array([ 1.,  2., 13., 20., 30.])
    """
    x, weight, dtype, unbatched = real_arrays(x, weight)
    geo = conv_transpose2d_geometry(
        x.shape,
        weight.shape,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
    )
    out = memory.allocate(geo.output_shape, dtype, "the output")
    transpose_into(
        x,
        weight,
        stride=geo.stride,
        dilation=geo.dilation,
        groups=geo.groups,
        top=geo.padding[0],
        left=geo.padding[2],
        out=out,
    )
    add_bias(out, bias, geo.output_shape[1])
    return out[0] if unbatched else out


def conv_transpose2d_output_shape(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    *,
    stride: IntPair = 1,
    padding: PaddingSpec = 0,
    output_padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> tuple[int, ...]:
    """Output shape of :func:`conv_transpose2d`, validated as the operation does.

    Examples
    --------
    >>> conv_transpose2d_output_shape((1, 1, 2, 2), (1, 1, 3, 3), stride=2, padding=1,
    ...                               output_padding=1)
    (1, 1, 4, 4)
    """
    geo = conv_transpose2d_geometry(
        input_shape,
        weight_shape,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
    )
    return geo.output_shape[1:] if len(input_shape) == 3 else geo.output_shape
