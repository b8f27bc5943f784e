"""PNG where Pillow falls short: 16-bit colour, and writing on every core.

Pillow reads 16-bit colour PNGs as 8-bit (it keeps the high byte), cannot
write them at all, and encodes on one core. convcli writes every PNG here
(8 or 16 bits; gray, gray+alpha, RGB, RGBA) with its deflate spread over the
cores, and decodes non-interlaced 16-bit gray+alpha PNGs, for which Pillow
has no exact decoder (16-bit gray, RGB and RGBA go through Pillow's own decoder,
see :mod:`convcli.images.reading`). Decoding undoes all five PNG row filters.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

import numpy as np

from convcli.errors import ImageError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 4: 2, 2: 3, 6: 4}  # PNG colour type -> channels
_COLOUR_TYPE = {v: k for k, v in CHANNELS.items()}


def header(data: bytes) -> tuple[int, int, int, int, int] | None:
    """(width, height, bit depth, colour type, interlace) of PNG bytes, or None."""
    if not data.startswith(SIGNATURE) or data[12:16] != b"IHDR" or len(data) < 29:
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return width, height, depth, colour, interlace


def is_16bit_png(data: bytes) -> bool:
    h = header(data)
    return h is not None and h[2] == 16 and h[3] in CHANNELS


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def write_png(pixels: np.ndarray, stream: BinaryIO, *, compress_level: int = 1) -> None:
    """Write (H, W, C) uint8 or uint16 pixels (C = 1 to 4) as an 8- or 16-bit PNG.

    Rows use the "Up" filter (one subtraction, vectorized), which on photographs
    compresses within a few per cent of adaptive filtering at a fraction of its
    cost; the filtered rows are deflated on every core (:func:`deflate_pieces`).
    """
    height, width, channels = pixels.shape
    depth = 16 if pixels.dtype == np.uint16 else 8
    dtype = ">u2" if depth == 16 else np.uint8
    rows = np.ascontiguousarray(pixels, dtype).view(np.uint8).reshape(height, -1)
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = 2
    filtered[:1, 1:] = rows[:1]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # uint8 wraps, as PNG wants
    ihdr = struct.pack(">IIBBBBB", width, height, depth, _COLOUR_TYPE[channels], 0, 0, 0)
    stream.write(SIGNATURE)
    stream.write(_chunk(b"IHDR", ihdr))
    # One IDAT chunk per deflated piece: chunks hold under 2**31 bytes, and decoders
    # read consecutive IDATs as one zlib stream.
    for piece in deflate_pieces(filtered.reshape(-1), compress_level):
        stream.write(_chunk(b"IDAT", piece))
    stream.write(_chunk(b"IEND", b""))


_PIECE = 1 << 20  # bytes per deflate piece: small enough to spread, big enough to compress well
_WINDOW = 1 << 15  # deflate's window: each piece starts primed with the 32 KiB before it


def deflate_pieces(data: np.ndarray, level: int) -> list[bytes]:
    """A zlib stream of ``data`` (1-D uint8) in pieces, compressed on every core.

    Each piece is raw deflate primed with the 32 KiB before it (as pigz does),
    so the pieces join into one stream that compresses almost as well as a
    single pass; the zlib header and the Adler-32 of the whole wrap them.
    zlib releases the GIL, so the pieces run in parallel threads.

    Examples
    --------
    >>> payload = np.frombuffer(b"convolution " * 200_000, np.uint8)
    >>> zlib.decompress(b"".join(deflate_pieces(payload, 1))) == payload.tobytes()
    True
    """
    from convcli.conv.engines.tiles import run_parallel

    view = memoryview(data)
    starts = range(0, max(len(view), 1), _PIECE)

    def piece(start: int) -> bytes:
        primer = view[max(0, start - _WINDOW) : start].tobytes()
        packer = zlib.compressobj(
            level, zlib.DEFLATED, -15, **({"zdict": primer} if primer else {})
        )
        last = start + _PIECE >= len(view)
        body = packer.compress(view[start : start + _PIECE])
        return body + packer.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)

    pieces = run_parallel(piece, starts)
    pieces[0] = b"\x78\x01" + pieces[0]  # zlib header: deflate, 32 KiB window
    pieces[-1] += struct.pack(">I", zlib.adler32(view))
    return pieces


def read_png16(data: bytes, source: str) -> np.ndarray:
    """Decode a 16-bit PNG to (H, W, C) uint16."""
    width, height, depth, colour, interlace = header(data)  # type: ignore[misc]
    if interlace:
        raise ImageError(
            f"{source}: interlaced 16-bit PNGs are not supported; save it non-interlaced"
        )
    if data[26:28] != b"\0\0" or not width or not height:  # compression, filter methods
        raise ImageError(f"{source}: damaged PNG header (IHDR)")
    channels = CHANNELS[colour]
    idat = _image_data(data, source)
    bpp = channels * 2
    stride = width * bpp
    try:
        # Never more than the header's rows: a small file can inflate to gigabytes.
        raw = zlib.decompressobj().decompress(idat, height * (stride + 1))
        raw = np.frombuffer(raw, np.uint8)
    except zlib.error as err:
        raise ImageError(f"{source}: damaged PNG data ({err})") from None
    if raw.size < height * (stride + 1):
        raise ImageError(f"{source}: truncated PNG: the image data ends early")
    raw = raw[: height * (stride + 1)].reshape(height, stride + 1)
    out = np.zeros((height, stride), np.uint8)
    previous = np.zeros(stride, np.uint8)
    for r in range(height):
        kind, line = raw[r, 0], raw[r, 1:]
        out[r] = _unfilter(kind, line, previous, bpp, source)
        previous = out[r]
    return out.view(">u2").reshape(height, width, channels).astype(np.uint16)


def _image_data(data: bytes, source: str) -> bytes:
    """The IDAT chunks' data, joined; every chunk up to IEND must be whole and pass its
    CRC, as Pillow (and libpng) require of the PNGs they read."""
    idat = bytearray()
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, end = data[pos + 4 : pos + 8], pos + 12 + length
        if end > len(data):
            break
        payload = data[pos + 8 : end - 4]
        if zlib.crc32(kind + payload) & 0xFFFFFFFF != struct.unpack(">I", data[end - 4 : end])[0]:
            name = kind.decode("latin-1")
            raise ImageError(f"{source}: damaged PNG data (the {name!r} chunk fails its CRC)")
        if kind == b"IDAT":
            idat += payload
        elif kind == b"IEND":
            return bytes(idat)
        pos = end
    raise ImageError(f"{source}: truncated PNG: it ends before its IEND chunk")


def _unfilter(kind: int, line: np.ndarray, up: np.ndarray, bpp: int, source: str) -> np.ndarray:
    if kind == 0:
        return line
    if kind == 2:
        return line + up
    if kind == 1:  # Sub: a running sum per byte lane, wrapping at 256
        lanes = line.reshape(-1, bpp)
        return np.cumsum(lanes, axis=0, dtype=np.uint8).reshape(-1)
    if kind not in (3, 4):
        raise ImageError(f"{source}: damaged PNG data (row filter {kind})")
    # Average and Paeth depend on the pixel just decoded: a short loop over pixels.
    x = bytearray(line.tobytes())
    b = up.tobytes()
    for i in range(len(x)):
        a = x[i - bpp] if i >= bpp else 0
        if kind == 3:
            x[i] = (x[i] + ((a + b[i]) >> 1)) & 0xFF
        else:
            c = b[i - bpp] if i >= bpp else 0
            p = a + b[i] - c
            pa, pb, pc = abs(p - a), abs(p - b[i]), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b[i] if pb <= pc else c)
            x[i] = (x[i] + pred) & 0xFF
    return np.frombuffer(bytes(x), np.uint8)
