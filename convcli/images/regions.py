"""Inputs read a region at a time, never whole: tiled or stripped TIFF (BigTIFF, OME-TIFF
level 0), Zarr arrays (v2 and v3) and ``.npy`` files.

:func:`open_regions` reads an input's header and returns a :class:`Regions` (or None for
what cannot be read by region: PNG, JPEG and the other Pillow formats, streams, a TIFF
whose strips are each too large). ``read_region(samples, channels, rows, cols)`` gives
float32 pixels exactly as :func:`convcli.images.reading.read_image` would for that part
of the image (TIFF scaled by its sample range and turned upright by its orientation,
``.npy`` and Zarr raw values), so a blocked job and an in-memory one see the same numbers.

A :class:`Regions` holds a path and what its header said, never pixels or an open file:
it pickles small, and each process (a Dask worker) opens the file itself when it first
reads, and checks that it has not changed since (size and modification time). This is
the region source protocol of :mod:`convcli.scale.sources`.

Examples
--------
>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
>>> np.save(path, np.arange(24.0).reshape(2, 3, 4))
>>> regions = open_regions(path)
>>> regions.shape, regions.format
((1, 2, 3, 4), 'NPY')
>>> regions.read_region(slice(0, 1), slice(1, 2), slice(1, 3), slice(0, 2))[0, 0]
array([[16., 17.],
       [20., 21.]], dtype=float32)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import numpy as np

from convcli.errors import ImageError, ParameterError
from convcli.images import npy, tiff_reading
from convcli.images.inputs import shown
from convcli.images.limits import MAX_FRAMES, check_frames
from convcli.images.metadata import NONE


class Regions:
    """An image file read a region at a time: ``shape`` (N, C, H, W), float32 pixels.

    Subclasses set the header facts in ``__init__`` and implement :meth:`_open` (what a
    process needs to read: an open array, a parsed layout) and :meth:`_read`.
    """

    format = ""
    dtype = np.dtype(np.float32)

    def __init__(self, path: str) -> None:
        self.path = str(path)
        self.source = shown(path)
        self.stamp = _stamp(self.path, self.source)
        self.shape: tuple[int, int, int, int] = (0, 0, 0, 0)
        self.depth = 32  # 8, 16, or 32 for float data: what read_image would say
        self.has_alpha = False
        self.warnings: list[str] = []
        self.metadata = NONE  # the ICC profile and EXIF read_image would carry
        self._lock = threading.Lock()
        self._opened = None

    def read_region(self, samples: slice, channels: slice, rows: slice, cols: slice):
        """Pixels ``[samples, channels, rows, cols]`` (slices of step 1) as float32."""
        for axis, (part, size) in enumerate(
            zip((samples, channels, rows, cols), self.shape, strict=True)
        ):
            if not 0 <= part.start <= part.stop <= size:
                raise ParameterError(
                    f"{self.source}: region {part.start}:{part.stop} of axis {axis} is outside "
                    f"its size {size}"
                )
        with self._lock:  # threads of one process share one opening
            if self._opened is None:
                if _stamp(self.path, self.source) != self.stamp:
                    raise ImageError(
                        f"{self.source}: the file changed while it was being read; run again"
                    )
                self._opened = self._open()
            opened = self._opened
        return self._read(opened, samples, channels, rows, cols)

    def _open(self):
        raise NotImplementedError

    def _read(self, opened, samples: slice, channels: slice, rows: slice, cols: slice):
        raise NotImplementedError

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_lock"] = state["_opened"] = None  # each process opens the file itself
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __dask_tokenize__(self):
        return type(self).__name__, self.path, self.stamp

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r}, shape={self.shape})"


def _stamp(path: str, source: str) -> tuple[int, int]:
    try:
        stat = os.stat(path)
    except OSError as err:
        raise ImageError(f"{source}: cannot read it ({err.strerror or err})") from None
    return stat.st_mtime_ns, stat.st_size


class NpyRegions(Regions):
    """A ``.npy`` file (C order), each region read through a mapping of the rows it spans
    only (so an address-space limit is never met by a large file)."""

    format = "NPY"

    def __init__(self, path: str) -> None:
        super().__init__(path)
        with open(self.path, "rb") as stream:
            head = stream.read(1 << 16)
            stored, fortran, dtype, offset = _npy_header(head, self.source)
        if fortran:
            raise NotByRegion(f"{self.source}: a Fortran-order .npy array")
        self.stored, self.offset, self.stored_dtype = stored, offset, dtype
        self.shape = tuple((1,) * (4 - len(stored)) + tuple(stored))  # type: ignore[assignment]
        warning = npy.channels_last_warning(stored, self.source)
        self.warnings = [warning] if warning else []
        needed = offset + int(np.prod(stored)) * dtype.itemsize
        if self.stamp[1] < needed:
            raise ImageError(
                f"{self.source}: its header declares a {tuple(stored)} array of {dtype}, but "
                f"the file holds {self.stamp[1]:,} bytes; it is truncated or damaged"
            )

    def _open(self):
        return None  # each read maps its own rows

    def _read(self, opened, samples, channels, rows, cols):
        n, c, h, w = self.shape
        out = np.empty(
            (
                len(range(n)[samples]),
                len(range(c)[channels]),
                rows.stop - rows.start,
                cols.stop - cols.start,
            ),
            np.float32,
        )
        if out.size == 0:
            return out
        item = self.stored_dtype.itemsize
        for i, sample in enumerate(range(n)[samples]):
            for j, channel in enumerate(range(c)[channels]):
                plane = (sample * c + channel) * h * w
                start = self.offset + (plane + rows.start * w) * item
                mapped = np.memmap(
                    self.path,
                    self.stored_dtype,
                    "r",
                    offset=start,
                    shape=(rows.stop - rows.start, w),
                )
                out[i, j] = mapped[:, cols]
                del mapped
        return out


def _npy_header(head: bytes, source: str):
    """(shape, fortran_order, dtype, data offset) of a ``.npy`` header, refused as
    :func:`convcli.images.npy.shape` refuses."""
    import io

    npy.shape(head, source)  # the refusals: pickles, strings, odd shapes
    stream = io.BytesIO(head)
    version = np.lib.format.read_magic(stream)
    reader = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    stored, fortran, dtype = reader(stream)
    return tuple(stored), fortran, dtype, stream.tell()


class NotByRegion(Exception):
    """The input exists and may be readable, but not a region at a time (the reason)."""


Opener = Callable[[str], Regions]


def open_regions(path: str, *, max_frames: int = MAX_FRAMES) -> Regions | None:
    """The input at ``path`` as :class:`Regions`, from its header alone; None when it
    cannot be read a region at a time (any other format, a stream, a TIFF layout that
    decodes only whole, a Fortran-order ``.npy``). Damaged headers, and more than
    ``max_frames`` frames, are an :class:`~convcli.errors.ImageError`, as reading them
    whole would be.
    """
    regions = _open_regions(path, max_frames)
    if regions is not None:
        check_frames(regions.source, regions.shape[0], max_frames)
    return regions


def _open_regions(path: str, max_frames: int) -> Regions | None:
    if path == "-":
        return None
    try:
        if os.path.isdir(path):
            from convcli.images import zarr_arrays

            return zarr_arrays.ZarrRegions(path) if zarr_arrays.is_zarr(path) else None
        if not os.path.isfile(path):
            return None
        with open(path, "rb") as stream:
            magic = stream.read(8)
    except OSError:
        return None  # read_image names the problem
    try:
        if magic.startswith(np.lib.format.MAGIC_PREFIX):
            return NpyRegions(path)
        if tiff_reading.is_tiff(magic):
            from convcli.images.tiff_regions import TiffRegions

            return TiffRegions(path, max_frames=max_frames)
    except NotByRegion:
        return None
    return None
