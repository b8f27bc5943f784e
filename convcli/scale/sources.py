"""Region sources: inputs that a block reads a region of, inside the worker that runs it.

``convcli.scale`` takes a Dask array, a NumPy array, or any object with this small
protocol (:class:`RegionSource`)::

    shape  -> (N, C, H, W)
    dtype  -> a NumPy dtype
    read_region(samples, channels, rows, cols) -> ndarray   # four slices, step 1

A source is pickled once into the graph and sent to the workers, so it should hold a
path, not pixels, and open the file inside ``read_region`` (e.g. a memory-mapped
``.npy``, a Zarr array, one TIFF tile after another). Each block calls it only for the
source rows and columns its window needs (:mod:`convcli.scale.plan`), so nothing is read
twice except the halos between neighbouring blocks, and nothing is read that no block
needs. Give the source a ``__dask_tokenize__`` method returning something that names its
content (path and modification time, say) for a stable graph name.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from convcli.errors import ImageError
from convcli.scale.plan import Runs


@runtime_checkable
class RegionSource(Protocol):
    """An (N, C, H, W) image read a region at a time."""

    shape: tuple[int, ...]
    dtype: np.dtype

    def read_region(self, samples: slice, channels: slice, rows: slice, cols: slice):
        """The region ``[samples, channels, rows, cols]``, as an array of that shape."""
        ...


class ArraySource:
    """A source over anything sliced like a NumPy array: an array, a memory map, a Zarr or
    HDF5 array (read a region at a time, never whole). An unbatched (C, H, W) array is
    one sample.

    Examples
    --------
    >>> source = ArraySource(np.arange(16.0).reshape(1, 4, 4))
    >>> source.shape
    (1, 1, 4, 4)
    >>> source.read_region(slice(0, 1), slice(0, 1), slice(1, 3), slice(0, 2))[0, 0]
    array([[4., 5.],
           [8., 9.]])
    """

    def __init__(self, array) -> None:
        self.array = array
        self.unbatched = len(array.shape) == 3
        self.shape = (1, *array.shape) if self.unbatched else tuple(array.shape)
        self.dtype = np.dtype(array.dtype)
        self.token = uuid.uuid4().hex

    def read_region(self, samples: slice, channels: slice, rows: slice, cols: slice):
        if self.unbatched:
            return np.asarray(self.array[channels, rows, cols])[None]
        return np.asarray(self.array[samples, channels, rows, cols])

    def __dask_tokenize__(self):
        # Hashing a whole image would take longer than filtering it: each source is its
        # own name (as dask.array.from_array(..., name=False) does), never a cached one.
        return "ArraySource", self.token


def read_window(
    source: RegionSource, samples: tuple[int, int], rows: Runs, cols: Runs
) -> np.ndarray:
    """Samples ``samples`` of ``source``, every channel, at the row runs times the column
    runs, packed in order: one ``read_region`` per pair of runs (a single one away from
    the image's borders, returned as it comes)."""
    if len(rows) == 1 and len(cols) == 1:
        return _read(source, samples, rows[0], cols[0])
    shape = (samples[1] - samples[0], source.shape[1], _length(rows), _length(cols))
    window = np.empty(shape, source.dtype)
    for r, (r0, r1) in zip(_offsets(rows), rows, strict=True):
        for c, (c0, c1) in zip(_offsets(cols), cols, strict=True):
            window[..., r : r + r1 - r0, c : c + c1 - c0] = _read(
                source, samples, (r0, r1), (c0, c1)
            )
    return window


def pack(shape: tuple[int, ...], dtype, places: Sequence[tuple], *pieces: np.ndarray):
    """An array of ``shape`` filled from ``pieces``: ``places[i]`` is ``(target, source)``,
    two tuples of slices, and ``pieces[i][source]`` goes to ``[target]``. Gathers a block's
    window from the chunks of a Dask array that it overlaps."""
    window = np.empty(shape, dtype)
    for (target, part), piece in zip(places, pieces, strict=True):
        window[target] = piece[part]
    return window


def _length(runs: Runs) -> int:
    return sum(b - a for a, b in runs)


def _offsets(runs: Runs) -> list[int]:
    """Where each run starts in the packed window."""
    return np.cumsum([0, *(b - a for a, b in runs)])[:-1].tolist()


def _read(source: RegionSource, samples, rows, cols) -> np.ndarray:
    channels = source.shape[1]
    region = source.read_region(slice(*samples), slice(0, channels), slice(*rows), slice(*cols))
    expected = (samples[1] - samples[0], channels, rows[1] - rows[0], cols[1] - cols[0])
    if np.shape(region) != expected:
        raise ImageError(
            f"{type(source).__name__}.read_region returned shape {np.shape(region)} for the "
            f"region {expected} at rows {rows}, columns {cols}"
        )
    return np.asarray(region)
