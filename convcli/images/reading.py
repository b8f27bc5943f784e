"""Images to and from (N, C, H, W) float32 arrays.

Pixels are float32 in [0, 1]: 8-bit values / 255, 16-bit / 65535; float images
(Pillow mode F, ``.npy``) are kept as they are. Only raster formats open; the
pixel count is checked from the header before anything is decoded.

Channels: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA. Palette images become RGB or
RGBA, CMYK and other colour spaces RGB, 1-bit images gray. TIFF (and ``.npy``)
may hold any number of channels, e.g. feature maps. 16-bit samples keep all
their bits in every format convcli reads, Pillow's 8-bit views of 16-bit
colour PNG and PPM notwithstanding: TIFF is read by tifffile
(:mod:`convcli.images.tiff_reading`), 16-bit colour PNG by libpng
(:func:`convcli.images.png.read_png16`), PGM/PPM past 8 bits by :mod:`convcli.images.pnm`,
the rest by Pillow.
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

import numpy as np

from convcli.errors import ImageError
from convcli.images import (
    fast_codecs,
    inputs,
    jpeg,
    npy,
    pillow,
    png,
    png_chunks,
    pnm,
    tiff_reading,
    zarr_arrays,
)
from convcli.images.decoded import Image, Stored, scaled_planes  # noqa: F401 - reached as reading.*
from convcli.images.limits import (
    ICO_MAGIC,
    check_frame,
    check_ico,
    check_opening,
    check_samples,
)
from convcli.images.limits import check_pixels as _check_pixels
from convcli.images.metadata import Metadata, exif_payload, from_pillow

DEFAULT_MAX_PIXELS = 178_956_970  # Pillow's own decompression-bomb limit

# Formats Pillow decodes in-process; EPS, PDF and the like would run outside programs.
# (TIFF is tifffile's, see read_image.)
RASTER_FORMATS = (
    "PNG",
    "JPEG",
    "MPO",
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


def _raster_formats(pil) -> list[str]:
    return [name for name in RASTER_FORMATS if name in pil.OPEN]


def _could_be_image(prefix: bytes) -> bool:
    """True when a stream's first bytes may start a file convcli reads (an .npy array or
    a raster format); formats without a signature are asked to open the prefix."""
    if prefix.startswith(np.lib.format.MAGIC_PREFIX) or tiff_reading.is_tiff(prefix):
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
    if str(path) != "-" and zarr_arrays.is_zarr(path):  # a directory store: raw values
        pixels, notes = zarr_arrays.read_zarr(str(path), max_pixels)
        return Image(pixels, 32, False, inputs.shown(path), "ZARR", notes)
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
    if pnm.is_wide_pnm(data):  # Pillow would scale it into 8 bits, or round it
        _, width, height, maxval, _ = pnm.header(data)  # type: ignore[misc]
        _check_whole(source, width, height, 1, max_pixels)
        values, maxval = pnm.read_pnm(data, source)
        return Image(None, 16, False, source, "PPM", stored=Stored.of(values, maxval))
    if tiff_reading.is_tiff(data):
        return _read_tiff(data, source, max_pixels)
    checked = None
    if data.startswith(png_chunks.SIGNATURE):  # every chunk checked, whoever decodes it
        checked = png_chunks.check_png(data, source)
        data = checked.data
    if checked and png.is_16bit_png(data) and png.header(data)[3] != 0:  # type: ignore[index]
        # Pillow keeps the high byte of 16-bit colour (16-bit gray, I;16, is exact).
        width, height, _, colour, _ = png.header(data)  # type: ignore[misc]
        _check_whole(source, width, height, 1, max_pixels)
        notes = checked.notes
        pixels = keyed(png.read_png16(checked, source, notes), png_chunks.colour_key(checked))
        exif = png.exif(checked)
        pixels = upright(pixels, _exif_orientation(exif, source, notes))
        found = Metadata(png.icc_profile(checked), exif_payload(exif))
        alpha = pixels.shape[2] in (2, 4)
        stored = Stored.of(pixels, 65535)
        return Image(None, 16, alpha, source, "PNG", notes, found, stored=stored)
    # Pillow reports oddities (corrupt EXIF, odd chunks) as Python warnings; they
    # become the user's warnings, never noise on stderr or exceptions. (This runs on
    # the command line's read-ahead thread; catch_warnings' state is process-wide, so
    # nothing else in convcli uses it while images are read.)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = _read_pillow(data, source, max_pixels, checked)
    for w in caught:
        message = f"{source}: {w.message}"
        if message not in image.warnings:
            image.warnings.append(message)
    return image


def _check_whole(source: str, width: int, height: int, frames: int, max_pixels: int) -> None:
    """The pixel limit of a format that decodes only whole (PNG, JPEG, PPM, ...: not TIFF,
    Zarr or .npy, which convcli reads a region at a time): its refusal names the way
    out, a tiled TIFF."""
    try:
        _check_pixels(source, width, height, frames, max_pixels)
    except ImageError as err:
        stem = Path(source).stem if source != "<stdin>" else "image"
        raise ImageError(
            f"{err}; or convert it to a tiled TIFF, which convcli filters a region at a "
            f"time without that limit: vips tiffsave {source} {stem}.tif --tile --bigtiff"
        ) from None


def _read_pillow(
    data: bytes, source: str, max_pixels: int, checked: png_chunks.Checked | None = None
) -> Image:
    """Pillow's image of ``data``, or the fast decoders' (``checked``: a PNG's chunks)."""
    pil = pillow.image_module()
    check_opening(data, source, max_pixels)  # ICO and WebP decode or allocate in open
    try:
        im = pil.open(io.BytesIO(data), formats=_raster_formats(pil))
    except pil.UnidentifiedImageError:
        raise ImageError(_unreadable(source)) from None
    except _DECODE_ERRORS as err:
        raise ImageError(f"{source}: damaged image header ({err})") from None
    with im:
        try:
            frames = getattr(im, "n_frames", 1)  # GIF, APNG, MPO: frame headers only
        except _DECODE_ERRORS as err:
            raise ImageError(f"{source}: damaged image header ({err})") from None
        _check_whole(source, im.width, im.height, frames, max_pixels)
        key = png_chunks.colour_key(checked) if checked else None
        notes: list[str] = checked.notes if checked else []
        # The same pixels, when it applies (and the metadata in the header it read).
        fast = fast_codecs.decode(data, im, source=source, notes=notes)
        if fast is not None:
            values = keyed(fast[0], key)
            stored = Stored.of(upright(values, fast[1]), 255)
            found = from_pillow(im)
            alpha = values.ndim == 3 and values.shape[2] in (2, 4)
            return Image(None, 8, alpha, source, im.format, notes, metadata=found, stored=stored)
        if checked:  # Pillow zero-fills the rows of a stream that ends early
            png_chunks.check_image_data(checked, source)
        arrays = []
        first_size = im.size
        depth = 8
        has_alpha = False
        for index in range(frames):
            try:
                im.seek(index)  # a frame's header is read here; its pixels are not, yet
                check_frame(source, index, im.size, first_size)
                if im.format in ("JPEG", "MPO"):  # libjpeg pads damaged data with gray
                    _check_jpeg(data, im, source, notes)
                # Decoded here, where a decoder's error is the input's error; EXIF
                # and every later step only ever see complete pixels.
                im.load()
                if index == 0:  # the first frame's: others may have their own
                    found = from_pillow(im)
                frame, frame_warnings = _oriented(im, source)
                array, depth, has_alpha = _to_array(frame, source, key)
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
        return Image(pixels, depth, has_alpha, source, im.format, notes, found)


def _check_jpeg(data: bytes, im, source: str, notes: list[str]) -> None:
    """The JPEG data of the frame Pillow is about to decode, checked for the damage its
    libjpeg would pad with gray (:func:`jpeg.check`); an MPO picture starts at its
    frame's offset."""
    start = getattr(im, "offset", 0) if im.format == "MPO" else 0
    part = f" in picture {im.tell()}" if start else ""
    note = jpeg.check(data[start:], source, components=len(im.getbands()), part=part)
    if note is not None and note not in notes:
        notes.append(note)


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


def _read_tiff(data: bytes, source: str, max_pixels: int) -> Image:
    def check(pages: list[tiff_reading.Page]) -> None:  # every page, before any is decoded
        frames = sum(page.frames for page in pages)
        for page in pages:
            _check_pixels(source, page.width, page.height, frames, max_pixels)
            channels = max(page.samples, page.channels)
            check_samples(source, "pages", frames, channels, page.height, page.width, max_pixels)

    decoded = tiff_reading.read_tiff(data, source, check=check)
    page = decoded.page
    planes = [scaled_planes(upright(f, page.orientation), page.top) for f in decoded.frames]
    # One frame needs no stacking copy: a (1, C, H, W) view of it will do.
    pixels = planes[0][None] if len(planes) == 1 else np.stack(planes)
    found = Metadata(icc_profile=decoded.icc_profile)
    return Image(pixels, page.depth, page.has_alpha, source, "TIFF", decoded.warnings, found)


# EXIF and TIFF orientation -> the turn that makes (H, W, C) pixels upright, as Pillow's
# ImageOps.exif_transpose does (2 mirrored, 3 upside down, 6 turned clockwise to display).
_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: a.swapaxes(0, 1)[:, ::-1],
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
    8: lambda a: a.swapaxes(0, 1)[::-1],
}


