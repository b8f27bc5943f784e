"""2-D convolution, its backward pass and transposed convolution, vectorized.

Semantics are PyTorch's ``torch.nn.functional.conv2d`` / ``conv_transpose2d``:
cross-correlation (the kernel is not flipped), as in the seed tutorial.

Every operation validates through :mod:`convcli.geometry`, pads through
:mod:`convcli.padding` and computes through the tiled engines of
:mod:`convcli._fast`:

- ``conv2d`` correlates the (virtually) padded input;
- ``conv_transpose2d`` splits the output into stride phases; each phase is an
  ordinary correlation of the input with a flipped sub-kernel, so no zeros are
  inserted and nothing is scattered;
- ``conv2d_backward`` gets ``grad_x`` as a transposed convolution (folded back
  through the padding mode) and ``grad_weight`` as a correlation of the input
  with ``grad_output``, tile by tile.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from convcli._fast import tile_budget
from convcli._fast.correlate import correlate
from convcli._fast.engines import Planes, flat_im2col, split_groups
from convcli._fast.tiles import plan_tiles, run_parallel, scratch
from convcli.errors import ParameterError, ResourceError
from convcli.geometry import ConvGeometry, conv2d_geometry, conv_transpose2d_geometry
from convcli.padding import PaddedSource, pad_adjoint

IntPair = int | Sequence[int]
PaddingSpec = int | str | Sequence[int]


def _real_array(value, name: str) -> np.ndarray:
    """``value`` as an array of real numbers, or a ParameterError naming ``name``."""
    try:
        a = np.asarray(value)
    except ValueError:  # ragged nested lists
        raise ParameterError(f"{name} must be a rectangular array of numbers") from None
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ParameterError(f"{name} must hold real numbers, got dtype {a.dtype}")
    return a


def _arrays(x, weight, *more) -> tuple[np.ndarray, np.ndarray, np.dtype, bool]:
    """Arrays, the result dtype, and whether ``x`` was unbatched (then made 4-D)."""
    x, weight = _real_array(x, "x"), _real_array(weight, "weight")
    for name, a in more:
        _real_array(a, name)
    if x.ndim not in (3, 4):
        raise ParameterError(
            f"x must be (N, C, H, W) or unbatched (C, H, W); got {x.ndim} dimensions {x.shape}"
        )
    if 0 in x.shape[-3:]:
        raise ParameterError(f"x {x.shape} has an empty dimension; C, H and W must be at least 1")
    # As in PyTorch, x and weight set the dtype; other arrays (grad_output) follow it.
    dtype = np.result_type(x, weight, np.float32)
    return (x[None] if x.ndim == 3 else x), weight, dtype, x.ndim == 3


def _add_bias(out: np.ndarray, bias, filters: int) -> None:
    if bias is None:
        return
    b = _real_array(bias, "bias")
    if b.shape != (filters,):
        raise ParameterError(f"bias must have shape ({filters},), one per filter; got {b.shape}")
    out += b.astype(out.dtype)[None, :, None, None]


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _empty(shape: tuple[int, ...], dtype, what: str) -> np.ndarray:
    """``numpy.empty(shape)``, or a ResourceError saying what could not be allocated.

    Sizes past the machine's physical memory are refused before trying: Linux may
    hand out such an array and then kill the process while it is being filled.
    NumPy's own MemoryError (and its "array is too big") become the same error.
    """
    size = 1
    for dim in shape:
        size *= int(dim)
    nbytes = size * np.dtype(dtype).itemsize
    memory = _physical_memory()
    message = f"{what} {tuple(shape)} of {np.dtype(dtype)} would take {nbytes / 2**30:.3g} GiB"
    if memory is not None and nbytes > memory:
        raise ResourceError(
            f"{message}, more than this machine's {memory / 2**30:.3g} GiB of memory; "
            f"use a larger stride, less padding or a smaller input"
        )
    try:
        return np.empty(shape, dtype)
    except (MemoryError, ValueError):
        raise ResourceError(f"{message}, which cannot be allocated") from None


_MAX_EXTENT = 1 << 62  # padded sizes stay in int64 index arithmetic


def _mode_map(positions: np.ndarray, size: int, mode: str) -> np.ndarray:
    """Source index of each padded position (0 = the input's first row; -1 = zero).

    The closed form of :func:`convcli.padding.source_index` (numpy.pad's modes,
    mirrored or wrapped as often as needed), for positions however far out.
    """
    p = positions
    if mode == "zeros":
        return np.where((p >= 0) & (p < size), p, -1)
    if mode == "replicate":
        return np.clip(p, 0, size - 1)
    if mode == "circular":
        return p % size
    if mode == "symmetric":
        q = p % (2 * size)
        return np.where(q < size, q, 2 * size - 1 - q)
    if size == 1:  # reflect: numpy.pad repeats a single row
        return np.zeros_like(p)
    period = 2 * (size - 1)
    q = p % period
    return np.where(q < size, q, period - q)


def _gather_maps(geo: ConvGeometry) -> tuple[np.ndarray | None, np.ndarray | None]:
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
        if 2 * out * k > extent:
            maps.append(None)
            continue
        if extent >= _MAX_EXTENT:
            raise ParameterError(
                f"the padded input's {'HW'[axis]} extent {extent} is too large (at most 2**62)"
            )
        positions = (
            np.arange(out, dtype=np.int64)[:, None] * s
            + np.arange(k, dtype=np.int64)[None, :] * d
            - before
        )
        maps.append(_mode_map(positions.ravel(), size, geo.padding_mode))
    return maps[0], maps[1]


def _gather(x: np.ndarray, rows: np.ndarray | None, cols: np.ndarray | None) -> np.ndarray:
    """``x`` at the mapped rows and columns (-1 reads zero)."""
    for axis, index in ((2, rows), (3, cols)):
        if index is not None:
            x = np.take(x, np.maximum(index, 0), axis=axis)
            if (index < 0).any():
                x[(slice(None),) * axis + (index < 0,)] = 0
    return x


def _scatter_back(g: np.ndarray, rows, cols, size: tuple[int, int]) -> np.ndarray:
    """Adjoint of :func:`_gather`: each gathered gradient summed into its source pixel."""
    for axis, index in ((3, cols), (2, rows)):
        if index is None:
            continue
        moved = np.moveaxis(g, axis, 0)
        out = np.zeros((size[axis - 2], *moved.shape[1:]), g.dtype)
        valid = index >= 0
        np.add.at(out, index[valid], moved[valid])
        g = np.moveaxis(out, 0, axis)
    return g


def _gathered_geometry(geo: ConvGeometry, rows, cols) -> ConvGeometry:
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


def conv2d(
    x,
    weight,
    bias=None,
    *,
    stride: IntPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """2-D cross-correlation of ``x`` with ``weight``, as ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    x : array (N, C, H, W) or unbatched (C, H, W)
    weight : array (F, C/groups, Hf, Wf)
    bias : array (F,), optional
    stride, dilation : int or (h, w)
    padding : int, (h, w), (top, bottom, left, right), "valid" or "same"
        "same" works at every stride (TensorFlow's rule): ``out = ceil(in / stride)``;
        an odd total goes to the bottom/right (even kernels sit off-centre there).
    groups : int
        Input and output channels split into this many independent groups.
    padding_mode : "zeros", "reflect", "replicate", "circular" or "symmetric"

    Returns
    -------
    array (N, F, H_out, W_out), or (F, H_out, W_out) for an unbatched ``x``, of dtype
    ``numpy.result_type(x, weight, numpy.float32)``.

    Notes
    -----
    ``y[n, f, h, w] = b[f] + sum_{c, i, j} x_pad[n, g*C/G + c, h*s_h + i*d_h, w*s_w + j*d_w]
    * weight[f, c, i, j]`` with ``g = f // (F/G)``, and per axis
    ``out = floor((in + p_before + p_after - d*(k - 1) - 1) / s) + 1``.

    Examples
    --------
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> conv2d(x, np.ones((1, 1, 3, 3)), stride=2, padding=1)[0, 0]
    array([[10., 24.],
           [51., 90.]])
    """
    x, weight, dtype, unbatched = _arrays(x, weight)
    geo = conv2d_geometry(
        x.shape,
        weight.shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
    )
    out = _empty(geo.output_shape, dtype, "the output")
    rows, cols = _gather_maps(geo)
    if rows is not None or cols is not None:
        x, geo = _gather(x, rows, cols), _gathered_geometry(geo, rows, cols)
    source = PaddedSource(x, geo.padding, geo.padding_mode)
    correlate(source, weight, stride=geo.stride, dilation=geo.dilation, groups=geo.groups, out=out)
    _add_bias(out, bias, geo.output_shape[1])
    return out[0] if unbatched else out


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


def _transpose_into(x, weight, *, stride, dilation, groups, top, left, out) -> np.ndarray:
    """Fill ``out`` with the transposed convolution cropped by ``top``/``left``.

    ``out``'s size sets how much is kept at the bottom/right (rows past the
    scattered extent are zero), so output_padding, negative padding and the
    backward pass's padded size are all just output sizes here.
    """
    c, fg, kh, kw = weight.shape
    cg = c // groups
    (sh, sw), (dh, dw) = stride, dilation
    height, width = out.shape[-2:]
    unbounded = ~np.isfinite(weight)
    if unbounded.any():
        # The phases read zeros past the input's edges, and 0 * Inf would add a NaN that
        # a scatter (torch) never makes: such taps are scattered from real pixels only.
        _transpose_into(
            x,
            np.where(unbounded, 0, weight),
            stride=stride,
            dilation=dilation,
            groups=groups,
            top=top,
            left=left,
            out=out,
        )
        for ci, fi, i, j in zip(*np.nonzero(unbounded), strict=True):
            rows = _scatter_span(x.shape[-2], i * dh - top, sh, height)
            cols = _scatter_span(x.shape[-1], j * dw - left, sw, width)
            target = out[:, (ci // cg) * fg + fi, rows[1], cols[1]]
            target += x[:, ci, rows[0], cols[0]] * weight[ci, fi, i, j]
        return out
    phases_h = list(_phases(x.shape[-2], kh, sh, dh, top, height))
    phases_w = list(_phases(x.shape[-1], kw, sw, dw, left, width))
    if len(phases_h) < min(sh, height) or len(phases_w) < min(sw, width):
        out[...] = 0  # phases no tap reaches (a stride longer than the kernel)
    for rh, taps_h, rows, step_h in phases_h:
        for rw, taps_w, cols, step_w in phases_w:
            view = out[:, :, rh::sh, rw::sw]
            sub = weight[:, :, taps_h][:, :, :, taps_w][:, :, ::-1, ::-1]
            # (C, F/G, ...) -> per group (F/G, C/G, ...): the conv layout of the same taps.
            conv_w = sub.reshape(groups, cg, fg, *sub.shape[2:]).transpose(0, 2, 1, 3, 4)
            conv_w = conv_w.reshape(groups * fg, cg, *sub.shape[2:])
            source = PaddedSource.from_maps(x, rows, cols)
            correlate(
                source, conv_w, stride=(1, 1), dilation=(step_h, step_w), groups=groups, out=view
            )
    return out


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
    stride, dilation : int or (h, w)
    padding : int, (h, w), (top, bottom, left, right), "valid" or "same"
        Rows/columns removed from the full result; "same" gives exactly ``in * stride``
        and is the adjoint of ``conv2d(..., padding="same")`` on an input of that size.
    output_padding : int or (h, w)
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
    x, weight, dtype, unbatched = _arrays(x, weight)
    geo = conv_transpose2d_geometry(
        x.shape,
        weight.shape,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
    )
    out = _empty(geo.output_shape, dtype, "the output")
    _transpose_into(
        x,
        weight,
        stride=geo.stride,
        dilation=geo.dilation,
        groups=geo.groups,
        top=geo.padding[0],
        left=geo.padding[2],
        out=out,
    )
    _add_bias(out, bias, geo.output_shape[1])
    return out[0] if unbatched else out


def conv2d_backward(
    grad_output,
    x,
    weight,
    *,
    stride: IntPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv2d` with respect to x, weight and bias.

    Parameters
    ----------
    grad_output : array shaped like ``conv2d``'s output
    x, weight, stride, padding, dilation, groups, padding_mode
        As given to :func:`conv2d`.

    Returns
    -------
    (grad_x, grad_weight, grad_bias) shaped like x, weight and (F,).

    Notes
    -----
    ``grad_x`` is the transposed convolution of ``grad_output`` with ``weight`` over
    the padded input, folded back through the padding mode (each padded pixel's
    gradient goes to the pixel it copies); ``grad_weight[f, c, i, j] =
    sum_{n, h, w} grad_output[n, f, h, w] * x_pad[n, c', h*s + i*d, w*s + j*d]``;
    ``grad_bias[f] = sum grad_output[:, f]``.

    Examples
    --------
    >>> gx, gw, gb = conv2d_backward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)),
    ...                              np.ones((1, 1, 2, 2)))
    >>> gx[0, 0].tolist(), gb.tolist()
    ([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], [4.0])
    """
    x, weight, dtype, unbatched = _arrays(x, weight, ("grad_output", grad_output))
    geo = conv2d_geometry(
        x.shape,
        weight.shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
    )
    g = np.asarray(grad_output, dtype)
    g = g[None] if unbatched and g.ndim == 3 else g
    if g.shape != geo.output_shape:
        expected = geo.output_shape[1:] if unbatched else geo.output_shape
        raise ParameterError(
            f"grad_output must have the forward output's shape {expected}; got "
            f"{np.shape(grad_output)}"
        )
    size = x.shape[-2:]
    rows, cols = _gather_maps(geo)
    if rows is not None or cols is not None:
        x, geo = _gather(x, rows, cols), _gathered_geometry(geo, rows, cols)
    top, bottom, left, right = geo.padding
    n, c, height, width = x.shape
    padded = _empty((n, c, height + top + bottom, width + left + right), dtype, "grad_x")
    _transpose_into(
        g,
        weight,
        stride=geo.stride,
        dilation=geo.dilation,
        groups=geo.groups,
        top=0,
        left=0,
        out=padded,
    )
    grad_x = pad_adjoint(padded, geo.padding, geo.padding_mode, (height, width))
    if rows is not None or cols is not None:
        grad_x = _scatter_back(grad_x, rows, cols, size)
    source = PaddedSource(x, geo.padding, geo.padding_mode)
    grad_w = _grad_weight(source, g, weight.shape, geo.stride, geo.dilation, geo.groups, dtype)
    # float64 accumulation: the sum can cancel to far below its terms.
    grad_b = g.sum(axis=(0, 2, 3), dtype=np.float64).astype(dtype)
    return (grad_x[0] if unbatched else grad_x), grad_w, grad_b


def _grad_weight(source, g, weight_shape, stride, dilation, groups, dtype) -> np.ndarray:
    """Correlate the padded input with grad_output, tile by tile, summing tile partials."""
    f, cg, kh, kw = weight_shape
    n, _, ho, wo = g.shape
    span = ((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1)
    tiles = plan_tiles(
        n,
        ho,
        wo,
        per_pixel=groups * cg * kh * kw + f,
        budget=tile_budget(1 << 22),
        full_width=True,
    )

    def work(t) -> np.ndarray:
        window = source.window(
            t.r0 * stride[0], (t.r1 - 1) * stride[0] + span[0], 0, source.shape[-1], t.n0, t.n1
        )
        planes = Planes(window, stride, dilation, (t.r1 - t.r0, wo), (kh, kw))
        cols = flat_im2col(planes, (kh, kw), groups, dtype)
        # grad_output at the planes' row pitch; the wrapped columns are zero on both sides so
        # they add nothing (zero in one only would still give 0 * Inf = NaN from pixels that
        # no output reads).
        pitch = planes.pitch
        wrapped = cols[..., : (t.r1 - t.r0 - 1) * pitch]
        wrapped.reshape(*wrapped.shape[:-1], -1, pitch)[..., wo:] = 0
        grad = scratch("grad", (t.n1 - t.n0, f, t.r1 - t.r0, pitch), dtype)
        grad[..., wo:] = 0
        grad[..., :wo] = g[t.n0 : t.n1, :, t.r0 : t.r1]
        grad = split_groups(grad.reshape(*grad.shape[:2], -1), groups)[..., : planes.length]
        return np.matmul(grad, cols.transpose(0, 1, 3, 2)).sum(axis=0)

    parts = run_parallel(work, tiles)
    if not parts:  # an empty batch
        return np.zeros(weight_shape, dtype)
    return np.sum(parts, axis=0).reshape(weight_shape)


def conv2d_output_shape(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    *,
    stride: IntPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> tuple[int, ...]:
    """Output shape of :func:`conv2d`, validated exactly as the operation does.

    Examples
    --------
    >>> conv2d_output_shape((10, 3, 32, 32), (1, 3, 5, 5), padding=2)
    (10, 1, 32, 32)
    """
    geo = conv2d_geometry(
        input_shape, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    return geo.output_shape[1:] if len(input_shape) == 3 else geo.output_shape


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
