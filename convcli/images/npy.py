"""``.npy`` images, never unpickled: raw floats in, raw floats out.

Image arrays are (H, W), (C, H, W) or (N, C, H, W); reading gives (N, C, H, W)
float32 exactly as stored (no scaling), writing keeps float32 values as they
are (no scaling, no clipping). NumPy's own ``numpy.load`` and
``numpy.lib.format`` do the parsing; what is convcli's is the refusals (pickles,
strings, odd shapes) and writing through the stream, which ``numpy.save`` does
not do for real files (see :func:`write_npy`).
"""

from __future__ import annotations

import io
from typing import BinaryIO

import numpy as np

from convcli.errors import ImageError, check_npy_data, numpy_load_errors


def read_npy(data: bytes, source: str, notes: list[str] | None = None) -> np.ndarray:
    """``.npy`` bytes -> (N, C, H, W) float32; pickled or odd arrays are an ImageError.

    An array that looks stored channels-last (see :func:`channels_last_warning`) is
    still read as (C, H, W); the warning goes to ``notes`` when given.

    Examples
    --------
    >>> buffer = io.BytesIO()
    >>> np.save(buffer, np.ones((2, 3)))
    >>> read_npy(buffer.getvalue(), "a.npy").shape
    (1, 1, 2, 3)
    """
    check_npy_data(io.BytesIO(data), len(data), source, ImageError)
    with numpy_load_errors(source, ImageError, ".npy array"):
        array = np.load(io.BytesIO(data), allow_pickle=False)
    if array.ndim not in (2, 3, 4) or array.size == 0:
        raise ImageError(
            f"{source}: .npy images are (H, W), (C, H, W) or (N, C, H, W); got {array.shape}"
        )
    _check_dtype(array.dtype, source)
    warning = channels_last_warning(array.shape, source)
    if warning and notes is not None:
        notes.append(warning)
    return array.reshape((1,) * (4 - array.ndim) + array.shape).astype(np.float32)


def channels_last_warning(stored: tuple[int, ...], source: str) -> str | None:
    """A warning when a (C, H, W) or (N, C, H, W) array looks like (H, W, C) or
    (N, H, W, C): a last axis of 1 to 4 (gray to RGBA) after two axes longer than 4.

    convcli's rule stays (C, H, W); this only says how the array was read and how
    to store it the other way.

    Examples
    --------
    >>> channels_last_warning((480, 640, 3), "a.npy").split(";")[0]
    'a.npy: read as (C, H, W) = (480, 640, 3), 480 channels of 640x3 pixels'
    >>> channels_last_warning((3, 480, 640), "a.npy") is None
    True
    """
    if len(stored) not in (3, 4) or not (1 <= stored[-1] <= 4):
        return None
    if stored[-3] <= 4 or stored[-2] <= 4:
        return None
    names = "(C, H, W)" if len(stored) == 3 else "(N, C, H, W)"
    order = "(2, 0, 1)" if len(stored) == 3 else "(0, 3, 1, 2)"
    last = "(H, W, C)" if len(stored) == 3 else "(N, H, W, C)"
    return (
        f"{source}: read as {names} = {tuple(stored)}, {stored[-3]} channels of "
        f"{stored[-2]}x{stored[-1]} pixels; if it is a channels-last {last} image, save it "
        f"as {names} with numpy.save(path, array.transpose{order})"
    )


def _check_dtype(dtype: np.dtype, source: str) -> None:
    """Real numbers only: objects (pickles) are refused, as are strings and complex."""
    if dtype.hasobject:
        raise ImageError(
            f"{source}: refused: the array holds Python objects (pickle), which convcli never loads"
        )
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise ImageError(f"{source}: .npy dtype {dtype} is not real numbers")


def shape(data: bytes, source: str) -> tuple[int, int, int, int]:
    """(N, C, H, W) of ``.npy`` bytes from the header alone, refused as :func:`read_npy`
    would refuse the array (pickles, strings, empty or odd shapes)."""
    with numpy_load_errors(source, ImageError, ".npy header"):
        stream = io.BytesIO(data)
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            found, _, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            found, _, dtype = np.lib.format.read_array_header_2_0(stream)
    _check_dtype(dtype, source)
    if len(found) not in (2, 3, 4) or 0 in found:
        raise ImageError(
            f"{source}: .npy images are (H, W), (C, H, W) or (N, C, H, W); got {found}"
        )
    return tuple((1,) * (4 - len(found)) + tuple(found))  # type: ignore[return-value]


def write_npy(array: np.ndarray, stream: BinaryIO) -> None:
    """Write ``array`` as a float32 ``.npy`` through ``stream.write`` only.

    ``np.save`` hands real files to ``ndarray.tofile``, which writes with C
    ``fwrite`` on the file descriptor: a closed pipe then surfaces as
    ``OSError: N requested and 0 written`` instead of ``BrokenPipeError``.
    The header and the array's own buffer go through the stream instead (no
    copy of the data), so every failure is an ordinary Python I/O error.

    Examples
    --------
    >>> buffer = io.BytesIO()
    >>> write_npy(np.arange(6).reshape(2, 3), buffer)
    >>> np.load(io.BytesIO(buffer.getvalue())).dtype
    dtype('float32')
    """
    array = np.ascontiguousarray(array, np.float32)
    header = np.lib.format.header_data_from_array_1_0(array)
    np.lib.format.write_array_header_1_0(stream, header)
    stream.write(array.reshape(-1).view(np.uint8).data)
