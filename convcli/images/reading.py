"""Images to and from (N, C, H, W) float32 arrays.

Pixels are float32 in [0, 1]: 8-bit values / 255, 16-bit / 65535; float images
(Pillow mode F, ``.npy``) are kept as they are. Only raster formats open; the
pixel count is checked from the header before anything is decoded.

Channels: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA. Palette images become RGB or
RGBA, CMYK and other colour spaces RGB, 1-bit images gray. TIFF (and ``.npy``)
may hold any number of channels, e.g. feature maps. 16-bit samples keep all
their bits in every format convcli reads, Pillow's 8-bit views of 16-bit
colour PNG, TIFF and PPM notwithstanding (see :func:`_decode_bytewise`).
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convcli.errors import ImageError
from convcli.images import inputs, npy, pillow, png, pnm, tiff
from convcli.images.limits import (
    ICO_MAGIC,
    check_frame,
    check_ico,
    check_opening,
    check_samples,
)
from convcli.images.limits import check_pixels as _check_pixels

DEFAULT_MAX_PIXELS = 178_956_970  # Pillow's own decompression-bomb limit

# Formats that decode in-process; EPS, PDF and the like would run outside programs.
RASTER_FORMATS = (
    "PNG",
    "JPEG",
    "MPO",
    "TIFF",
    "WEBP",
    "BMP",
    "DIB",
    "GIF",
    "PPM",
    "TGA",
    "ICO",
    "PCX",
    "SGI",
    "QOI",
    "IM",
)


# What Pillow's decoders raise on damaged data (its TIFF plugin also raises TypeError,
# KeyError and struct.error on malformed tags, e.g. "Missing dimensions").
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    TypeError,
    KeyError,
    IndexError,
    struct.error,
)


@dataclass
class Image:
    """A decoded image: pixels (N, C, H, W) float32 and what writing it back needs."""

    pixels: np.ndarray
    depth: int  # 8, 16, or 32 for float data
    has_alpha: bool
    source: str
    format: str | None
    warnings: list[str] = field(default_factory=list)


def _raster_formats(pil) -> list[str]:
    return [name for name in RASTER_FORMATS if name in pil.OPEN]


def _could_be_image(prefix: bytes) -> bool:
    """True when a stream's first bytes may start a file convcli reads (an .npy array or
    a raster format); formats without a signature are asked to open the prefix."""
    if prefix.startswith(np.lib.format.MAGIC_PREFIX):
        return True
    pil = pillow.image_module()
    unsigned = []
    for name in _raster_formats(pil):
        accept = pil.OPEN[name][1]
        if accept is None:
            unsigned.append(name)
        elif accept(prefix[:16]):
            return True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pil.open(io.BytesIO(prefix), formats=unsigned).close()
    except Exception:  # noqa: BLE001 - any refusal means: not one of these
        return False
    return True


def _read_bytes(path: str | Path, max_pixels: int) -> tuple[bytes, str]:
    """The input's bytes, no more than an image within ``max_pixels`` can hold
    (:mod:`convcli.images.inputs`: devices refused, pipes bounded)."""
    return inputs.read_input(
        path,
        limit=inputs.byte_budget(max_pixels),
        recognise=_could_be_image,
        budget_hint=f" ({max_pixels:,} pixels); if you trust this file, raise --max-pixels",
    )


def read_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image:
    """Read an image file (or ``-`` for standard input) as (N, C, H, W) float32.

    Multi-frame files (TIFF pages, GIF and APNG frames) give one sample per frame.

    Examples
    --------
    >>> img = read_image("sample_images/camera.png")  # doctest: +SKIP
    >>> img.pixels.shape, img.depth  # doctest: +SKIP
    ((1, 1, 512, 512), 8)
    """
    data, source = _read_bytes(path, max_pixels)
    if not data:
        raise ImageError(f"{source}: empty file, not an image")
    if data.startswith(np.lib.format.MAGIC_PREFIX):
        notes: list[str] = []
        frames, channels, height, width = npy.shape(data, source)
        _check_pixels(source, width, height, frames, max_pixels)
        check_samples(source, "frames", frames, channels, height, width, max_pixels)
        array = npy.read_npy(data, source, notes)
        return Image(array, 32, False, source, "NPY", notes)
    if pnm.is_16bit_ppm(data):  # Pillow would scale it into 8 bits
        _, width, height, maxval, _ = pnm.header(data)  # type: ignore[misc]
        _check_pixels(source, width, height, 1, max_pixels)
        values, maxval = pnm.read_ppm16(data, source)
        return Image(_scaled_planes(values, maxval)[None], 16, False, source, "PPM")
    if png.is_16bit_png(data) and png.header(data)[3] != 0:  # type: ignore[index]
        # Pillow keeps the high byte of 16-bit colour (16-bit gray, I;16, is exact).
        width, height, _, colour, _ = png.header(data)  # type: ignore[misc]
        _check_pixels(source, width, height, 1, max_pixels)
        if colour == 4:  # gray+alpha: no Pillow rawmode gives its bytes
            pixels, notes = png.read_png16(data, source), []
        else:
            pixels, notes = _decode_bytewise(data, source, "PNG", 0)
        planes = _scaled_planes(pixels, 65535)[None]
        return Image(planes, 16, colour in (4, 6), source, "PNG", notes)
    # Pillow reports oddities (corrupt EXIF, odd chunks) as Python warnings; they
    # become the user's warnings, never noise on stderr or exceptions. (This runs on
    # the command line's read-ahead thread; catch_warnings' state is process-wide, so
    # nothing else in convcli uses it while images are read.)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = _read_pillow(data, source, max_pixels)
    for w in caught:
        message = f"{source}: {w.message}"
        if message not in image.warnings:
            image.warnings.append(message)
    return image


def _read_pillow(data: bytes, source: str, max_pixels: int) -> Image:
    pil = pillow.image_module()
    # TIFF layouts Pillow refuses (any channel count, 16-bit gray+alpha) or would cut
    # (extra samples dropped) are read by tiff.read_tiff when it knows them.
    pages = tiff.pages_or_none(data, source)
    own = pages is not None and all(p.simple for p in pages)
    if own and not tiff.pillow_reads(pages[0]):  # type: ignore[index]
        return _read_own_tiff(data, source, pages, max_pixels)  # type: ignore[arg-type]
    check_opening(data, source, max_pixels)  # ICO and WebP decode or allocate in open
    try:
        im = pil.open(io.BytesIO(data), formats=_raster_formats(pil))
    except pil.UnidentifiedImageError:
        if own:
            return _read_own_tiff(data, source, pages, max_pixels)  # type: ignore[arg-type]
        if pages is not None:
            raise ImageError(f"{source}: {tiff.why_unreadable(pages)}") from None
        raise ImageError(_unreadable(source)) from None
    except _DECODE_ERRORS as err:
        raise ImageError(f"{source}: damaged image header ({err})") from None
    with im:
        try:
            frames = getattr(im, "n_frames", 1)  # TIFF reads every page's header here
        except _DECODE_ERRORS as err:
            raise ImageError(f"{source}: damaged image header ({err})") from None
        _check_pixels(source, im.width, im.height, frames, max_pixels)
        if own and len(im.getbands()) < pages[0].channels:  # type: ignore[index]
            return _read_own_tiff(data, source, pages, max_pixels)  # type: ignore[arg-type]
        notes: list[str] = []
        arrays = []
        first_size = im.size
        depth = 8
        has_alpha = False
        for index in range(frames):
            try:
                im.seek(index)  # a frame's header is read here; its pixels are not, yet
                check_frame(source, index, im.size, first_size)
                bits = pages[index].bits if pages and index < len(pages) else 8
                if bits > 8 and im.mode in ("RGB", "RGBA"):
                    exact, frame_warnings = _decode_bytewise(data, source, im.format, index)
                    array, depth, has_alpha = _scaled_planes(exact, 65535), 16, im.mode == "RGBA"
                elif bits > 8 and not im.mode.startswith(("I", "F")):
                    raise ImageError(
                        f"{source}: {bits}-bit {im.mode} TIFF would be cut to 8 bits by the "
                        f"decoder; save it as 16-bit RGB or RGBA"
                    )
                else:
                    # Decoded here, where a decoder's error is the input's error; EXIF
                    # and every later step only ever see complete pixels.
                    im.load()
                    frame, frame_warnings = _oriented(im, source)
                    array, depth, has_alpha = _to_array(frame, source)
            except ImageError:
                raise
            except _DECODE_ERRORS as err:
                raise ImageError(
                    f"{source}: damaged or truncated {im.format} data ({err})"
                ) from None
            notes.extend(w for w in frame_warnings if w not in notes)
            arrays.append(array)
        if len({a.shape for a in arrays}) > 1:
            raise ImageError(f"{source}: its frames differ in size or channels; split them first")
        # One frame needs no stacking copy: a (1, C, H, W) view of it will do.
        pixels = arrays[0][None] if len(arrays) == 1 else np.stack(arrays)
        return Image(pixels, depth, has_alpha, source, im.format, notes)


def _unreadable(source: str) -> str:
    """The message for data no reader knows: what convcli reads, .npy arrays included."""
    if source.lower().endswith(".npy"):
        return (
            f"{source}: not a NumPy .npy array (no \\x93NUMPY header) nor an image; save "
            f"arrays with numpy.save"
        )
    return (
        f"{source}: not an image convcli can read; it reads raster formats (PNG, JPEG, TIFF, "
        f"WebP, BMP, GIF, PNM, ...) and NumPy .npy arrays"
    )


def _read_own_tiff(data: bytes, source: str, pages: list, max_pixels: int) -> Image:
    first = pages[0]
    for page in pages:  # every page: a later one may claim a larger size
        _check_pixels(source, page.width, page.height, len(pages), max_pixels)
        check_samples(
            source, "pages", len(pages), page.channels, page.height, page.width, max_pixels
        )
    values = tiff.read_tiff(data, source, pages)
    top = 65535 if values.dtype == np.uint16 else 255
    planes = np.stack([_scaled_planes(frame, top) for frame in values])
    alpha = first.channels in (2, 4) and first.extra[:1] == [2]
    return Image(planes, 8 * values.dtype.itemsize, alpha, source, "TIFF")


def _decode_bytewise(data: bytes, source: str, fmt: str, frame: int) -> tuple[np.ndarray, list]:
    """Frame ``frame`` of a 16-bit RGB/RGBA PNG or TIFF as exact (H, W, C) uint16.

    Pillow keeps only the high byte of these samples, but its fast decoders can
    be asked for either byte (:func:`tiff.rawmodes16`): decoding twice, once per
    byte, gives the exact values at C speed (a Python row loop takes seconds per
    megapixel on Paeth-filtered PNG rows), through libtiff for any compression
    it knows. Returns the pixels upright by their EXIF orientation, and warnings.
    """
    pil = pillow.image_module()
    planes = []
    for byte in (0, 1):
        try:
            im = pil.open(io.BytesIO(data), formats=[fmt])
            im.seek(frame)
            tiles = []
            for tile in im.tile:
                args = (tile[3],) if isinstance(tile[3], str) else tuple(tile[3])
                modes = tiff.rawmodes16(args[0])
                if modes is None:
                    raise ImageError(f"{source}: a 16-bit {fmt} layout convcli cannot read exactly")
                args = modes[byte] if isinstance(tile[3], str) else (modes[byte], *args[1:])
                # Pillow 11 made tiles named tuples; Pillow 10's are plain tuples.
                named = hasattr(tile, "_replace")
                tiles.append(tile._replace(args=args) if named else (*tile[:3], args))
            im.tile = tiles
            im.load()
        except ImageError:
            raise
        except _DECODE_ERRORS as err:
            raise ImageError(f"{source}: damaged or truncated {fmt} data ({err})") from None
        oriented, notes = _oriented(im, source)
        planes.append(np.asarray(oriented))
    high, low = planes
    return (high.astype(np.uint16) << 8) | low, notes


def _oriented(im, source: str):
    """The frame turned upright by its EXIF orientation; a bad EXIF is a warning."""
    from PIL import ImageOps

    try:
        if im.getexif().get(0x0112, 1) == 1:
            return im, []  # upright as stored (exif_transpose would copy it anyway)
        return ImageOps.exif_transpose(im), []
    except Exception as err:  # Pillow raises many kinds on malformed EXIF
        return im, [f"{source}: EXIF orientation could not be read ({err}); loaded as stored"]


def _to_array(im, source: str) -> tuple[np.ndarray, int, bool]:
    """One Pillow frame -> ((C, H, W) float32, depth, has_alpha)."""
    mode = im.mode
    if mode.startswith("I;16"):
        return _scaled_planes(np.asarray(im, np.uint16), 65535), 16, False
    if mode == "I":
        values = np.asarray(im, np.int64)
        # 32-bit integer gray is how Pillow hands over some 16-bit files.
        if values.min(initial=0) >= 0 and values.max(initial=0) <= 65535:
            return values[None].astype(np.float32) / 65535, 16, False
        raise ImageError(f"{source}: 32-bit integer pixels outside 0..65535 are not supported")
    if mode == "F":
        return np.asarray(im, np.float32)[None].copy(), 32, False
    if mode == "1":
        im = im.convert("L")
    elif mode in ("P", "PA"):
        im = im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB")
    elif mode == "La":
        im = im.convert("LA")
    elif mode == "RGBa":
        im = im.convert("RGBA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX
    return _scaled_planes(np.asarray(im, np.uint8), 255), 8, im.mode in ("LA", "RGBA")


def _scaled_planes(array: np.ndarray, top: int) -> np.ndarray:
    """(H, W[, C]) integers -> (C, H, W) float32 / top, one channel at a time.

    Converting the interleaved array in one go is several times slower (a strided
    read through a temporary); per-channel divisions into one result are not.
    """
    if array.ndim == 2:
        array = array[..., None]
    out = np.empty((array.shape[2], *array.shape[:2]), np.float32)
    for c in range(array.shape[2]):
        np.divide(array[..., c], np.float32(top), out=out[c], dtype=np.float32)
    return out


def read_image_shape(path: str | Path) -> tuple[int, int, int, int]:
    """(N, C, H, W) of an image from its header, without decoding the pixels."""
    # Only a header is read: what Pillow warns about (a corrupt EXIF, tags skipped, in
    # any page's header) is not the user's concern here, nor printed on stderr.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _header_shape(path)


def _header_shape(path: str | Path) -> tuple[int, int, int, int]:
    data, source = _read_bytes(path, DEFAULT_MAX_PIXELS)
    if not data:
        raise ImageError(f"{source}: empty file, not an image")
    if data.startswith(np.lib.format.MAGIC_PREFIX):
        return npy.shape(data, source)
    pages = tiff.pages_or_none(data, source)
    if pages and all(p.simple for p in pages):
        return (len(pages), pages[0].channels, pages[0].height, pages[0].width)
    pil = pillow.image_module()
    if data.startswith(ICO_MAGIC):  # Pillow decodes an icon's image while opening it
        check_ico(data, source, DEFAULT_MAX_PIXELS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # only the header is read here
            im = pil.open(io.BytesIO(data), formats=_raster_formats(pil))
        with im:
            channels = {
                "1": 1,
                "L": 1,
                "I": 1,
                "F": 1,
                "LA": 2,
                "La": 2,
                "RGBA": 4,
                "RGBa": 4,
                "PA": 4,
            }.get(im.mode, 3)
            if im.mode == "P":
                channels = 4 if "transparency" in im.info else 3
            if im.mode.startswith("I;16"):
                channels = 1
            if png.is_16bit_png(data):
                channels = png.CHANNELS[png.header(data)[3]]
            size = im.size
            # Pillow's PNG getexif() decodes every pixel to look for an eXIf chunk after
            # them: only a header's EXIF is read here (no pixels, whatever they declare).
            header_exif = im.format != "PNG" or "exif" in im.info
            orientation = im.getexif().get(0x0112, 1) if header_exif else 1
            width, height = (size[1], size[0]) if orientation in (5, 6, 7, 8) else size
            return (getattr(im, "n_frames", 1), channels, height, width)
    except pil.UnidentifiedImageError:
        raise ImageError(_unreadable(source)) from None
    except _DECODE_ERRORS as err:
        raise ImageError(f"{source}: damaged image header ({err})") from None
