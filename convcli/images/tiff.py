"""TIFF in and out through tifffile and imagecodecs.

Reading (:func:`read_tiff`, :func:`tiff_pages`): every page; 1- to 16-bit
unsigned and 16/32/64-bit float samples; any number of channels, chunky or
planar, in strips or tiles; classic TIFF and BigTIFF; uncompressed, LZW,
deflate, PackBits, CCITT, LZMA, Zstandard, and JPEG, JPEG 2000, WebP or PNG
tiles (their own headers are checked against the TIFF's first, see
:mod:`convcli.images.segments`). Colours come out as Pillow gave them: palette
to 8-bit RGB (the 16-bit colour map's high bytes), CMYK to RGB by Pillow's
formula, 1-bit to gray, white-is-zero inverted. Reduced-resolution pages (the
levels of a pyramid, OME-TIFF's or libvips') are skipped: level 0 is read.
What tifffile logs about a file becomes the user's warnings, or an error when
the file is damaged.

Writing (:func:`write_tiff`, :func:`write_tiled`): 8- or 16-bit, any number of
channels, multi-page, deflate after the horizontal predictor, compressed on
every core by tifffile (4096x4096 RGB at level 1: 0.20 s against 0.35 s for
convcli's own writer before, see ``benchmarks/codecs.py``), BigTIFF once a file
could pass 4 GiB, strips or tiles; tiles from an iterator, so that an image is
never whole in memory.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from convcli.errors import ImageError, OutputError, ParameterError
from convcli.images import codecs, segments

_STRIP_BYTES = 1 << 18  # uncompressed bytes per strip: many strips to deflate in parallel
_CLASSIC_BYTES = 2**32 - 2**25  # past this much pixel data, BigTIFF (tifffile's margin)
_MINISWHITE, _MINISBLACK, _RGB, _PALETTE, _CMYK, _YCBCR = 0, 1, 2, 3, 5, 6
_COLOURS = {_MINISWHITE: 1, _MINISBLACK: 1, _RGB: 3, _PALETTE: 1, _CMYK: 4, _YCBCR: 3}
_CODECS = {  # Compression codes read here besides embedded images; each is bounded by its strip
    1: "none",
    2: "CCITT RLE",
    3: "CCITT G3",
    4: "CCITT G4",
    5: "LZW",
    8: "deflate",
    32946: "deflate",
    32773: "PackBits",
    34925: "LZMA",
    50000: "Zstandard",
}
_SKIPPED = 0b101  # NewSubfileType bits: reduced resolution, transparency mask
# Tags that say how to decode: tifffile skips one it cannot read and goes on with a default.
_NEEDED_TAGS = {256, 257, 258, 259, 262, 273, 274, 277, 278, 279, 284, 317, 320, 322, 323, 324}
_NEEDED_TAGS |= {325, 332, 338, 339, 347, 530, 32997, 32998}
_TAG = re.compile(r"TiffTag (\d+) @")


def photometric(channels: int) -> tuple[int, list[int]]:
    """(PhotometricInterpretation, ExtraSamples) for ``channels`` chunky samples.

    3 and 4 channels are RGB and RGBA (ExtraSamples 2: unassociated alpha);
    1 and 2 gray and gray+alpha. Other counts are feature maps, not colours:
    gray with the further samples unspecified (ExtraSamples 0).

    Examples
    --------
    >>> photometric(4), photometric(2), photometric(5)
    ((2, [2]), (1, [2]), (1, [0, 0, 0, 0]))
    """
    if channels in (3, 4):
        return 2, [2] * (channels - 3)
    if channels == 2:
        return 1, [2]
    return 1, [0] * (channels - 1)


def is_tiff(data: bytes) -> bool:
    """Classic TIFF or BigTIFF, either byte order."""
    return data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


# Reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """What one page's header says, and what reading it gives."""

    width: int
    height: int
    samples: int  # stored per pixel
    channels: int  # read: palette and CMYK become RGB
    depth: int  # 8, 16, or 32 (float)
    top: int  # the sample value that means 1.0: 255, 4095, 65535, ...; 1 for floats
    has_alpha: bool
    orientation: int  # TIFF Orientation, 1 (upright) to 8
    frames: int = 1  # depth slices of a volume (ImageDepth)


@dataclass
class Decoded:
    """Every page's pixels as (H, W, C) arrays of values up to ``page.top``, as stored
    (not yet turned upright by ``page.orientation``)."""

    frames: list[np.ndarray]
    page: Page
    warnings: list[str] = field(default_factory=list)


