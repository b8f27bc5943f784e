"""``conv2d`` and ``conv_transpose2d`` over Dask arrays: lazy, planned from the output,
equal to the in-memory functions on the whole array.

Everything is validated here, on the whole image's shape, before a graph exists (the
padding spec, a reflect padding larger than the image, groups, bias): a bad argument
fails at the call, not inside a worker later.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convcli.conv import gather
from convcli.conv.engines.correlate import choose_path
from convcli.conv.geometry import ConvGeometry, conv2d_geometry, conv_transpose2d_geometry
from convcli.conv.operations import check_bias, check_input_shape, check_real_dtype, real_array
from convcli.errors import ParameterError
from convcli.scale.graph import block_array, da
from convcli.scale.plan import plan_blocks
from convcli.scale.sources import ArraySource, RegionSource

IntPair = int | Sequence[int]
PaddingSpec = int | str | Sequence[int]
Chunks = int | Sequence[int] | None


def _sliceable(x) -> bool:
    """Whether ``x`` is sliced like a NumPy array (NumPy, a memory map, Zarr, HDF5) and can
    be read a window at a time, never whole."""
    try:
        np.dtype(x.dtype)
    except (AttributeError, TypeError):
        return False
    return hasattr(x, "shape") and hasattr(x, "__getitem__")


def _as_input(x) -> tuple[da.Array | RegionSource, bool]:
    """``x`` as a 4-D Dask array or region source, and whether it was unbatched (C, H, W)."""
    lazy = isinstance(x, da.Array) or hasattr(x, "read_region")
    if isinstance(x, da.Array) and any(np.isnan(size) for size in x.shape):
        raise ParameterError(
            f"x has unknown chunk sizes (shape {x.shape}); call x.compute_chunk_sizes() first"
        )
    if not lazy and not _sliceable(x):
        x = real_array(x, "x")  # nested lists, tensors: as the in-memory functions take them
    check_real_dtype(x.dtype, "x")
    check_input_shape(tuple(x.shape))
    unbatched = len(x.shape) == 3
    if isinstance(x, da.Array):
        return (x[None] if unbatched else x), unbatched
    if not hasattr(x, "read_region"):
        return ArraySource(x), unbatched
    if unbatched:
        raise ParameterError(
            f"a region source must have the shape (N, C, H, W); {type(x).__name__} has "
            f"{tuple(x.shape)}"
        )
    return x, False


def _blocked(geo: ConvGeometry, source, unbatched: bool, weight, bias, chunks) -> da.Array:
    """The lazy result of the convolution ``geo`` over ``source``, planned and built."""
    bias = check_bias(bias, geo.output_shape[1])
    dtype = np.result_type(source.dtype, weight.dtype, np.float32)
    engine = None
    if not geo.transpose:
        # As in memory: a stride or dilation that only ever multiplies 0 (one output, one
        # tap; it may be past int64) becomes 1, and the blocks fit the tiles of the path
        # the in-memory conv2d would take.
        geo = gather.without_idle_steps(geo)
        stride = gather.geometry(geo, *gather.maps(geo)).stride
        engine = choose_path(weight, geo.groups, dtype, stride)
    y = block_array(plan_blocks(geo, chunks=chunks, engine=engine), source, weight, bias, dtype)
    return y[0] if unbatched else y


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
    chunks: Chunks = None,
) -> da.Array:
    """2-D cross-correlation, block by block: ``convcli.conv2d`` for images of any size.

    Parameters
    ----------
    x : dask.array.Array, numpy.ndarray or region source, (N, C, H, W) or (C, H, W)
        Chunked any way (each block reads only the chunks its window overlaps). Anything
        sliced like an array (a memory map, Zarr) is read a block's window at a time;
        so is an object with ``shape``, ``dtype`` and ``read_region`` (see
        :mod:`convcli.scale.sources`).
    weight, bias, stride, padding, dilation, groups, padding_mode
        As :func:`convcli.conv2d`: every padding spec ("same" at any stride, 4-tuples),
        every mode, pads larger than the image.
    chunks : int, (h, w) or (n, h, w), optional
        The output's block sizes. By default about 2048 a side, cut where the chosen
        engine's tiles fall, and as many samples as fill a block.

    Returns
    -------
    dask.array.Array
        Lazy; computed, it equals ``convcli.conv2d`` on the whole array: bit for bit on
        the separable path and in most cases on the others, within 1e-6 of the largest
        magnitude otherwise (matrix products and FFTs round a little differently by
        width), NaN and Inf in the same places.

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.ones((1, 1, 6, 6), chunks=3)
    >>> y = conv2d(x, np.ones((1, 1, 3, 3)), padding=1, padding_mode="reflect", chunks=4)
    >>> y.chunks[2:]
    ((4, 2), (4, 2))
    >>> y.compute()[0, 0, 0]
    array([9., 9., 9., 9., 9., 9.])
    """
    source, unbatched = _as_input(x)
    weight = real_array(weight, "weight")
    geo = conv2d_geometry(
        source.shape,
        weight.shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
    )
    return _blocked(geo, source, unbatched, weight, bias, chunks)


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
    chunks: Chunks = None,
) -> da.Array:
    """Transposed convolution, block by block: ``convcli.conv_transpose2d`` for images of
    any size.

    Parameters
    ----------
    x : dask.array.Array, numpy.ndarray or region source, (N, C, H, W) or (C, H, W)
    weight, bias, stride, padding, output_padding, dilation, groups
        As :func:`convcli.conv_transpose2d`.
    chunks : int, (h, w) or (n, h, w), optional
        The output's block sizes; by default about 2048 a side, multiples of the stride.

    Returns
    -------
    dask.array.Array
        Lazy; computed, it equals ``convcli.conv_transpose2d`` on the whole array (within
        1e-6 of the largest magnitude, NaN and Inf in the same places). Each block reads
        the input rows ``m`` with ``m*stride + i*dilation - top`` inside it for some tap
        ``i``; a block that receives none is the bias alone.

    Examples
    --------
    >>> y = conv_transpose2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), stride=2,
    ...                      chunks=2)
    >>> y.shape, y.chunks[2]
    ((1, 1, 6, 6), (2, 2, 2))
    >>> y.compute()[0, 0, 0]
    array([1., 1., 1., 1., 1., 1.])
    """
    source, unbatched = _as_input(x)
    weight = real_array(weight, "weight")
    geo = conv_transpose2d_geometry(
        source.shape,
        weight.shape,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
    )
    return _blocked(geo, source, unbatched, weight, bias, chunks)
