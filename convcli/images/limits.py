"""The pixel limit, checked from what a file declares before anything is decoded: the
image, each of its frames (a GIF or TIFF frame, an MPO picture declares its own size,
read when the decoder seeks to it) and each image embedded in a container (an ICO's
PNG or BMP entries, which the decoder would load while merely opening the file).

A decompression bomb is a small file that declares (or inflates to) a huge image;
refusing it from its declarations keeps the memory it would take from ever being
asked for. Its cousin holds a huge number of tiny frames (100,000 1x1 GIF frames are
1.5 MB): few pixels, but every frame costs a seek, a decode, an array and an output
page, so the frames of one input are limited too (:data:`MAX_FRAMES`), counted as they
are sought and refused at the first one past the limit.
"""

from __future__ import annotations

import io
import re
import struct
from pathlib import Path

from convcli.errors import ImageError
from convcli.images import pillow, png, png_chunks

ICO_MAGIC = b"\0\0\1\0"
GIF_MAGICS = (b"GIF87a", b"GIF89a")
_GIF_BLOCK = re.compile(rb"[!,;]")  # what starts a block: an extension, an image, the end
MAX_FRAMES = 10_000
"""The most frames (GIF, APNG and WebP frames, MPO pictures, TIFF pages, the first axis of
a ``.npy`` or Zarr array) one input may hold unless ``--max-frames`` raises it."""


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


def check_frames(source: str, frames: int, max_frames: int, *, counted: bool = False) -> None:
    """Refuse more than ``max_frames`` frames; ``counted``: ``frames`` were counted up to
    one past the limit (how many there are in all is not known, nor worth learning).

    Examples
    --------
    >>> check_frames("a.gif", 10_000, 10_000)
    >>> check_frames("a.gif", 10_001, 10_000, counted=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    convcli.errors.ImageError: a.gif: more than 10,000 frames, over the limit of 10,000; ...
    """
    if frames > max_frames:
        held = f"more than {max_frames:,}" if counted else f"{frames:,}"
        raise ImageError(
            f"{source}: {held} frames, over the limit of {max_frames:,}; if you trust this "
            f"file, raise it with --max-frames{'' if counted else f' {frames}'}"
        )


def gif_frames(data: bytes, limit: int) -> int:
    """The images (frames) in GIF ``data``, counted block by block up to ``limit`` + 1,
    as Pillow finds them (bytes between blocks skipped): its ``n_frames`` walks every
    frame of the file, however many there are. Counting stops where the data ends.

    Examples
    --------
    >>> frame = b"\\x2c" + bytes(4) + b"\\x01\\x00\\x01\\x00\\x00" + b"\\x02\\x02\\x44\\x01\\x00"
    >>> gif = b"GIF89a\\x01\\x00\\x01\\x00\\x00\\x00\\x00" + frame * 5 + b"\\x3b"
    >>> gif_frames(gif, 100), gif_frames(gif, 2)
    (5, 3)
    """
    if len(data) < 13:
        return 0
    flags = data[10]
    at = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # past the global palette
    count = 0
    while at < len(data) and count <= limit:
        kind = data[at]
        if kind == 0x2C:  # an image: its descriptor, palette and LZW code size, then data
            if at + 10 > len(data):
                break
            local = data[at + 9]
            at += 11 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
            count += 1
        elif kind == 0x21:  # an extension: its label, then data
            at += 2
        elif kind == 0x3B:  # the trailer
            break
        else:  # a byte that starts nothing: Pillow reads on to the next block that does
            found = _GIF_BLOCK.search(data, at)
            if found is None:
                break
            at = found.start()
            continue
        while at < len(data) and data[at]:  # sub-blocks, each its length then its bytes
            at += data[at] + 1
        at += 1
    return count


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