def tiff_pages(data: bytes, source: str) -> list[Page]:
    """The pages :func:`read_tiff` would read, from their headers alone."""
    with _opened(data, source) as (pages, logged):
        found = [_describe(page, source) for page in pages]
        logged()
        return found


def read_tiff(
    data: bytes, source: str, *, check: Callable[[list[Page]], None] = lambda pages: None
) -> Decoded:
    """Decode every page of TIFF ``data``; ``check`` sees the headers before any decoding.

    ``check`` is where the caller refuses sizes (``--max-pixels``). Pages of
    different sizes, channels or sample ranges are refused.
    """
    with _opened(data, source) as (pages, logged):
        found = [_describe(page, source) for page in pages]
        check(found)  # before what tifffile logged: a size over the limit explains more
        logged()
        first = found[0]
        if any(
            (p.width, p.height, p.channels) != (first.width, first.height, first.channels)
            for p in found
        ):
            raise ImageError(f"{source}: its frames differ in size or channels; split them first")
        if any(p.top != first.top for p in found):
            raise ImageError(f"{source}: its pages differ in bit depth; split them first")
        frames = []
        for page, header in zip(pages, found, strict=True):
            segments.check_segments(page, data, source)
            frames.extend(_converted(f, page, header, source) for f in _decoded(page))
        return Decoded(frames, first, logged())


@contextlib.contextmanager
def _opened(data: bytes, source: str) -> Iterator[tuple[list, Callable[[], list[str]]]]:
    """The pages to read (every IFD but pyramid levels and masks), and ``logged``.

    ``logged()`` raises what tifffile logged as an error so far (a broken page
    chain, a strip count that does not match, a tag needed to decode that it could
    not read: it reads on, short, zeroed or with a default) as an
    :class:`ImageError`, and returns the rest as the user's warnings. tifffile's
    exceptions, and those of its codecs on damaged data, become one ImageError
    naming the file.
    """
    tifffile = codecs.tifffile()
    notes: list[str] = []

    def logged() -> list[str]:
        for record in records:
            text = codecs.message(record)
            tag = _TAG.search(text)
            if record.levelno >= logging.ERROR and (not tag or int(tag[1]) in _NEEDED_TAGS):
                raise ImageError(f"{source}: damaged TIFF ({text})")
            text = f"{source}: " + (f"TIFF tag {tag[1]} cannot be read; ignored" if tag else text)
            if text not in notes:
                notes.append(text)
        records.clear()
        return notes

    with codecs.logged() as records:
        try:
            with tifffile.TiffFile(io.BytesIO(data)) as tif:
                found = list(tif.pages)
                if not found:
                    logged()  # the reason, when tifffile logged one
                    raise ImageError(f"{source}: damaged TIFF: no pages")
                yield [p for p in found if not p.subfiletype & _SKIPPED] or found, logged
        except (ImageError, MemoryError):
            raise
        except Exception as err:  # tifffile and imagecodecs raise many kinds on damaged data
            raise ImageError(f"{source}: damaged TIFF ({err})") from None


def _describe(page, source: str) -> Page:
    """The header of one page as a :class:`Page`; layouts convcli cannot read are errors."""
    kind, samples, compression = int(page.photometric), page.samplesperpixel, page.compression
    name = getattr(page.photometric, "name", kind)
    cannot = f"{source}: a TIFF layout convcli cannot read"
    if page.dtype is None or isinstance(page.bitspersample, tuple) or page.bitspersample < 1:
        raise ImageError(
            f"{cannot} ({page.bitspersample}-bit samples of SampleFormat "
            f"{int(page.sampleformat)}); save it with 8- or 16-bit or float samples"
        )
    if compression not in _CODECS and compression not in segments.EMBEDDED:
        codec = getattr(compression, "name", compression)
        raise ImageError(f"{cannot} (compression {codec}); convert it, e.g. with tiffcp -c zip")
    if kind not in _COLOURS or (kind == _YCBCR and compression not in segments.JPEG):
        raise ImageError(
            f"{cannot} (photometric {name}); convcli reads gray, RGB, palette and CMYK: "
            f"convert it to RGB, e.g. with tiff2rgba"
        )
    colours = _COLOURS[kind]
    if samples < colours or (kind == _CMYK and page.tags.valueof(332, 1) != 1):  # InkSet
        raise ImageError(f"{cannot} ({samples} samples of photometric {name}, not its colours)")
    if 0 in (page.imagewidth, page.imagelength, page.imagedepth):
        raise ImageError(f"{source}: damaged TIFF: a page of 0 pixels")
    extra = samples - colours
    channels = (3 if kind in (_PALETTE, _CMYK) else colours) + extra
    bits = min(16, page.bitspersample)  # wider integers must hold 16-bit values (see _converted)
    if page.dtype.kind == "f":
        depth, top = 32, 1
    else:
        depth, top = (8, 255) if kind == _PALETTE else (8 if bits <= 8 else 16, 2**bits - 1)
    alpha = channels in (2, 4) and extra == 1 and page.extrasamples[:1] in ((), (1,), (2,))
    orientation = page.tags.valueof(274, 1)
    return Page(
        page.imagewidth,
        page.imagelength,
        samples,
        channels,
        depth,
        top,
        alpha,
        orientation if orientation in range(1, 9) else 1,
        page.imagedepth,
    )


