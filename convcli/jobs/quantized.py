"""A result made an image file's integers tile by tile, as the engines compute it.

:class:`Quantizing` is a :class:`~convcli.conv.engines.correlate.Sink`: each tile of the
last step's result is measured (its minimum and maximum for the report) and quantized
(:func:`convcli.images.writing.quantize_tile`: scaled, clipped and counted, rounded) on the
thread that computed it, while it is still in cache, into the one integer array the
writer takes. So no float result is ever whole in memory: a 4096x4096 RGB result is
200 MB of float32 against 50 MB of 8-bit values, and on the shared VM those fresh pages
cost more system time than the filter. The integers, counts and bounds are exactly those
of quantizing the whole float result, whatever the tiles.
"""

from __future__ import annotations

import threading

import numpy as np

from convcli.conv import memory
from convcli.images.writing import Integers, quantize_integer_tile, quantize_tile


def takes_integers(divisor: int, depth: int) -> bool:
    """Whether integers over ``divisor`` are ``depth``-bit integers times a whole number
    (8 bits in, 8 or 16 out; 16 in, 16 out).

    Examples
    --------
    >>> takes_integers(255, 16), takes_integers(65535, 8)
    (True, False)
    """
    return (65535 if depth == 16 else 255) % divisor == 0


class Quantizing:
    """Collects a result of ``shape`` (N, C, H, W) as ``depth``-bit :class:`Integers`.

    Examples
    --------
    >>> sink = Quantizing((1, 1, 1, 3), 8)
    >>> sink.put((slice(0, 1), slice(0, 1), slice(0, 3)), np.array([[[[-1, 0.5, 2]]]], np.float32))
    >>> integers, low, high = sink.finish()
    >>> integers.values.ravel().tolist(), integers.below.tolist(), low.tolist(), high.tolist()
    ([0, 128, 255], [1], [-1.0], [2.0])
    """

    def __init__(self, shape: tuple[int, int, int, int], depth: int) -> None:
        n, channels, height, width = shape
        self.shape, self.depth = shape, depth
        dtype = np.uint16 if depth == 16 else np.uint8
        self.values = memory.allocate((n, height, width, channels), dtype, "the output")
        self._lock = threading.Lock()
        self._low = np.full(n, np.nan)
        self._high = np.full(n, np.nan)
        self._below = np.zeros(n, np.int64)
        self._above = np.zeros(n, np.int64)
        self._nan = np.zeros(channels, np.int64)

    def put(self, at: tuple[slice, slice, slice], block: np.ndarray) -> None:
        samples, rows, cols = at
        # The report's bounds of a whole result ignore NaN (fmin, fmax); min and max
        # propagate it, and say at once whether the tile needs clipping.
        # (Sample by sample: a reduction over a whole array runs in memory order, one over
        # axes of a view whose channels are innermost does not, and took 3x as long.)
        low = np.array([sample.min() for sample in block])
        high = np.array([sample.max() for sample in block])
        bounds = (low.min(), high.max())  # NaN if any value is NaN
        if np.isnan(low).any():
            low = np.array([np.fmin.reduce(sample, axis=None) for sample in block])
            high = np.array([np.fmax.reduce(sample, axis=None) for sample in block])
        below, above, nan = quantize_tile(
            block, self.values[samples, rows, cols], self.depth, bounds
        )
        self._add(samples, low, high, below, above, nan)

    def takes_integers(self, divisor: int) -> bool:
        """Whether tiles of exact integers over ``divisor`` become this depth's integers
        exactly (:func:`takes_integers`)."""
        return takes_integers(divisor, self.depth)

    def put_integers(self, at: tuple[slice, slice, slice], block: np.ndarray, divisor: int):
        """:meth:`put` of a tile whose values are ``block / divisor``, integers exactly
        (``takes_integers(divisor)``): the bounds are those exact values as float32."""
        samples, rows, cols = at
        out = self.values[samples, rows, cols]
        low, high, below, above = quantize_integer_tile(block, out, self.depth, divisor)
        scale = np.float32(divisor)
        low, high = low.astype(np.float32) / scale, high.astype(np.float32) / scale
        self._add(samples, low.astype(np.float64), high.astype(np.float64), below, above, None)

    def _add(self, samples: slice, low, high, below, above, nan) -> None:
        with self._lock:
            index = np.arange(len(self._low))[samples]
            self._low[index] = np.fmin(self._low[index], low)
            self._high[index] = np.fmax(self._high[index], high)
            self._below[index] += below
            self._above[index] += above
            if nan is not None:
                self._nan += nan

    def finish(self) -> tuple[Integers, np.ndarray, np.ndarray]:
        """The integers (every tile put), and each sample's minimum and maximum."""
        integers = Integers(self.values, self._below, self._above, self._nan)
        return integers, self._low, self._high
