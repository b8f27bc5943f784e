"""TIFF in through tifffile and imagecodecs (out: :mod:`convcli.images.tiff`).

:func:`read_tiff` decodes every page (:func:`tiff_pages` reads the headers
only): any number of channels, chunky or planar, in strips or tiles; classic
TIFF and BigTIFF; uncompressed, LZW, deflate, PackBits, CCITT, LZMA, Zstandard, and JPEG, JPEG
2000, WebP or PNG tiles (their own headers are checked against the TIFF's
first, see :mod:`convcli.images.segments`). Unsigned samples of 1 to 16 bits
are scaled by their own range (12-bit by 4095), floats (16, 32, 64-bit) kept
as they are, signed or 32-bit integers read as 16-bit when they hold 0..65535.
Colours come out as Pillow gave them: palette to 8-bit RGB (the 16-bit colour
map's high bytes), CMYK to RGB by Pillow's formula, 1-bit to gray;
white-is-zero is inverted (at 16 bits too, which Pillow did not), associated
(premultiplied) alpha divided out. Reduced-resolution pages (the levels of a
pyramid, OME-TIFF's or libvips') are skipped: level 0 is read. What tifffile
logs about a file becomes the user's warnings, or an error when the file is
damaged.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from convcli.errors import ImageError
from convcli.images import codecs, segments
from convcli.images.limits import MAX_FRAMES, check_frames

_MINISWHITE, _MINISBLACK, _RGB, _PALETTE, _CMYK, _YCBCR = 0, 1, 2, 3, 5, 6
_COLOURS = {_MINISWHITE: 1, _MINISBLACK: 1, _RGB: 3, _PALETTE: 1, _CMYK: 4, _YCBCR: 3}
# Compression codes read besides embedded images, each decoded into its strip's size: none,
# CCITT RLE, G3 and G4, LZW, deflate (8 and 32946), PackBits, LZMA, Zstandard.
_CODECS = {1, 2, 3, 4, 5, 8, 32946, 32773, 34925, 50000}
_SKIPPED = 0b101  # NewSubfileType bits: reduced resolution, transparency mask
# Tags that say how to decode: tifffile skips one it cannot read and goes on with a default.
_NEEDED_TAGS = {256, 257, 258, 259, 262, 273, 274, 277, 278, 279, 284, 317, 320, 322, 323, 324}
_NEEDED_TAGS |= {325, 332, 338, 339, 347, 530, 32997, 32998}
_TAG = re.compile(r"TiffTag (\d+) @")


def is_tiff(data: bytes) -> bool:
    """Classic TIFF or BigTIFF, either byte order."""
    return data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


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
    icc_profile: bytes | None = None  # the first page's InterColorProfile


def tiff_pages(data: bytes, source: str, *, max_frames: int = MAX_FRAMES) -> list[Page]:
    """The pages :func:`read_tiff` would read, from their headers alone."""
    with opened(data, source, max_frames=max_frames) as (pages, logged):
        found = [describe(page, source) for page in pages]
        logged()
        return found


def read_tiff(
    data: bytes,
    source: str,
    *,
    check: Callable[[list[Page]], None] = lambda pages: None,
    max_frames: int = MAX_FRAMES,
) -> Decoded:
    """Decode every page of TIFF ``data``; ``check`` sees the headers before any decoding.

    ``check`` is where the caller refuses sizes (``--max-pixels``). Pages of
    different sizes, channels or sample ranges are refused, and so are more than
    ``max_frames`` pages, from their count as they are parsed.
    """
    with opened(data, source, max_frames=max_frames) as (pages, logged):
        found = [describe(page, source) for page in pages]
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
            frames.extend(converted(f, page, header, source) for f in _decoded(page))
        icc = pages[0].tags.valueof(34675)
        return Decoded(frames, first, logged(), bytes(icc) if icc else None)


@contextlib.contextmanager
def opened(
    data: bytes | str, source: str, *, max_frames: int = MAX_FRAMES
) -> Iterator[tuple[list, Callable[[], list[str]]]]:
    """The pages to read (every IFD but pyramid levels and masks) of TIFF ``data`` (or of
    the file at that path), and ``logged``; refused at the first page past ``max_frames``
    (a chain of 100,000 tiny pages takes seconds to parse, and far longer to write).

    ``logged()`` raises what tifffile logged as an error so far (a broken page
    chain, a tag needed to decode that it could not read: it reads on, short or
    with a default) as an :class:`ImageError`, and returns the rest as the user's
    warnings; a strip count that does not match is left to
    :func:`segments.check_segments` (too many is harmless). tifffile's exceptions,
    and those of its codecs on damaged data, become one ImageError naming the file.
    """
    tifffile = codecs.tifffile()
    notes: list[str] = []

    def logged() -> list[str]:
        for record in records:
            text = codecs.message(record)
            tag = _TAG.search(text)
            needed = int(tag[1]) in _NEEDED_TAGS if tag else "incorrect Strip" not in text
            if record.levelno >= logging.ERROR and needed:
                raise ImageError(f"{source}: damaged TIFF ({text})")
            text = f"{source}: " + (f"TIFF tag {tag[1]} cannot be read; ignored" if tag else text)
            if text not in notes:
                notes.append(text)
        records.clear()
        return notes

    with codecs.logged() as records:
        try:
            stream = io.BytesIO(data) if isinstance(data, bytes) else data
            with tifffile.TiffFile(stream) as tif:
                found, seen = [], set()
                for page in tif.pages:  # parsed one by one as the chain is followed
                    # Followed lazily, tifffile finds no cycle in the chain: it would
                    # go round it for ever.
                    if page.offset in seen:
                        raise ImageError(
                            f"{source}: damaged TIFF (its chain of pages is circular: page "
                            f"{len(found)} is an earlier one)"
                        )
                    seen.add(page.offset)
                    found.append(page)
                    check_frames(source, len(found), max_frames, counted=True)
                if not found:
                    logged()  # the reason, when tifffile logged one
                    raise ImageError(f"{source}: damaged TIFF: no pages")
                yield [p for p in found if not p.subfiletype & _SKIPPED] or found, logged
        except (ImageError, MemoryError):
            raise
        except Exception as err:  # tifffile and imagecodecs raise many kinds on damaged data
            raise ImageError(f"{source}: damaged TIFF ({err})") from None


def describe(page, source: str) -> Page:
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
    if kind == _PALETTE and page.colormap is None:
        raise ImageError(f"{source}: damaged TIFF: a palette image without its ColorMap")
    colours = _COLOURS[kind]
    if samples < colours or (kind == _CMYK and page.tags.valueof(332, 1) != 1):  # InkSet
        raise ImageError(f"{cannot} ({samples} samples of photometric {name}, not its colours)")
    if 0 in (page.imagewidth, page.imagelength, page.imagedepth):
        raise ImageError(f"{source}: damaged TIFF: a page of 0 pixels")
    extra = samples - colours
    channels = (3 if kind in (_PALETTE, _CMYK) else colours) + extra
    bits = min(16, page.bitspersample)  # wider integers must hold 16-bit values (see converted)
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


def converted(values: np.ndarray, page, header: Page, source: str) -> np.ndarray:
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
    from top - K; the same integer arithmetic for 8 and 16 bits (uint32 holds
    65535 * 65535 + 32767), a channel at a time.
    """
    ink = top - values[..., 3].astype(np.uint32)
    out = np.empty((*values.shape[:2], values.shape[2] - 1), values.dtype)
    for c in range(3):
        out[..., c] = ink - (values[..., c] * ink + top // 2) // top
    out[..., 3:] = values[..., 4:]
    return out


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