def _decoded(page) -> Iterator[np.ndarray]:
    """Each depth slice of a page as (H, W, S), views into tifffile's array (no copies)."""
    from convcli.conv.engines import thread_count

    values = page.asarray(maxworkers=thread_count()).reshape(page.shaped)
    if values.dtype == np.bool_:
        values = values.view(np.uint8)
    for z in range(values.shape[1]):
        # planar (S, 1, H, W, 1) or chunky (1, 1, H, W, S)
        yield values[:, z, :, :, 0].transpose(1, 2, 0) if values.shape[0] > 1 else values[0, z]


def _converted(values: np.ndarray, page, header: Page, source: str) -> np.ndarray:
    """One slice's samples -> (H, W, C) channels convcli reads (see the module's notes)."""
    kind = int(page.photometric)
    if values.dtype.kind == "f":
        with np.errstate(over="ignore"):  # float64 past float32's range: infinity, as in a cast
            values = values.astype(np.float32, copy=False)
    elif values.dtype.kind == "i" or page.bitspersample > 16:
        low, high = int(values.min(initial=0)), int(values.max(initial=0))
        if low < 0 or high > 65535:
            raise ImageError(
                f"{source}: {values.dtype} samples from {low} to {high} are outside 0..65535; "
                f"save it as 16-bit or float32"
            )
        values = values.astype(np.uint16)
    if kind == _MINISWHITE:
        np.subtract(values.dtype.type(header.top), values[..., 0], out=values[..., 0])
    elif kind == _PALETTE:
        values = _palette_rgb(values, page, source)
    elif kind == _CMYK:
        values = _cmyk_rgb(values, header.top)
    if header.has_alpha and page.extrasamples[:1] == (1,):
        values = _unpremultiplied(values, header.top)
    return values


