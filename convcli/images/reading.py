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
the rest by Pillow (:mod:`convcli.images.pillow_reading`).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from convcli.errors import ImageError
from convcli.images import inputs, npy, pillow, png, png_chunks, pnm, tiff_reading, zarr_arrays
from convcli.images.decoded import Image, Stored, scaled_planes
from convcli.images.limits import (
    ICO_MAGIC,
    MAX_FRAMES,
    check_frames,
    check_ico,
    check_pixels,
    check_samples,
    check_whole,
)
from convcli.images.metadata import Metadata, exif_payload
from convcli.images.orientation import exif_orientation, upright
from convcli.images.pillow_reading import (
    DECODE_ERRORS,
    frame_count,
    keyed,
    raster_formats,
    read_pillow,
    unreadable,
)

DEFAULT_MAX_PIXELS = 178_956_970  # Pillow's own decompression-bomb limit


def _could_be_image(prefix: bytes) -> bool:
    """True when a stream's first bytes may start a file convcli reads (an .npy array or
    a raster format); formats without a signature are asked to open the prefix."""
    if prefix.startswith(np.lib.format.MAGIC_PREFIX) or tiff_reading.is_tiff(prefix):
        return True
    pil = pillow.image_module()
    unsigned = []
    for name in raster_formats(pil):
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


def read_image(
    path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_frames: int = MAX_FRAMES
) -> Image:
    """Read an image file (or ``-`` for standard input) as (N, C, H, W) float32.

    Multi-frame files (TIFF pages, GIF and APNG frames) give one sample per frame, at
    most ``max_frames`` of them, and at most ``max_pixels`` pixels in all.

    Examples
    --------
    >>> img = read_image("sample_images/camera.png")  # doctest: +SKIP
    >>> img.pixels.shape, img.depth  # doctest: +SKIP
    ((1, 1, 512, 512), 8)
    """
    if str(path) != "-" and zarr_arrays.is_zarr(path):  # a directory store: raw values
        pixels, notes = zarr_arrays.read_zarr(str(path), max_pixels, max_frames)
        return Image(pixels, 32, False, inputs.shown(path), "ZARR", notes)
    data, source = _read_bytes(path, max_pixels)
    if not data:
        raise ImageError(f"{source}: empty file, not an image")
    if data.startswith(np.lib.format.MAGIC_PREFIX):
        notes: list[str] = []
        frames, channels, height, width = npy.shape(data, source)
        check_frames(source, frames, max_frames)
        check_pixels(source, width, height, frames, max_pixels)
        check_samples(source, "frames", frames, channels, height, width, max_pixels)
        array = npy.read_npy(data, source, notes)
        return Image(array, 32, False, source, "NPY", notes)
    if pnm.is_wide_pnm(data):  # Pillow would scale it into 8 bits, or round it
        _, width, height, maxval, _ = pnm.header(data)  # type: ignore[misc]
        check_whole(source, width, height, 1, max_pixels)
        values, maxval = pnm.read_pnm(data, source)
        return Image(None, 16, False, source, "PPM", stored=Stored.of(values, maxval))
    if tiff_reading.is_tiff(data):
        return _read_tiff(data, source, max_pixels, max_frames)
    checked = None
    if data.startswith(png_chunks.SIGNATURE):  # every chunk checked, whoever decodes it
        checked = png_chunks.check_png(data, source)
        data = checked.data
    if checked and png.is_16bit_png(data) and png.header(data)[3] != 0:  # type: ignore[index]
        # Pillow keeps the high byte of 16-bit colour (16-bit gray, I;16, is exact).
        width, height, _, colour, _ = png.header(data)  # type: ignore[misc]
        check_whole(source, width, height, 1, max_pixels)
        notes = checked.notes
        pixels = keyed(png.read_png16(checked, source, notes), png_chunks.colour_key(checked))
        exif = png.exif(checked)
        pixels = upright(pixels, exif_orientation(exif, source, notes))
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
        image = read_pillow(data, source, max_pixels, checked, max_frames=max_frames)
    for w in caught:
        message = f"{source}: {w.message}"
        if message not in image.warnings:
            image.warnings.append(message)
    return image


def _read_tiff(data: bytes, source: str, max_pixels: int, max_frames: int) -> Image:
    def check(pages: list[tiff_reading.Page]) -> None:  # every page, before any is decoded
        frames = sum(page.frames for page in pages)
        check_frames(source, frames, max_frames)
        for page in pages:
            check_pixels(source, page.width, page.height, frames, max_pixels)
            channels = max(page.samples, page.channels)
            check_samples(source, "pages", frames, channels, page.height, page.width, max_pixels)

    decoded = tiff_reading.read_tiff(data, source, check=check, max_frames=max_frames)
    page, frames = decoded.page, decoded.frames
    found = Metadata(icc_profile=decoded.icc_profile)
    if len(frames) == 1 and frames[0].dtype.kind == "u":  # not floats (premultiplied, ...)
        # Its integers, kept over their own range (12-bit over 4095, ...): no float copy.
        stored = Stored.of(upright(frames[0], page.orientation), page.top)
        warned = decoded.warnings
        return Image(None, page.depth, page.has_alpha, source, "TIFF", warned, found, stored=stored)
    planes = [scaled_planes(upright(f, page.orientation), page.top) for f in frames]
    # One frame needs no stacking copy: a (1, C, H, W) view of it will do.
    pixels = planes[0][None] if len(planes) == 1 else np.stack(planes)
    return Image(pixels, page.depth, page.has_alpha, source, "TIFF", decoded.warnings, found)


def read_image_shape(
    path: str | Path, *, max_frames: int = MAX_FRAMES
) -> tuple[int, int, int, int]:
    """(N, C, H, W) of an image from its header, without decoding the pixels; more than
    ``max_frames`` frames are refused, as :func:`read_image` refuses them."""
    # Only a header is read: what Pillow warns about (a corrupt EXIF, tags skipped, in
    # any page's header) is not the user's concern here, nor printed on stderr.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shape = _header_shape(path, max_frames)
    check_frames(inputs.shown(path), shape[0], max_frames)
    return shape


def _header_shape(path: str | Path, max_frames: int) -> tuple[int, int, int, int]:
    if str(path) != "-" and zarr_arrays.is_zarr(path):
        return zarr_arrays.ZarrRegions(str(path)).shape
    data, source = _read_bytes(path, DEFAULT_MAX_PIXELS)
    if not data:
        raise ImageError(f"{source}: empty file, not an image")
    if data.startswith(np.lib.format.MAGIC_PREFIX):
        return npy.shape(data, source)
    if tiff_reading.is_tiff(data):
        pages = tiff_reading.tiff_pages(data, source, max_frames=max_frames)
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
            im = pil.open(io.BytesIO(data), formats=raster_formats(pil))
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
            return (frame_count(im, data, source, max_frames), channels, height, width)
    except pil.UnidentifiedImageError:
        raise ImageError(unreadable(source)) from None
    except ImageError:
        raise
    except DECODE_ERRORS as err:
        raise ImageError(f"{source}: damaged image header ({err})") from None
