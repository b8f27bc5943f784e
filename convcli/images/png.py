"""PNG where Pillow falls short: 16-bit colour, and writing on every core.

Pillow reads 16-bit colour PNGs as 8-bit (it keeps the high byte), cannot
write them at all, and encodes on one core. 16-bit gray+alpha, RGB and RGBA
PNGs are decoded by libpng through imagecodecs (:func:`read_png16`; 16-bit
gray by Pillow, exactly).

Every PNG convcli writes comes from :func:`write_png`, its deflate spread over
the cores, because no library at hand writes PNG as fast: a 4096x4096 RGB
photograph (astronaut.png scaled up) at level 1 on 2 shared cores took 0.35 s
here (10.2 MB), against 0.59 s for imagecodecs' libpng, 0.65 s for OpenCV,
0.75 s for Pillow and 0.84 s for libspng (10.7 MB each); under a heavier load,
0.43 s against 0.88 s for the fastest of them (``benchmarks/codecs.py``).
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

import numpy as np

from convcli.errors import ImageError
from convcli.images import codecs, png_chunks
from convcli.images.metadata import png_profile_name
from convcli.images.png_chunks import SIGNATURE, Checked

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


def write_png(
    pixels: np.ndarray,
    stream: BinaryIO,
    *,
    compress_level: int = 1,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
) -> None:
    """Write (H, W, C) uint8 or uint16 pixels (C = 1 to 4) as an 8- or 16-bit PNG, with
    an ICC profile (an iCCP chunk named by the profile's description) and EXIF (an eXIf
    chunk, its TIFF structure) before the image data, if given.

    Rows use the "Up" filter (one subtraction, vectorized), which on photographs
    compresses within a few per cent of adaptive filtering at a fraction of its
    cost. Bands of rows are filtered, deflated and check-summed on every core
    (:func:`deflate_bands`), each band an IDAT chunk; no filtered copy of the whole
    image is made.

    Examples
    --------
    >>> import io
    >>> from PIL import Image
    >>> pixels = np.arange(2 * 300 * 400 * 3, dtype=np.uint8).reshape(600, 400, 3)
    >>> stream = io.BytesIO()
    >>> write_png(pixels, stream)
    >>> np.array_equal(np.asarray(Image.open(stream)), pixels)
    True
    """
    height, width, channels = pixels.shape
    depth = 16 if pixels.dtype == np.uint16 else 8
    dtype = ">u2" if depth == 16 else np.uint8
    rows = np.ascontiguousarray(pixels, dtype).view(np.uint8).reshape(height, -1)
    ihdr = struct.pack(">IIBBBBB", width, height, depth, _COLOUR_TYPE[channels], 0, 0, 0)
    stream.write(SIGNATURE)
    stream.write(_chunk(b"IHDR", ihdr))
    if icc_profile is not None:
        name = png_profile_name(icc_profile)
        stream.write(_chunk(b"iCCP", name + b"\0\0" + zlib.compress(icc_profile)))
    if exif is not None:
        stream.write(_chunk(b"eXIf", exif))
    # Decoders read consecutive IDAT chunks as one zlib stream.
    for chunk in deflate_bands(rows, compress_level):
        stream.write(chunk)
    stream.write(_chunk(b"IEND", b""))


_PIECE = 1 << 20  # filtered bytes per band: small enough to spread, big enough to compress well
_WINDOW = 1 << 15  # deflate's window: each band starts primed with the 32 KiB before it


def deflate_bands(rows: np.ndarray, level: int) -> list[bytes]:
    """The IDAT chunks of (H, row bytes) ``rows``: Up-filtered, one zlib stream.

    Each band of rows is filtered, then deflated raw, primed with the 32 KiB of
    filtered data before it (as pigz does), so that the bands join into one stream
    that compresses almost as well as a single pass; each band also makes its own
    CRC and Adler-32. zlib releases the GIL, so the bands run in parallel threads.
    The zlib header leads the first chunk; the Adler-32 of the whole stream,
    combined from the bands', is a last chunk of its own.
    """
    from convcli.conv.engines.tiles import run_parallel

    height, pitch = rows.shape[0], rows.shape[1] + 1  # a filter-type byte leads each row
    band = max(1, _PIECE // pitch)
    primer_rows = -(-_WINDOW // pitch)
    starts = range(0, max(height, 1), band)

    def filtered(r0: int, r1: int) -> np.ndarray:
        """Rows r0:r1 Up-filtered (row 0 has nothing above it: it stays as it is)."""
        out = np.empty((r1 - r0, pitch), np.uint8)
        if r1 <= r0:
            return out
        out[:, 0] = 2
        first = max(r0, 1)
        np.subtract(rows[first:r1], rows[first - 1 : r1 - 1], out=out[first - r0 :, 1:])
        if r0 == 0:
            out[0, 1:] = rows[0]
        return out  # uint8 wraps around, as PNG wants

    def deflate(r0: int) -> tuple[bytes, int, int]:
        r1 = min(r0 + band, height)
        primer = filtered(max(0, r0 - primer_rows), r0).reshape(-1)[-_WINDOW:].tobytes()
        data = filtered(r0, r1).reshape(-1)
        body = _deflated(data, primer, level, first=r0 == 0, last=r1 >= height)
        return _chunk(b"IDAT", body), zlib.adler32(data), len(data)

    chunks, adler = [], 1
    for chunk, band_adler, length in run_parallel(deflate, starts):
        chunks.append(chunk)
        adler = adler32_combine(adler, band_adler, length)
    chunks.append(_chunk(b"IDAT", struct.pack(">I", adler)))
    return chunks


def deflate_pieces(data: np.ndarray, level: int) -> list[bytes]:
    """A zlib stream of ``data`` (1-D uint8, already filtered) in pieces, compressed on
    every core, each primed with the 32 KiB before it (see :func:`deflate_bands`).

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
        last = start + _PIECE >= len(view)
        return _deflated(view[start : start + _PIECE], primer, level, first=start == 0, last=last)

    pieces = run_parallel(piece, starts)
    pieces[-1] += struct.pack(">I", zlib.adler32(view))
    return pieces