def upright(array: np.ndarray, orientation: int) -> np.ndarray:
    """(H, W, C) pixels as displayed, by their orientation (1 to 8); a view, no copy."""
    return _UPRIGHT.get(orientation, lambda a: a)(array)


def _exif_orientation(exif: bytes | None, source: str, notes: list[str]) -> int:
    """The orientation in EXIF bytes (1 when absent); a malformed EXIF is a warning."""
    if not exif:
        return 1
    try:
        tags = pillow.image_module().Exif()
        tags.load(exif)
        return int(tags.get(0x0112, 1))
    except Exception as err:  # Pillow raises many kinds on malformed EXIF
        notes.append(f"{source}: EXIF orientation could not be read ({err}); loaded as stored")
        return 1


def _oriented(im, source: str):
    """The frame turned upright by its EXIF orientation; a bad EXIF is a warning."""
    from PIL import ImageOps

    try:
        if im.getexif().get(0x0112, 1) == 1:
            return im, []  # upright as stored (exif_transpose would copy it anyway)
        return ImageOps.exif_transpose(im), []
    except Exception as err:  # Pillow raises many kinds on malformed EXIF
        return im, [f"{source}: EXIF orientation could not be read ({err}); loaded as stored"]


def _to_array(im, source: str, key: tuple[int, ...] | None = None) -> tuple[np.ndarray, int, bool]:
    """One Pillow frame -> ((C, H, W) float32, depth, has_alpha); a PNG's colour ``key``
    (:func:`png_chunks.colour_key`) becomes an alpha channel, as libpng and libvips make it."""
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(im, np.uint16 if mode != "I" else np.int64)
        # 32-bit integer gray is how Pillow hands over some 16-bit files.
        if mode == "I" and (values.min(initial=0) < 0 or values.max(initial=0) > 65535):
            raise ImageError(f"{source}: 32-bit integer pixels outside 0..65535 are not supported")
        values = keyed(values.astype(np.uint16, copy=False), key)
        return scaled_planes(values, 65535), 16, key is not None
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
    values = np.asarray(im, np.uint8)
    if im.mode in ("L", "RGB"):
        values = keyed(values, key)
    alpha = im.mode in ("LA", "RGBA") or (key is not None and im.mode in ("L", "RGB"))
    return scaled_planes(values, 255), 8, alpha


