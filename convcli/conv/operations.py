"""2-D convolution and transposed convolution, vectorized.

Semantics are PyTorch's ``torch.nn.functional.conv2d`` / ``conv_transpose2d``:
cross-correlation (the kernel is not flipped), as in the seed tutorial.

Every operation validates through :mod:`convcli.conv.geometry`, pads through
:mod:`convcli.conv.padding` and computes through the tiled engines of
:mod:`convcli.conv.engines`:

- ``conv2d`` correlates the (virtually) padded input;
- ``conv_transpose2d`` (in :mod:`convcli.conv.transposed`) splits the output into
  stride phases; each phase is an ordinary correlation of the input with a flipped
  sub-kernel, so no zeros are inserted and nothing is scattered;
- ``conv2d_backward`` (in :mod:`convcli.conv.backward`) reuses both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convcli.conv import gather, memory
from convcli.conv.engines.correlate import Sink, correlate
from convcli.conv.geometry import conv2d_geometry
from convcli.conv.padding import PaddedSource
from convcli.errors import ParameterError

IntPair = int | Sequence[int]
Pair = tuple[int, int]
PaddingSpec = int | str | Sequence[int]


def real_array(value, name: str) -> np.ndarray:
    """``value`` as an array of real numbers, or a ParameterError naming ``name``."""
    try:
        a = np.asarray(value)
    except ValueError:  # ragged nested lists
        raise ParameterError(f"{name} must be a rectangular array of numbers") from None
    check_real_dtype(a.dtype, name)
    return a


def check_real_dtype(dtype, name: str) -> None:
    """Raise a ParameterError naming ``name`` unless ``dtype`` is a float or integer type."""
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise ParameterError(f"{name} must hold real numbers, got dtype {dtype}")


def check_input_shape(shape: tuple[int, ...]) -> None:
    """Raise a ParameterError unless ``shape`` is (N, C, H, W) or (C, H, W) with C, H, W >= 1."""
    if len(shape) not in (3, 4):
        raise ParameterError(
            f"x must be (N, C, H, W) or unbatched (C, H, W); got {len(shape)} dimensions {shape}"
        )
    if 0 in shape[-3:]:
        raise ParameterError(f"x {shape} has an empty dimension; C, H and W must be at least 1")


def real_arrays(x, weight, *more) -> tuple[np.ndarray, np.ndarray, np.dtype, bool]:
    """Arrays, the result dtype, and whether ``x`` was unbatched (then made 4-D)."""
    x, weight = real_array(x, "x"), real_array(weight, "weight")
    for name, a in more:
        real_array(a, name)
    check_input_shape(x.shape)
    # As in PyTorch, x and weight set the dtype; other arrays (grad_output) follow it.
    dtype = np.result_type(x, weight, np.float32)
    return (x[None] if x.ndim == 3 else x), weight, dtype, x.ndim == 3


def check_bias(bias, filters: int) -> np.ndarray | None:
    """``bias`` as an array of ``filters`` real numbers (None stays None), or a ParameterError."""
    if bias is None:
        return None
    b = real_array(bias, "bias")
    if b.shape != (filters,):
        raise ParameterError(f"bias must have shape ({filters},), one per filter; got {b.shape}")
    return b


def add_bias(out: np.ndarray, bias, filters: int) -> None:
    """Add ``bias`` (checked by :func:`check_bias`) to each filter's plane of ``out``."""
    b = check_bias(bias, filters)
    if b is not None:
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
    stride, dilation : int, (v,) or (h, w)
    padding : int, (p,), (h, w), (top, bottom, left, right), "valid" or "same"
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
    x, weight, dtype, unbatched = real_arrays(x, weight)
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
    _correlate(x, weight, geo, out)
    add_bias(out, bias, geo.output_shape[1])
    return out[0] if unbatched else out


def conv2d_into(
    out: Sink,
    x: np.ndarray,
    weight,
    bias=None,
    *,
    divisor: int | None = None,
    stride: IntPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Sink:
    """:func:`conv2d` of (N, C, H, W) ``x``, its result given tile by tile to ``out``
    (:class:`~convcli.conv.engines.correlate.Sink`, bias added) instead of returned: the
    same values, never a whole float result in memory. With ``divisor``, ``x`` holds
    integers read as ``float32(x) / divisor`` a window at a time (an 8-bit image's values
    over 255), never converted whole.
    """
    x, weight, _, _ = real_arrays(x, weight)
    geo = conv2d_geometry(
        x.shape,
        weight.shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
    )
    bias = check_bias(bias, geo.output_shape[1])
    _correlate(x, weight, geo, out, bias=bias, divisor=divisor)
    return out


def _correlate(x, weight, geo, out, *, bias=None, divisor=None) -> None:
    x, geo, _, _ = gather.read_only_what_windows_read(x, geo)
    source = PaddedSource(x, geo.padding, geo.padding_mode, divisor=divisor)
    correlate(
        source,
        weight,
        stride=geo.stride,
        dilation=geo.dilation,
        groups=geo.groups,
        out=out,
        bias=bias,
    )


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
