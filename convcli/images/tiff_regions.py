"""A TIFF read a region at a time: tiled or stripped, classic or BigTIFF, OME-TIFF's and
libvips' pyramids at level 0 (the pages :func:`convcli.images.tiff_reading.read_tiff`
reads, each one a frame).

A region decodes only the strips or tiles it overlaps (read with ``os.pread``, so the
threads of a process share one descriptor without seeking, and each segment's own header
checked first if it is an embedded JPEG, WebP, ... image); uncompressed pages stored in
one piece are read row by row, however large their strips. The decoded samples go
through the same conversion as a whole image (palette, CMYK, white-is-zero, associated
alpha, the sample range, the orientation), so a region equals that part of
``read_image``'s pixels.

Not by region (:class:`~convcli.images.regions.NotByRegion`, and read whole instead):
volumes (ImageDepth > 1) and pages whose strips or tiles each decode to more than
:data:`SEGMENT_BYTES`.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from convcli.errors import ImageError
from convcli.images import segments, tiff_reading
from convcli.images.decoded import scaled_planes
from convcli.images.limits import MAX_FRAMES
from convcli.images.metadata import Metadata
from convcli.images.orientation import upright
from convcli.images.regions import NotByRegion, Regions

# A region decodes whole strips or tiles: past this size each, the input is read whole.
SEGMENT_BYTES = 64 << 20


@dataclass(frozen=True)
class _Layout:
    """What reading a page needs, parsed once per process: its tifffile page (tags, the
    decoder), its header, and where each segment is."""

    pages: tuple
    headers: tuple[tiff_reading.Page, ...]
    offsets: tuple[np.ndarray, ...]
    counts: tuple[np.ndarray, ...]
    warnings: tuple[str, ...]
    icc_profile: bytes | None


class TiffRegions(Regions):
    """The pages of a TIFF file as N frames of (C, H, W) float32 pixels, read by region.

    Examples
    --------
    >>> import os, tempfile, tifffile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.tif")
    >>> tifffile.imwrite(path, np.arange(64, dtype=np.uint8).reshape(8, 8), tile=(16, 16))
    >>> regions = TiffRegions(path)
    >>> regions.shape, regions.depth
    ((1, 1, 8, 8), 8)
    >>> regions.read_region(slice(0, 1), slice(0, 1), slice(1, 3), slice(2, 4))[0, 0] * 255
    array([[10., 11.],
           [18., 19.]], dtype=float32)
    """

    format = "TIFF"

    def __init__(self, path: str, *, max_frames: int = MAX_FRAMES) -> None:
        super().__init__(path)
        self.max_frames = max_frames
        layout = _layout(self.path, self.stamp, self.source, max_frames)
        first = layout.headers[0]
        turned = first.orientation in (5, 6, 7, 8)
        height, width = (first.width, first.height) if turned else (first.height, first.width)
        self.shape = (len(layout.pages), first.channels, height, width)
        self.depth, self.has_alpha = first.depth, first.has_alpha
        self.warnings = list(layout.warnings)
        self.metadata = Metadata(icc_profile=layout.icc_profile)

    def _open(self) -> _Layout:
        return _layout(self.path, self.stamp, self.source, self.max_frames)

    def _read(self, layout: _Layout, samples, channels, rows, cols) -> np.ndarray:
        out = np.empty(
            (
                len(range(self.shape[0])[samples]),
                len(range(self.shape[1])[channels]),
                rows.stop - rows.start,
                cols.stop - cols.start,
            ),
            np.float32,
        )
        if out.size == 0:
            return out
        fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            for i, index in enumerate(range(self.shape[0])[samples]):
                page, header = layout.pages[index], layout.headers[index]
                (r0, r1), (c0, c1) = _stored_span(
                    header, (rows.start, rows.stop), (cols.start, cols.stop)
                )
                stored = self._stored(fd, layout, index, (r0, r1), (c0, c1))
                values = tiff_reading.converted(stored, page, header, self.source)
                out[i] = scaled_planes(upright(values, header.orientation), header.top)[channels]
        finally:
            os.close(fd)
        return out

    def _stored(self, fd: int, layout: _Layout, index: int, rows, cols) -> np.ndarray:
        """The page's samples at stored rows and columns, as (h, w, S)."""
        page = layout.pages[index]
        samples = page.samplesperpixel
        out = np.empty((rows[1] - rows[0], cols[1] - cols[0], samples), page.dtype)
        contiguous = _contiguous(page)
        planes = samples if page.planarconfig == 2 else 1
        for plane in range(planes):
            target = out[..., plane : plane + 1] if planes > 1 else out
            if contiguous:
                self._rows(fd, page, plane, rows, cols, target)
            else:
                self._segments(fd, layout, index, plane, rows, cols, target)
        return out.view(np.uint8) if out.dtype == np.bool_ else out

    def _rows(self, fd: int, page, plane: int, rows, cols, out: np.ndarray) -> None:
        """Rows of an uncompressed page stored in one piece, read as they are."""
        width, contig = page.imagewidth, out.shape[2]
        dtype = page.dtype.newbyteorder(page.parent.byteorder)
        row_bytes = width * contig * dtype.itemsize
        start = page.dataoffsets[0] + (plane * page.imagelength + rows[0]) * row_bytes
        data = _pread(fd, (rows[1] - rows[0]) * row_bytes, start, self.source)
        values = np.frombuffer(data, dtype).reshape(rows[1] - rows[0], width, contig)
        out[...] = values[:, cols[0] : cols[1]]

    def _segments(self, fd: int, layout: _Layout, index: int, plane: int, rows, cols, out):
        """The strips or tiles over ``rows`` x ``cols``, decoded and placed."""
        page = layout.pages[index]
        offsets, counts = layout.offsets[index], layout.counts[index]
        _, tall, wide = segments.segment_shape(page)
        down, across = -(-page.imagelength // tall), -(-page.imagewidth // wide)
        decode = page.decode
        for y in range(rows[0] // tall, -(-rows[1] // tall)):
            for x in range(cols[0] // wide, -(-cols[1] // wide)):
                number = (plane * down + y) * across + x
                data = _pread(fd, int(counts[number]), int(offsets[number]), self.source)
                segments.check_embedded(page, data, self.source)
                try:
                    decoded = decode(data, number, jpegtables=page.jpegtables, _fullsize=True)[0]
                except Exception as err:  # codecs raise many kinds on damaged data
                    raise ImageError(f"{self.source}: damaged TIFF ({err})") from None
                decoded = decoded.reshape(decoded.shape[-3:])  # (rows, columns, samples)
                top, left = y * tall, x * wide
                r0, r1 = max(rows[0], top), min(rows[1], top + decoded.shape[0])
                c0, c1 = max(cols[0], left), min(cols[1], left + decoded.shape[1])
                out[r0 - rows[0] : r1 - rows[0], c0 - cols[0] : c1 - cols[0]] = decoded[
                    r0 - top : r1 - top, c0 - left : c1 - left
                ]


def _pread(fd: int, count: int, offset: int, source: str) -> bytes:
    data = os.pread(fd, count, offset)
    if len(data) != count:
        raise ImageError(f"{source}: damaged TIFF: its image data ends early (truncated)")
    return data


def _contiguous(page) -> bool:
    """Uncompressed strips, whole bytes per sample, in one piece: rows can be read as
    stored (tiles, even in one piece, are not rows)."""
    return (
        page.compression == 1
        and not page.is_tiled
        and page.is_contiguous is not None
        and page.bitspersample in (8, 16, 32, 64)
        and page.fillorder == 1
        and page.predictor == 1
        and not page.is_subsampled
    )


@functools.lru_cache(maxsize=8)
def _layout(path: str, stamp: tuple[int, int], source: str, max_frames: int) -> _Layout:
    """The pages :func:`~convcli.images.tiff_reading.read_tiff` reads, checked as it
    checks them, with where their segments are. Cached per process (by path, size and
    modification time): every block of an image reads through one parse."""
    whole_only = None
    with tiff_reading.opened(path, source, max_frames=max_frames) as (pages, logged):
        headers = [tiff_reading.describe(page, source) for page in pages]
        notes = logged()
        first = headers[0]
        for index, h in enumerate(headers):
            if (h.width, h.height, h.channels) != (first.width, first.height, first.channels):
                raise ImageError(
                    f"{source}: its frames differ in size or channels (page {index} is "
                    f"{h.width}x{h.height} of {h.channels}, the first {first.width}x"
                    f"{first.height} of {first.channels}); split them first"
                )
        if any(h.top != first.top for h in headers):
            raise ImageError(f"{source}: its pages differ in bit depth; split them first")
        offsets, counts = [], []
        for page in pages:
            pairs = segments.check_present(page, source)
            offsets.append(np.array([o for o, _ in pairs], np.int64))
            counts.append(np.array([c for _, c in pairs], np.int64))
            _, tall, wide = segments.segment_shape(page)
            contig = page.samplesperpixel if page.planarconfig == 1 else 1
            size = min(tall, page.imagelength) * wide * contig * page.dtype.itemsize
            if page.imagedepth > 1:
                whole_only = f"a volume (ImageDepth {page.imagedepth})"
            elif not _contiguous(page) and size > SEGMENT_BYTES:
                whole_only = f"strips of {size:,} bytes each"
            page.decode  # noqa: B018 - built (and cached by tifffile) while the file is open
            _ = page.jpegtables, page.colormap, page.extrasamples  # tag values, loaded now
        icc = pages[0].tags.valueof(34675)  # InterColorProfile, as read_tiff reads it
    if whole_only is not None:
        raise NotByRegion(f"{source}: {whole_only}")
    return _Layout(
        tuple(pages),
        tuple(headers),
        tuple(offsets),
        tuple(counts),
        tuple(notes),
        bytes(icc) if icc else None,
    )


def _stored_span(header: tiff_reading.Page, rows: tuple[int, int], cols: tuple[int, int]):
    """The stored rows and columns that the displayed ``rows`` x ``cols`` come from, by the
    page's orientation (turned upright by :func:`convcli.images.orientation.upright`)."""
    height, width, o = header.height, header.width, header.orientation

    def flipped(span: tuple[int, int], size: int) -> tuple[int, int]:
        return size - span[1], size - span[0]

    if o in (1, 2, 3, 4):
        r = flipped(rows, height) if o in (3, 4) else rows
        c = flipped(cols, width) if o in (2, 3) else cols
        return r, c
    r = flipped(cols, height) if o in (6, 7) else cols
    c = flipped(rows, width) if o in (7, 8) else rows
    return r, c