def keyed(values: np.ndarray, key: tuple[int, ...] | None) -> np.ndarray:
    """(H, W[, C]) gray or colour integers with an alpha channel from a colour ``key``:
    0 where a pixel equals it, the top value elsewhere; as they are without a key.

    Examples
    --------
    >>> keyed(np.array([[1, 2]], np.uint8), (2,)).tolist()
    [[[1, 255], [2, 0]]]
    """
    if key is None:
        return values
    colour = values if values.ndim == 3 else values[..., None]
    if colour.shape[2] != len(key):
        return values
    top = np.iinfo(values.dtype).max
    matches = (colour == np.array(key, values.dtype)).all(axis=2)
    alpha = np.where(matches, 0, top).astype(values.dtype)
    return np.concatenate([colour, alpha[..., None]], axis=2)


def read_image_shape(path: str | Path) -> tuple[int, int, int, int]:
    """(N, C, H, W) of an image from its header, without decoding the pixels."""
    # Only a header is read: what Pillow warns about (a corrupt EXIF, tags skipped, in
    # any page's header) is not the user's concern here, nor printed on stderr.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _header_shape(path)


def _header_shape(path: str | Path) -> tuple[int, int, int, int]:
    if str(path) != "-" and zarr_arrays.is_zarr(path):
        return zarr_arrays.ZarrRegions(str(path)).shape
    data, source = _read_bytes(path, DEFAULT_MAX_PIXELS)
    if not data:
        raise ImageError(f"{source}: empty file, not an image")
    if data.startswith(np.lib.format.MAGIC_PREFIX):
        return npy.shape(data, source)
    if tiff_reading.is_tiff(data):
        pages = tiff_reading.tiff_pages(data, source)
        page = pages[0]
        turned = page.orientation in (5, 6, 7, 8)
        width, height = (page.height, page.width) if turned else (page.width, page.height)
        return (sum(p.frames for p in pages), page.channels, height, width)
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
