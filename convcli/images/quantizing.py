"""Floats to the integers an image file holds: scaled to 8 or 16 bits, clipped, rounded
half to even, NaN -> 0, the clipped values counted (:func:`quantize`, a whole image a
band at a time; :func:`quantize_tile`, one tile the filters hand over;
:func:`quantize_integer_tile`, one tile of exact integers). The writer
(:mod:`convcli.images.writing`) re-exports these names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convcli.images.flatten import Colour, flatten


def to_integers(pixels: np.ndarray, depth: int, *, channels_last: bool = False) -> np.ndarray:
    """[0, 1] floats -> uint8/uint16, clipped and rounded (never wrapped around); NaN -> 0.

    With ``channels_last``, (N, C, H, W) pixels come out (N, H, W, C), the layout
    image files interleave; (N, C, H, W) pixels go through :func:`quantize`.

    Examples
    --------
    >>> to_integers(np.array([-0.5, 0.5, 2.0, np.nan], np.float32), 8).tolist()
    [0, 128, 255, 0]
    >>> to_integers(np.ones((1, 3, 2, 2), np.float32), 8, channels_last=True).shape
    (1, 2, 2, 3)
    """
    x = np.asarray(pixels)
    if x.ndim == 4:
        values = quantize(x, depth).values
        return values if channels_last else values.transpose(0, 3, 1, 2)
    top = np.float32(65535 if depth == 16 else 255)
    buffer = np.multiply(x, top, dtype=np.float32)
    np.fmax(buffer, 0, out=buffer)  # fmax drops NaN: NaN and negatives become 0 in one pass
    np.minimum(buffer, top, out=buffer)
    return np.rint(buffer, out=buffer).astype(np.uint16 if depth == 16 else np.uint8)


@dataclass
class Integers:
    """Pixels as an image file holds them, and what making them clipped.

    ``values`` are (N, H, W, C) uint8 or uint16, channels interleaved; ``below`` and
    ``above`` count, per sample, the values under 0 and over 1 (clipped to the ends);
    ``nan``, per channel, the NaN values (written as 0). ``background`` is the colour the
    alpha channel was flattened over (then ``values`` have one channel less), or None.
    """

    values: np.ndarray
    below: np.ndarray
    above: np.ndarray
    nan: np.ndarray
    background: Colour | None = None


def quantize(
    pixels: np.ndarray,
    depth: int,
    *,
    background: Colour | None = None,
    out: np.ndarray | None = None,
    bounds: tuple[float, float] | None = None,
) -> Integers:
    """(N, C, H, W) floats in [0, 1] -> :class:`Integers`: scaled to 8 or 16 bits,
    clipped, rounded half to even, NaN -> 0, and the clipped values counted; with a
    ``background``, the last channel (alpha) is flattened over it once clipped
    (:func:`convcli.images.flatten.flatten`), the clipped values counted before.
    ``out``, (N, H, W, C) of the depth's type (any strides), receives the values;
    ``bounds``, the smallest and largest of ``pixels`` if the caller knows them (NaN if
    any is NaN), spares each band from finding out whether it needs clipping.

    One pass over the image, a band of rows (about a MiB) at a time, the bands
    spread over the tile threads: scaling, counting, clipping and rounding whole
    images took a pass (and an image-sized temporary) each, on one core, and cost
    several times a 3x3 convolution. A band that is already inside [0, 1] (and has
    no NaN; its min and max say both) is neither counted nor clipped.

    Examples
    --------
    >>> q = quantize(np.array([[[[-0.5, 0.5, 2.0, np.nan]]]], np.float32), 8)
    >>> q.values.ravel().tolist(), q.below.tolist(), q.above.tolist(), q.nan.tolist()
    ([0, 128, 255, 0], [1], [1], [1])
    """
    from convcli.conv.engines.tiles import run_parallel, scratch

    x = np.asarray(pixels)
    n, channels, height, width = x.shape
    top = np.float32(65535 if depth == 16 else 255)
    if out is None:
        stored = channels - (background is not None)
        out = np.empty((n, height, width, stored), np.uint16 if depth == 16 else np.uint8)
    rows = max(1, (1 << 18) // max(1, channels * width))
    interleaved = background is None and _interleaved(x)

    def band(item: tuple[int, int]) -> tuple[int, int, int, np.ndarray | None]:
        i, r0 = item
        source = x[i, :, r0 : r0 + rows]
        if interleaved:
            source = source.transpose(1, 2, 0)
        scaled = scratch("quantize", source.shape, np.float32)
        np.multiply(source, top, out=scaled, dtype=np.float32)
        below = above = 0
        nan = None
        if bounds is None or np.isnan(bounds[0]):
            low, high = scaled.min(), scaled.max()  # NaN if any value is NaN
        else:  # every band inside [0, 1], or none known to be: count and clip each
            low, high = (0, 0) if bounds[0] >= 0 and bounds[1] <= 1 else (-1, -1)
        clip = not (low >= 0 and high <= top)
        if clip:
            below, above = int(np.count_nonzero(source < 0)), int(np.count_nonzero(source > 1))
            if np.isnan(low):
                nan = np.count_nonzero(np.isnan(scaled), axis=(0, 1) if interleaved else (1, 2))
                np.fmax(scaled, 0, out=scaled)  # fmax drops NaN: NaN becomes 0
        if background is not None:
            if clip:
                np.clip(scaled, 0, top, out=scaled)
            scaled, clip = flatten(scaled[None], background, top=top)[0], False
        _round_into(out[i, r0 : r0 + rows], scaled, top, clip=clip, interleaved=interleaved)
        return i, below, above, nan

    below, above = np.zeros(n, np.int64), np.zeros(n, np.int64)
    nan = np.zeros(channels, np.int64)
    for i, low_count, high_count, nan_count in run_parallel(
        band, [(i, r0) for i in range(n) for r0 in range(0, height, rows)]
    ):
        below[i] += low_count
        above[i] += high_count
        if nan_count is not None:
            nan += nan_count
    return Integers(out, below, above, nan, background)


def quantize_tile(
    values: np.ndarray, out: np.ndarray, depth: int, bounds: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`quantize` of a float32 tile (n, C, h, w) the caller gives up (it is scaled in
    place: no band, no buffer, no thread) into ``out`` (n, h, w, C), given its
    ``bounds`` (smallest and largest value, NaN if any is NaN); returns the clipped
    counts per sample and the NaN per channel. The same integers and counts as
    :func:`quantize` (for float32, ``x < 0`` and ``x > 1`` are exactly ``255 x < 0`` and
    ``255 x > 255``).

    Examples
    --------
    >>> out = np.zeros((1, 1, 3, 1), np.uint8)
    >>> tile = np.array([[[[-1, 0.5, 2]]]], np.float32)
    >>> [a.tolist() for a in quantize_tile(tile, out, 8, (-1, 2))], out.ravel().tolist()
    ([[1], [1], [0]], [0, 128, 255])
    """
    n, channels = values.shape[:2]
    top = np.float32(65535 if depth == 16 else 255)
    below, above = np.zeros(n, np.int64), np.zeros(n, np.int64)
    nan = np.zeros(channels, np.int64)
    clip = not (bounds[0] >= 0 and bounds[1] <= 1)
    if clip:  # (count_nonzero along axes sums booleans: 4x as long as a whole count)
        below[:] = [np.count_nonzero(sample < 0) for sample in values]
        above[:] = [np.count_nonzero(sample > 1) for sample in values]
        if np.isnan(bounds[0]):
            nan[:] = np.count_nonzero(np.isnan(values), axis=(0, 2, 3))
            np.fmax(values, 0, out=values)  # fmax drops NaN: NaN becomes 0
    np.multiply(values, top, out=values)
    interleaved = _interleaved(values)
    for i in range(n):
        sample = values[i].transpose(1, 2, 0) if interleaved else values[i]
        _round_into(out[i], sample, top, clip=clip, interleaved=interleaved)
    return below, above, nan


