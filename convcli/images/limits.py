"""The pixel limit, checked from what a file declares before anything is decoded: the
image, each of its frames (a GIF or TIFF frame, an MPO picture declares its own size,
read when the decoder seeks to it) and each image embedded in a container (an ICO's
PNG or BMP entries, which the decoder would load while merely opening the file).

A decompression bomb is a small file that declares (or inflates to) a huge image;
refusing it from its declarations keeps the memory it would take from ever being
asked for.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

from convcli.errors import ImageError
from convcli.images import pillow, png, png_chunks

ICO_MAGIC = b"\0\0\1\0"


def check_opening(data: bytes, source: str, max_pixels: int) -> None:
    """What a file declares, checked before Pillow opens it, for the formats whose
    opening already allocates or decodes: an ICO decodes its largest entry, a WebP
    allocates its canvas (twice: libwebp's animation decoder) while being opened."""
    if data.startswith(ICO_MAGIC):
        check_ico(data, source, max_pixels)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        size = webp_canvas(data)
        if size is not None:
            check_pixels(source, *size, 1, max_pixels)


def webp_canvas(data: bytes) -> tuple[int, int] | None:
    """(width, height) a WebP declares: the extended format's canvas, or a simple lossy
    or lossless bitstream's size; None when its first chunk is none of these.

    Examples
    --------
    >>> header = b"RIFF" + bytes(4) + b"WEBPVP8X" + bytes(8) + (999).to_bytes(3, "little")
    >>> webp_canvas(header + (499).to_bytes(3, "little"))
    (1000, 500)
    """
    chunk, body = data[12:16], data[20:30]
    if chunk == b"VP8X" and len(body) == 10:
        return 1 + int.from_bytes(body[4:7], "little"), 1 + int.from_bytes(body[7:10], "little")
    if chunk == b"VP8 " and len(body) == 10 and body[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", body[6:10])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        bits = int.from_bytes(body[1:5], "little")
        return 1 + (bits & 0x3FFF), 1 + (bits >> 14 & 0x3FFF)
    return None


def check_pixels(source: str, width: int, height: int, frames: int, max_pixels: int) -> None:
    """Refuse ``frames`` frames of ``width`` x ``height`` over ``max_pixels`` in all.

    Examples
    --------
    >>> check_pixels("a.png", 100, 100, 1, 10_000)
    >>> check_pixels("a.gif", 100, 100, 3, 10_000)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    convcli.errors.ImageError: a.gif: 100x100 x 3 frames is 30,000 pixels, over the limit ...
    """
    total = width * height * frames
    if total > max_pixels:
        raise ImageError(
            f"{source}: {width}x{height}{f' x {frames} frames' if frames > 1 else ''} is "
            f"{total:,} pixels, over the limit of {max_pixels:,}; if you trust this file, "
            f"raise it with --max-pixels {total}"
        )


def check_whole(source: str, width: int, height: int, frames: int, max_pixels: int) -> None:
    """The pixel limit of a format that decodes only whole (PNG, JPEG, PPM, ...: not TIFF,
    Zarr or .npy, which convcli reads a region at a time): its refusal names the way
    out, a tiled TIFF."""
    try:
        check_pixels(source, width, height, frames, max_pixels)
    except ImageError as err:
        stem = Path(source).stem if source != "<stdin>" else "image"
        raise ImageError(
            f"{err}; or convert it to a tiled TIFF, which convcli filters a region at a "
            f"time without that limit: vips tiffsave {source} {stem}.tif --tile --bigtiff"
        ) from None


def check_samples(
    source: str, what: str, frames: int, channels: int, height: int, width: int, max_pixels: int
) -> None:
    """Channels are unbounded in TIFF and ``.npy``: refuse more than 4 samples per pixel
    of the limit (``what`` names the frames: "pages", "frames").

    Examples
    --------
    >>> check_samples("a.npy", "frames", 1, 64, 100, 100, 10_000)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    convcli.errors.ImageError: a.npy: 64 channels of 100x100 x 1 frames are 640,000 samples, ...
    """
    samples = width * height * frames * channels
    if samples > 4 * max_pixels:
        raise ImageError(
            f"{source}: {channels} channels of {width}x{height} x {frames} {what} are "
            f"{samples:,} samples, over 4 per pixel of the limit; if you trust this file, "
            f"raise it with --max-pixels {-(-samples // 4)}"
        )


def check_frame(source: str, index: int, size: tuple[int, int], first: tuple[int, int]) -> None:
    """A frame's declared ``size``, once the decoder has sought to it and before it is
    decoded, must be the first frame's: frames stack into one (N, C, H, W) array, and
    the first frame's size times the frame count is what the limit was checked on (a
    GIF frame larger than its canvas would otherwise grow every frame after it).

    Examples
    --------
    >>> check_frame("a.gif", 1, (8, 8), (8, 8))
    >>> check_frame("a.gif", 1, (30000, 30000), (8, 8))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    convcli.errors.ImageError: a.gif: frame 1 is 30000x30000, the first frame 8x8; ...
    """
    if size != first:
        raise ImageError(
            f"{source}: frame {index} is {size[0]}x{size[1]}, the first frame "
            f"{first[0]}x{first[1]}; its frames differ in size, split them first"
        )


def check_ico(data: bytes, source: str, max_pixels: int) -> None:
    """Every image an ICO file embeds, from its own header: Pillow decodes the largest
    entry while opening the file, whatever size the directory claims for it; an embedded
    PNG's chunks and image data are checked too (:mod:`convcli.images.png_chunks`)."""
    from PIL import BmpImagePlugin, IcoImagePlugin, PngImagePlugin

    pillow.image_module()
    try:
        entries = IcoImagePlugin.IcoFile(io.BytesIO(data)).entry
        for entry in entries:
            embedded = io.BytesIO(data)
            embedded.seek(entry.offset)
            is_png = data[entry.offset : entry.offset + 8] == png.SIGNATURE
            kind = PngImagePlugin.PngImageFile if is_png else BmpImagePlugin.DibImageFile
            with kind(embedded) as image:
                width, height = image.size
            where = f"{source} (an embedded image)"
            if not is_png:  # a BMP entry's height counts its colour and its mask rows
                height //= 2
            check_pixels(where, width, height, 1, max_pixels)
            if is_png:  # Pillow would zero-fill the rows of a short one
                embedded_png = data[entry.offset : entry.offset + entry.size]
                png_chunks.check_image_data(png_chunks.check_png(embedded_png, where), where)
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError) as err:
        raise ImageError(f"{source}: damaged ICO directory ({err})") from None
