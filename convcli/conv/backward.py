"""The backward pass of :func:`convcli.conv.operations.conv2d`, on the same machinery.

``grad_x`` is the transposed convolution of ``grad_output`` with the weight over
the padded input, folded back through the padding mode (each padded pixel's
gradient goes to the pixel it copies); ``grad_weight`` is a correlation of the
padded input with ``grad_output``, tile by tile; ``grad_bias`` a sum.
"""

from __future__ import annotations

import numpy as np

from convcli.conv import gather, memory
from convcli.conv.engines import tile_budget
from convcli.conv.engines.base import Planes, flat_im2col, split_groups
from convcli.conv.engines.tiles import plan_tiles, run_parallel, scratch
from convcli.conv.geometry import conv2d_geometry
from convcli.conv.operations import IntPair, PaddingSpec, real_arrays
from convcli.conv.padding import PaddedSource, pad_adjoint
from convcli.conv.transposed import transpose_into
from convcli.errors import ParameterError


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
    x, weight, dtype, unbatched = real_arrays(x, weight, ("grad_output", grad_output))
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
    x, geo, rows, cols = gather.read_only_what_windows_read(x, geo)
    top, bottom, left, right = geo.padding
    n, c, height, width = x.shape
    padded = memory.allocate((n, c, height + top + bottom, width + left + right), dtype, "grad_x")
    transpose_into(
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