def quantize_integer_tile(
    values: np.ndarray, out: np.ndarray, depth: int, divisor: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`quantize_tile` of an exact integer tile (n, C, h, w) whose values are
    ``values / divisor`` (``divisor`` divides the depth's largest value: 255 or 65535 for
    16 bits, 255 for 8), which the caller gives up (it is clipped in place), into ``out``
    (n, h, w, C). The values are clipped to [0, divisor] and scaled: no rounding, no
    NaN. Returns per sample the smallest and largest value (integers) and the counts
    clipped below and above.

    Examples
    --------
    >>> out = np.zeros((1, 1, 3, 1), np.uint16)
    >>> tile = np.array([[[[-3, 128, 300]]]], np.int16)
    >>> [a.tolist() for a in quantize_integer_tile(tile, out, 16, 255)], out.ravel().tolist()
    ([[-3], [300], [1], [1]], [0, 32896, 65535])
    """
    n = len(values)
    scale = (65535 if depth == 16 else 255) // divisor
    low, high = np.zeros(n, np.int64), np.zeros(n, np.int64)
    below, above = np.zeros(n, np.int64), np.zeros(n, np.int64)
    # Scalars of the tile's own type keep every pass in it (a Python int made NumPy
    # widen the int16 loops to int64: 10x as long).
    zero, most = values.dtype.type(0), values.dtype.type(divisor)
    for i, sample in enumerate(values):
        low[i], high[i] = sample.min(), sample.max()
        if low[i] < 0:
            below[i] = np.count_nonzero(sample < zero)
        if high[i] > divisor:
            above[i] = np.count_nonzero(sample > most)
        if low[i] < 0 or high[i] > divisor:
            np.clip(sample, zero, most, out=sample)
        target = out[i].transpose(2, 0, 1)  # (C, h, w) views of the interleaved pixels
        np.copyto(target, sample, casting="unsafe")
        if scale != 1:
            target *= out.dtype.type(scale)
    return low, high, below, above


def _interleaved(x: np.ndarray) -> bool:
    """Whether (N, C, H, W) ``x`` holds each pixel's channels side by side (an interleaved
    tile): such values are scaled, rounded and copied in that layout, contiguously;
    planes are rounded as planes (contiguous) and interleaved by the final copy."""
    channels = x.shape[1]
    return channels > 1 and x.strides[1] == x.itemsize and x.strides[3] == x.itemsize * channels


def _round_into(out: np.ndarray, scaled: np.ndarray, top, *, clip: bool, interleaved: bool):
    """Scaled values (h, w, C) interleaved or (C, h, w) planes: clipped to [0, top] (when
    ``clip``), rounded half to even and stored in ``out`` (h, w, C)."""
    if clip:
        np.clip(scaled, 0, top, out=scaled)
    np.rint(scaled, out=scaled)
    if interleaved and out.strides[2] == out.itemsize != out.strides[1] // out.shape[2]:
        # Pixels apart (a transposed convolution's stride phase): NumPy would copy their
        # channels three values at a time; as whole pixels (one item each), 2.4x faster.
        from convcli.conv.engines.tiles import scratch

        pixels = scratch("pixels", scaled.shape, out.dtype)
        np.copyto(pixels, scaled, casting="unsafe")
        item = np.dtype((np.void, out.shape[2] * out.itemsize))
        np.copyto(out.view(item)[..., 0], pixels.view(item)[..., 0])
    elif interleaved:
        np.copyto(out, scaled, casting="unsafe")
    else:
        for c, plane in enumerate(scaled):
            np.copyto(out[..., c], plane, casting="unsafe")
