"""How large a kernel may be, whatever its source: one limit, checked from what a file
declares before its data is read.

A kernel of more than 1001 taps a side (a Gaussian of sigma 166) is no filter a user
means, and a weight file can declare far more than it holds: a 1.5 MB ``.npz`` whose
member inflates 1000:1 made convcli allocate 5 GB before it could say anything. So:

- at most :data:`MAX_TAPS` taps along each spatial axis (the last two), as the named
  kernels (``gaussian:1001``) and ImageMagick's;
- at most :data:`MAX_VALUES` values in all (a 4-D weight's filters and channels
  included: a (512, 512, 7, 7) layer has 12.8 million);
- text filter files (text, CSV, ``.mat``, JSON, TOML) of at most :data:`MAX_TEXT_BYTES`
  (a 1001x1001 kernel at 16 characters a value); larger weights belong in ``.npy``.

``.npy`` and ``.npz`` are checked from their headers (:mod:`convcli.kernels.numpy_files`),
text files from their size before they are read, and every weight once more as it is
made (:func:`convcli.kernels.values.as_weight_array`).
"""

from __future__ import annotations

import math

from convcli.errors import KernelError

MAX_TAPS = 1001
MAX_VALUES = 1 << 24
MAX_TEXT_BYTES = 16 << 20


def check_weight_shape(shape: tuple[int, ...], where: str) -> None:
    """Refuse a weight of ``shape`` past the limits, naming ``where``.

    Examples
    --------
    >>> check_weight_shape((64, 3, 7, 7), "w.npy")
    >>> check_weight_shape((20000, 20000), "w.npy")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    convcli.errors.KernelError: w.npy: a kernel of 20000x20000 taps; convcli takes at most ...
    """
    if not 1 <= len(shape) <= 4:
        raise KernelError(f"{where}: a kernel needs 2 to 4 dimensions, got shape {tuple(shape)}")
    taps = tuple(shape[-2:])
    if max(taps) > MAX_TAPS:
        raise KernelError(
            f"{where}: a kernel of {'x'.join(map(str, taps))} taps; convcli takes at most "
            f"{MAX_TAPS} taps a side, as its named kernels"
        )
    total = math.prod(shape)
    if total > MAX_VALUES:
        raise KernelError(
            f"{where}: a weight of shape {tuple(shape)} holds {total:,} values; convcli takes "
            f"at most {MAX_VALUES:,}"
        )


def check_bias_shape(shape: tuple[int, ...], where: str) -> None:
    """Refuse a bias of more values than any weight has filters."""
    if math.prod(shape) > MAX_VALUES:
        raise KernelError(
            f"{where}: a bias of {math.prod(shape):,} values; it has one per output channel, "
            f"and a weight at most {MAX_VALUES:,} values"
        )


def check_text_size(size: int, where: str) -> None:
    """Refuse a text filter file of ``size`` bytes past :data:`MAX_TEXT_BYTES`."""
    if size > MAX_TEXT_BYTES:
        raise KernelError(
            f"{where}: {size:,} bytes, more than a text filter file may hold "
            f"({MAX_TEXT_BYTES:,}: a {MAX_TAPS}x{MAX_TAPS} kernel at 16 characters a value); "
            f"save a large weight with numpy.save"
        )