def _deflated(data, primer: bytes, level: int, *, first: bool, last: bool) -> bytes:
    """Raw deflate of ``data`` primed with ``primer``, ended on a byte boundary (or
    finished, when ``last``), so that pieces join into one stream; the zlib header
    leads the ``first``."""
    packer = zlib.compressobj(level, zlib.DEFLATED, -15, **({"zdict": primer} if primer else {}))
    body = packer.compress(data) + packer.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
    return b"\x78\x01" + body if first else body  # deflate, 32 KiB window


def adler32_combine(first: int, second: int, length: int) -> int:
    """The Adler-32 of two pieces of data joined, from theirs and the second's length
    (zlib's adler32_combine, which Python's zlib module does not offer).

    Examples
    --------
    >>> a, b = b"convolution ", b"of images" * 1000
    >>> adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) == zlib.adler32(a + b)
    True
    """
    base = 65521
    remainder = length % base
    low = (first & 0xFFFF) + (second & 0xFFFF) + base - 1
    high = remainder * (first & 0xFFFF) + (first >> 16) + (second >> 16) + base - remainder
    return (low % base) | ((high % base) << 16)


def read_png16(png: bytes | Checked, source: str, notes: list[str] | None = None) -> np.ndarray:
    """A 16-bit PNG (its bytes, or as :func:`png_chunks.check_png` checked them) through
    libpng (imagecodecs) as (H, W, C) uint16; warnings to ``notes``.

    Every value exact, interlaced or not. libpng allocates what the header says
    (the caller checks the pixel count first) but inflates IDAT data to its end,
    however long: 1.2 s per GB of zeros that a 1 MB file can hold. So the stream
    is first inflated here up to the bytes the rows take, output dropped; data
    past them is cut off, with a warning. A colour key (tRNS), which libpng would
    turn into an alpha channel, is left to the caller (:func:`png_chunks.colour_key`),
    which does the same for every PNG.
    """
    data = png.data if isinstance(png, Checked) else png
    notes = [] if notes is None else notes
    width, height, _, colour, interlace = header(data)  # type: ignore[misc]
    if data[26:28] != b"\0\0" or not width or not height:  # compression, filter methods
        raise ImageError(f"{source}: damaged PNG header (IHDR)")
    if not isinstance(png, Checked):
        png = png_chunks.check_png(data, source)
        notes.extend(png.notes)
        data = png.data
    channels = CHANNELS[colour]
    need = png_chunks.row_bytes(width, height, 16 * channels, interlace)
    idat = png.payloads(b"IDAT")
    if png_chunks.inflates_past(idat, need, source):
        notes.append(f"{source}: PNG image data goes on past its last row; the rest is ignored")
        data = _rebuilt(data, idat, need)
    imagecodecs = codecs.imagecodecs()
    with codecs.logged() as records:
        try:
            pixels = imagecodecs.png_decode(data)
        except MemoryError:
            raise
        except Exception as err:  # imagecodecs.PngError, and whatever else libpng raises
            raise ImageError(f"{source}: damaged PNG data ({err})") from None
    notes.extend(f"{source}: {codecs.message(r)}" for r in records)
    return pixels.reshape(height, width, -1)[..., :channels]


def exif(checked: Checked) -> bytes | None:
    """The payload of a PNG's eXIf chunk, if it has one."""
    return checked.first(b"eXIf")


_PROFILE_BYTES = 1 << 24  # an ICC profile past this is no profile (Pillow's bound is 1 MiB)


def icc_profile(checked: Checked) -> bytes | None:
    """The ICC profile of a PNG's iCCP chunk, if it has one; one that cannot be
    inflated (or inflates past 16 MiB) is left out (libpng warns about a damaged one)."""
    found = checked.first(b"iCCP")
    if not found:
        return None
    _, _, compressed = found.partition(b"\0")
    inflater = zlib.decompressobj()
    try:
        profile = inflater.decompress(compressed[1:], _PROFILE_BYTES)
    except zlib.error:
        profile = b""
    return profile if profile and inflater.eof else None


def _rebuilt(data: bytes, idat: list[memoryview], need: int) -> bytes:
    """The PNG with its IDAT stream cut to the ``need`` bytes its rows take."""
    rows = zlib.decompressobj().decompress(b"".join(idat), need)
    out = [data[:33]]  # signature and IHDR
    out.extend(_chunk(b"IDAT", piece) for piece in deflate_pieces(np.frombuffer(rows, np.uint8), 0))
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)