def _palette_rgb(values: np.ndarray, page, source: str) -> np.ndarray:
    """Indices -> 8-bit RGB: the colour map's high bytes, as Pillow reads TIFF palettes.

    A colour map whose entries all sit below 256 was written as 8-bit values (as
    libtiff's tools assume too); its values are used as they are.
    """
    colours = np.asarray(page.colormap, np.uint16).reshape(3, -1)
    if colours.max(initial=0) > 255:
        colours = colours >> 8
    index = values[..., 0]
    if int(index.max(initial=0)) >= colours.shape[1]:
        raise ImageError(f"{source}: damaged TIFF: palette indices past its colour map")
    rgb = colours.astype(np.uint8).T[index]
    if values.shape[2] == 1:
        return rgb
    top = 2**page.bitspersample - 1  # of the indices and the extra samples beside them
    extra = (values[..., 1:].astype(np.uint16) * 255 // top).astype(np.uint8)
    return np.concatenate([rgb, extra], axis=2)


def _cmyk_rgb(values: np.ndarray, top: int) -> np.ndarray:
    """CMYK (+ extra samples) -> RGB (+ extra) as Pillow converts: (top - C)(top - K) / top.

    Pillow rounds C * (top - K) / top to the nearest integer and subtracts it
    from top - K; the same integer arithmetic for 8 and 16 bits.
    """
    wide = values.astype(np.int64)
    ink = top - wide[..., 3:4]
    rgb = ink - (wide[..., :3] * ink + top // 2) // top
    return np.concatenate([rgb, wide[..., 4:]], axis=2).astype(values.dtype)


def _unpremultiplied(values: np.ndarray, top: int) -> np.ndarray:
    """Associated (premultiplied) alpha -> colours on their own, as float32 up to ``top``.

    Kept as floats (no rounding to the file's integers); a transparent pixel's
    colour is 0, and colours above their alpha (damaged data) are clipped.
    """
    scaled = values.astype(np.float32)
    alpha = scaled[..., -1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        colour = np.where(alpha > 0, scaled[..., :-1] * np.float32(top) / alpha, 0)
    scaled[..., :-1] = np.clip(colour, 0, top)
    return scaled


# Writing ----------------------------------------------------------------------------------


def write_tiff(
    frames: np.ndarray,
    stream: BinaryIO,
    *,
    compress_level: int = 1,
    tile: tuple[int, int] | None = None,
) -> None:
    """Write (N, H, W, C) uint8 or uint16 frames as an N-page little-endian TIFF.

    Chunky samples, photometric by :func:`photometric`; strips of about 256 KiB
    (many, to compress on every core) or ``tile``-sized tiles. ``compress_level``
    1 to 9 is deflate after the horizontal predictor; 0 writes the pixels
    uncompressed. Past 4 GiB of pixels the file is a BigTIFF.

    Examples
    --------
    >>> out = io.BytesIO()
    >>> write_tiff(np.zeros((2, 3, 4, 5), np.uint16), out)
    >>> out.getvalue()[:4]
    b'II*\\x00'
    """
    _, height, width, channels = frames.shape
    options = _page_options(channels, frames.dtype, width, compress_level, tile)
    with _writer(stream, bigtiff=frames.nbytes > _CLASSIC_BYTES) as writer:
        for frame in frames:
            writer.write(frame if channels > 1 else frame[..., 0], **options)


def write_tiled(
    stream: BinaryIO,
    pieces: Iterable[np.ndarray],
    *,
    shape: tuple[int, int, int],
    dtype,
    tile: tuple[int, int] = (512, 512),
    compress_level: int = 1,
) -> None:
    """Write one (H, W, C) image, given as row bands or as tiles, as a tiled TIFF.

    ``pieces`` come top to bottom: bands as wide as the image, of any number of
    rows (they are cut into tiles once ``tile[0]`` rows are in), or tiles in
    rows of tiles, left to right, each ``tile`` or less at the right and bottom
    edges. Memory holds one row of tiles from bands (tiles from tiles), plus
    what tifffile compresses at once; so a 100k x 100k image is never whole.
    Same tags as :func:`write_tiff`; BigTIFF past 4 GiB of pixels.

    Examples
    --------
    >>> bands = (np.full((100, 40, 3), row, np.uint8) for row in range(3))
    >>> out = io.BytesIO()
    >>> write_tiled(out, bands, shape=(300, 40, 3), dtype=np.uint8, tile=(64, 32))
    >>> read_tiff(out.getvalue(), "x").frames[0][::100, 0, 0].tolist()
    [0, 1, 2]
    """
    height, width, channels = shape
    dtype = np.dtype(dtype)
    if len(tile) != 2 or any(t < 16 or t % 16 for t in tile):
        raise ParameterError(f"tile={tile!r}: TIFF tiles are multiples of 16 pixels a side")
    tiles = _tiles(iter(pieces), shape, dtype, tile)
    options = _page_options(channels, dtype, width, compress_level, tile)
    with _writer(stream, bigtiff=height * width * channels * dtype.itemsize > _CLASSIC_BYTES) as w:
        gray = channels == 1  # tifffile takes gray as (H, W), without a samples axis
        w.write(
            (t[..., 0] for t in tiles) if gray else tiles,
            shape=shape[: 3 - gray],
            dtype=dtype,
            **options,
        )


def _tiles(
    pieces: Iterator[np.ndarray], shape: tuple[int, int, int], dtype, tile: tuple[int, int]
) -> Iterator[np.ndarray]:
    """Tiles left to right, top to bottom, from row bands or from tiles (see write_tiled).

    Leftover pieces are refused before the last tile goes: tifffile closes this
    generator once it has every tile.
    """
    height, width, _ = shape
    rows, columns = tile
    held = [_next_piece(pieces, shape, dtype, 0)]
    bands = held[0].shape[1] == width  # a tile as wide as the image is a band too
    have = len(held[0])
    for top in range(0, height, rows):
        need = min(rows, height - top)
        last_row = top + need == height
        if bands:
            if have < need and held:  # a copy: the producer may refill the buffer it views
                held = [np.concatenate(held)]
            while have < need:
                held.append(_next_piece(pieces, shape, dtype, top + have, width))
                have += len(held[-1])
                if have < need:
                    held[-1] = held[-1].copy()
            block = np.concatenate(held) if len(held) > 1 else held[0]
            if last_row:
                _refuse_more(pieces, shape, have > need)
            for left in range(0, width, columns):  # copies: tifffile compresses them later
                yield np.ascontiguousarray(block[:need, left : left + columns])
            held, have = [block[need:]], have - need
            continue
        for left in range(0, width, columns):
            piece = held.pop() if held else _next_piece(pieces, shape, dtype, top)
            want = (need, min(columns, width - left))
            if piece.shape[:2] not in (want, tuple(tile)):
                raise OutputError(
                    f"write_tiled: the tile at row {top}, column {left} is {piece.shape[0]}x"
                    f"{piece.shape[1]}; expected {want[0]}x{want[1]}"
                )
            if last_row and left + columns >= width:
                _refuse_more(pieces, shape, False)
            yield np.array(piece)  # a copy: the caller may refill its buffer meanwhile


def _refuse_more(pieces: Iterator[np.ndarray], shape, rows_left: bool) -> None:
    if rows_left or next(pieces, None) is not None:
        raise OutputError(f"write_tiled: the pieces hold more than shape={shape}")


def _next_piece(pieces, shape, dtype, row: int, width: int | None = None) -> np.ndarray:
    """The next piece as (rows, columns, C); ``width``: it must be a band that wide."""
    piece = next(pieces, None)
    if piece is None:
        raise OutputError(f"write_tiled: the pieces end at row {row} of {shape[0]}")
    piece = np.asarray(piece)
    if piece.ndim == 2:
        piece = piece[..., None]
    if piece.ndim != 3 or piece.shape[2] != shape[2] or piece.dtype != dtype:
        raise OutputError(
            f"write_tiled: a piece of shape {piece.shape} and dtype {piece.dtype}; expected "
            f"{shape[2]} channels of {dtype}"
        )
    if width is not None and piece.shape[1] != width:
        raise OutputError(f"write_tiled: a piece {piece.shape[1]} wide among bands {width} wide")
    return piece


def _page_options(channels: int, dtype, width: int, level: int, tile) -> dict:
    """tifffile's ``write`` arguments for one page."""
    from convcli.conv.engines import thread_count

    kind, extra = photometric(channels)
    options = {
        "photometric": kind,
        "planarconfig": "contig" if channels > 1 else None,
        "extrasamples": extra or None,
        "metadata": None,  # no JSON description
        "software": False,
        "maxworkers": thread_count(),
    }
    if level:
        options.update(compression="zlib", compressionargs={"level": level}, predictor=True)
    if tile:
        options["tile"] = tuple(tile)
    else:
        row = width * channels * np.dtype(dtype).itemsize
        options["rowsperstrip"] = max(1, _STRIP_BYTES // max(row, 1))
    return options


@contextlib.contextmanager
def _writer(stream: BinaryIO, *, bigtiff: bool):
    """A TiffWriter on ``stream``; pipes (which cannot seek) get the file once complete."""
    tifffile = codecs.tifffile()
    with contextlib.ExitStack() as stack:
        target = stream if _seekable(stream) else stack.enter_context(tempfile.TemporaryFile())
        with codecs.logged(), tifffile.TiffWriter(_Stream(target), bigtiff=bigtiff) as writer:
            yield writer
        if target is not stream:
            target.seek(0)
            shutil.copyfileobj(target, stream, 1 << 20)


def _seekable(stream: BinaryIO) -> bool:
    try:
        return bool(stream.seekable()) and stream.tell() >= 0
    except (AttributeError, OSError, ValueError):
        return False


class _Stream:
    """What tifffile needs of a stream, and neither ``name`` nor ``fileno``: tifffile
    takes os.fdopen's integer name for a path, and numpy would write to the file
    descriptor past the stream (see :class:`convcli.images.outputs.CompleteWrites`)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw

    def write(self, data) -> int:
        return self.raw.write(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def flush(self) -> None:
        self.raw.flush()

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        raise io.UnsupportedOperation("fileno")  # tifffile then writes bytes
