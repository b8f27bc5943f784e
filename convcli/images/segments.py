"""A TIFF page's strips and tiles, checked before anything is decoded.

Ways a damaged or hostile TIFF gets past its header's size: tifffile fills
missing strips with zeros (a silently wrong image), and decodes a strip the file
ends inside of as far as it goes (libjpeg pads the rest with gray); JPEG, JPEG
2000, WebP and PNG strips and tiles are whole images whose decoders allocate
what their *own* header says (a 700-byte JPEG tile claiming 30000x30000 pixels
decoded to 2.7 GB here, whatever ``--max-pixels`` allowed for the TIFF), and a
damaged JPEG one decodes with gray where its data is lost.
:func:`check_segments` refuses all of these; :func:`embedded_size` reads an
embedded image's header (a few bytes, nothing decoded).
"""

from __future__ import annotations

import math
import struct

from convcli.errors import ImageError
from convcli.images import jpeg, png

# TIFF Compression codes whose strips and tiles are images with their own header.
JPEG = {7, 33007, 34892}  # not 6, old-style JPEG: its strips lack headers
JPEG2000 = {33003, 33004, 33005, 34712}
WEBP = {50001}
PNG = {34933}
EMBEDDED = JPEG | JPEG2000 | WEBP | PNG

# Start-of-frame markers (C4 DHT, C8 JPG and CC DAC are not frames).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def check_segments(page, data: bytes, source: str) -> None:
    """Refuse a tifffile page whose strips or tiles are missing, or hold too large images."""
    pairs = check_present(page, source)
    for offset, count in pairs:
        check_embedded(page, data[offset : offset + count], source)


def check_present(page, source: str) -> list[tuple[int, int]]:
    """Refuse a page with strips or tiles missing, or that the file ends inside of;
    return the (offset, byte count) of each one the image needs (a region reader checks
    each with :func:`check_embedded` as it reads it)."""
    if page.is_tiled:
        needed = math.prod(
            -(-size // step)
            for size, step in zip(page.shaped[1:4], segment_shape(page), strict=True)
        )
    else:
        needed = -(-page.imagelength // page.rowsperstrip) * page.imagedepth
    if page.planarconfig == 2:
        needed *= page.samplesperpixel
    pairs = list(zip(page.dataoffsets, page.databytecounts, strict=False))[:needed]
    present = sum(1 for offset, count in pairs if offset > 0 and count > 0)
    what = "tiles" if page.is_tiled else "strips"
    if present < needed:
        raise ImageError(
            f"{source}: damaged TIFF: page {page.index} has image data for {present} of "
            f"its {needed} {what}"
        )
    size = page.parent.filehandle.size
    for number, (offset, count) in enumerate(pairs):
        if offset + _bytes_read(page, number, count) > size:
            raise ImageError(
                f"{source}: damaged TIFF: {what[:-1]} {number} of page {page.index} runs "
                f"to byte {offset + count:,}, past the end of the file ({size:,} bytes); it "
                f"is truncated, or its offsets are wrong"
            )
    return pairs


def _bytes_read(page, number: int, count: int) -> int:
    """The bytes of segment ``number`` a decoder reads: its byte count, or, uncompressed,
    no more than its rows hold (a last strip's count may cover rows past the image)."""
    if page.compression != 1:
        return count
    _, rows, columns = segment_shape(page)
    if not page.is_tiled:
        strips = -(-page.imagelength // rows)
        rows = min(rows, page.imagelength - (number % strips) * rows)
    samples = page.samplesperpixel if page.planarconfig == 1 else 1
    return min(count, rows * -(-columns * samples * page.bitspersample // 8))


def segment_shape(page) -> tuple[int, int, int]:
    """(depth, rows, columns) of a page's tiles, or of its strips (1, RowsPerStrip, width)."""
    if page.is_tiled:
        return page.tiledepth, page.tilelength, page.tilewidth
    return 1, page.rowsperstrip, page.imagewidth


def check_embedded(page, segment: bytes, source: str) -> None:
    """Refuse a strip or tile that is an image (JPEG, JPEG 2000, WebP, PNG) larger than
    the room the TIFF gives it, from its own header, before it is decoded."""
    if page.compression not in EMBEDDED:
        return
    limits = segment_shape(page)[1:]
    room = max(4, page.samplesperpixel if page.planarconfig == 1 else 1)
    size = embedded_size(page.compression, segment)
    if size is None:
        kind = getattr(page.compression, "name", page.compression)
        raise ImageError(f"{source}: damaged TIFF: a {kind} tile without a readable header")
    height, width, samples = size
    # JPEG encoders may pad to whole 16-pixel blocks; a bomb claims far more.
    if height > limits[0] + 16 or width > limits[1] + 16 or samples > room:
        raise ImageError(
            f"{source}: damaged TIFF: a tile holds a {width}x{height} image of {samples} "
            f"samples where the TIFF has room for {limits[1]}x{limits[0]}"
        )
    if page.compression in JPEG:  # libjpeg would pad its lost data with gray
        tables = page.jpegtables
        if tables and tables.endswith(b"\xff\xd9") and segment.startswith(b"\xff\xd8"):
            segment = tables[:-2] + segment[2:]  # an abbreviated stream: its tables first
        jpeg.check(segment, source, components=samples, part=f" in page {page.index}")


def embedded_size(compression: int, segment: bytes) -> tuple[int, int, int] | None:
    """(height, width, samples) of the image in one strip or tile; None if unreadable.

    Examples
    --------
    >>> sof = b"\\xff\\xd8\\xff\\xc0\\x00\\x11\\x08\\x00\\x10\\x00\\x20\\x03" + bytes(9)
    >>> embedded_size(7, sof)
    (16, 32, 3)
    >>> embedded_size(7, b"not a JPEG") is None
    True
    """
    try:
        if compression in JPEG:
            return _jpeg(segment)
        if compression in JPEG2000:
            return _jpeg2000(segment)
        if compression in WEBP:
            return _webp(segment)
        if compression in PNG:
            return _png(segment)
    except (struct.error, IndexError):
        return None  # a header cut short
    return None


def _jpeg(data: bytes) -> tuple[int, int, int] | None:
    if data[:2] != b"\xff\xd8":
        return None
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker in _SOF:
            height, width, samples = struct.unpack_from(">HHB", data, position + 5)
            return height, width, samples
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header came
            return None
        (length,) = struct.unpack_from(">H", data, position + 2)
        position += 2 + length
    return None


def _jpeg2000(data: bytes) -> tuple[int, int, int] | None:
    # The codestream (bare, or inside a JP2 file's jp2c box) starts with SOC then SIZ.
    start = data.find(b"\xff\x4f\xff\x51")
    if start < 0:
        return None
    right, bottom, left, top = struct.unpack_from(">IIII", data, start + 8)
    (samples,) = struct.unpack_from(">H", data, start + 40)
    return bottom - top, right - left, samples


def _webp(data: bytes) -> tuple[int, int, int] | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    kind = data[12:16]
    if kind == b"VP8X":  # extended: 24-bit canvas size minus one
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
    elif kind == b"VP8L":  # lossless: 14-bit sizes minus one, after a signature byte
        (bits,) = struct.unpack_from("<I", data, 21)
        width, height = 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    elif kind == b"VP8 ":  # lossy: 14-bit sizes after the frame tag and start code
        width, height = (v & 0x3FFF for v in struct.unpack_from("<HH", data, 26))
    else:
        return None
    return height, width, 4


def _png(data: bytes) -> tuple[int, int, int] | None:
    found = png.header(data)
    return None if found is None else (found[1], found[0], 4)
