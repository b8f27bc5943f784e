"""The formats Pillow decodes (PNG, JPEG, MPO, WebP, GIF, BMP, ...): each frame checked
against the limits as it is sought, decoded inside the decode-error mapping, turned
upright and made (C, H, W) float32; or the fast decoders' pixels for the common files.

:func:`convcli.images.reading.read_image` dispatches here after the formats convcli
reads itself (TIFF, 16-bit PNG and PNM, ``.npy``).
"""

from __future__ import annotations

import io
import struct

import numpy as np

from convcli.errors import ImageError
from convcli.images import fast_codecs, jpeg, pillow, png_chunks
from convcli.images.decoded import Image, Stored, scaled_planes
from convcli.images.limits import (
    GIF_MAGICS,
    MAX_FRAMES,
    check_frame,
    check_frames,
    check_opening,
    check_whole,
    gif_frames,
)
from convcli.images.metadata import from_pillow
from convcli.images.orientation import oriented, upright

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
DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    TypeError,
    KeyError,
    IndexError,
    struct.error,
)


def raster_formats(pil) -> list[str]:
    return [name for name in RASTER_FORMATS if name in pil.OPEN]


def frame_count(im, data: bytes, source: str, max_frames: int) -> int:
    """The frames of Pillow's image ``im`` of ``data`` (GIF, APNG, WebP, MPO: from their
    headers), refused past ``max_frames``: a GIF's are counted up to the limit first,
    since Pillow would walk all of them to count them."""
    if data.startswith(GIF_MAGICS):
        check_frames(source, gif_frames(data, max_frames), max_frames, counted=True)
    try:
        frames = getattr(im, "n_frames", 1)  # frame headers only
    except DECODE_ERRORS as err:
        raise ImageError(f"{source}: damaged image header ({err})") from None
    check_frames(source, frames, max_frames)  # as declared: APNG, WebP, MPO
    return frames


def read_pillow(
    data: bytes,
    source: str,
    max_pixels: int,
    checked: png_chunks.Checked | None = None,
    *,
    max_frames: int = MAX_FRAMES,
) -> Image:
    """Pillow's image of ``data``, or the fast decoders' (``checked``: a PNG's chunks)."""
    pil = pillow.image_module()
    check_opening(data, source, max_pixels)  # ICO and WebP decode or allocate in open
    try:
        im = pil.open(io.BytesIO(data), formats=raster_formats(pil))
    except pil.UnidentifiedImageError:
        raise ImageError(unreadable(source)) from None
    except DECODE_ERRORS as err:
        raise ImageError(f"{source}: damaged image header ({err})") from None
    with im:
        frames = frame_count(im, data, source, max_frames)
        check_whole(source, im.width, im.height, frames, max_pixels)
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
                frame, frame_warnings = oriented(im, source)
                values, top, depth, has_alpha = _frame_values(frame, source, key)
            except ImageError:
                raise
            except DECODE_ERRORS as err:
                raise ImageError(
                    f"{source}: damaged or truncated {im.format} data ({err})"
                ) from None
            notes.extend(w for w in frame_warnings if w not in notes)
            if frames == 1 and top > 1:  # its integers, kept (see Stored): no float copy
                stored = Stored.of(values, top)
                return Image(None, depth, has_alpha, source, im.format, notes, found, stored=stored)
            arrays.append(scaled_planes(values, top))
        if len({a.shape for a in arrays}) > 1:
            raise ImageError(f"{source}: its frames differ in size or channels; split them first")
        # One frame (floats) needs no stacking copy: a (1, C, H, W) view of it will do.
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


def unreadable(source: str) -> str:
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


def _frame_values(
    im, source: str, key: tuple[int, ...] | None = None
) -> tuple[np.ndarray, int, int, bool]:
    """One Pillow frame -> ((H, W[, C]) values, top, depth, has_alpha): 8- or 16-bit
    integers read as ``values / top`` (255 or 65535), or mode F's float32 (top 1); a PNG's
    colour ``key`` (:func:`png_chunks.colour_key`) becomes an alpha channel, as libpng and
    libvips make it."""
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(im, np.uint16 if mode != "I" else np.int64)
        # 32-bit integer gray is how Pillow hands over some 16-bit files.
        if mode == "I" and (values.min(initial=0) < 0 or values.max(initial=0) > 65535):
            raise ImageError(f"{source}: 32-bit integer pixels outside 0..65535 are not supported")
        values = keyed(values.astype(np.uint16, copy=False), key)
        return values, 65535, 16, key is not None
    if mode == "F":
        return np.asarray(im, np.float32), 1, 32, False
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
    return values, 255, 8, alpha


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
