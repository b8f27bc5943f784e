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

from collections.abc import Sequence

import numpy as np

from convcli import gather, memory
from convcli._fast import tile_budget
from convcli._fast.correlate import correlate
from convcli._fast.engines import Planes, flat_im2col, split_groups
from convcli._fast.tiles import plan_tiles, run_parallel, scratch
from convcli.errors import ParameterError
from convcli.geometry import conv2d_geometry, conv_transpose2d_geometry
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
    out = memory.allocate(geo.output_shape, dtype, "the output")
    rows, cols = gather.maps(geo)
    if rows is not None or cols is not None:
        x, geo = gather.take(x, rows, cols), gather.geometry(geo, rows, cols)
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
    out = memory.allocate(geo.output_shape, dtype, "the output")
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
    rows, cols = gather.maps(geo)
    if rows is not None or cols is not None:
        x, geo = gather.take(x, rows, cols), gather.geometry(geo, rows, cols)
    top, bottom, left, right = geo.padding
    n, c, height, width = x.shape
    padded = memory.allocate((n, c, height + top + bottom, width + left + right), dtype, "grad_x")
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
        grad_x = gather.scatter_back(grad_x, rows, cols, size)
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
    padding_mode: str = "zeros",
) -> tuple[int, ...]:
    """Output shape of :func:`conv2d`, validated exactly as the operation does
    (``padding_mode`` too: reflect padding must be smaller than the input).

    Examples
    --------
    >>> conv2d_output_shape((10, 3, 32, 32), (1, 3, 5, 5), padding=2)
    (10, 1, 32, 32)
    """
    geo = conv2d_geometry(
        input_shape,
        weight_shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
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
