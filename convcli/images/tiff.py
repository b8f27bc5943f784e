"""TIFF where Pillow falls short: 16-bit colour, any channel count, exact reads.

Pillow reads 16-bit RGB/RGBA TIFFs as 8-bit (it keeps the high byte) and
writes TIFF only in the modes it has (gray, gray+alpha, RGB, RGBA at 8 bits,
gray at 16). This module writes baseline TIFFs of any channel count at 8 or 16
bits (:func:`write_tiff`), reads exactly the layouts it writes and plain
uncompressed or deflate chunky strips generally (:func:`read_tiff`), and says
which 16-bit TIFFs need Pillow's decoder run once per byte (:func:`rawmodes16`).
"""

from __future__ import annotations

import struct
import sys
import zlib
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from convcli.errors import ImageError, OutputError

_STRIP_BYTES = 1 << 18  # uncompressed bytes per strip: many strips to deflate in parallel
_SHORT, _LONG, _RATIONAL = 3, 4, 5
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8}
_MAX_PAGES = 65536


def photometric(channels: int) -> tuple[int, list[int]]:
    """(PhotometricInterpretation, ExtraSamples) for ``channels`` chunky samples.

    3 and 4 channels are RGB and RGBA (ExtraSamples 2: unassociated alpha);
    1 and 2 gray and gray+alpha. Other counts are feature maps, not colours:
    gray with the further samples unspecified (ExtraSamples 0).

    Examples
    --------
    >>> photometric(4), photometric(2), photometric(5)
    ((2, [2]), (1, [2]), (1, [0, 0, 0, 0]))
    """
    if channels in (3, 4):
        return 2, [2] * (channels - 3)
    if channels == 2:
        return 1, [2]
    return 1, [0] * (channels - 1)


def write_tiff(frames: np.ndarray, stream: BinaryIO, *, compress_level: int = 1) -> None:
    """Write (N, H, W, C) uint8 or uint16 frames as an N-page little-endian TIFF.

    Each page is one IFD (written before its strips, so the stream need not
    seek): chunky samples, BitsPerSample 8 or 16, strips of about 256 KiB.
    ``compress_level`` 1 to 9 is deflate (Compression 8) after the horizontal
    differencing predictor, with the strips compressed on every core; 0 writes
    them uncompressed. Classic TIFF offsets are 32-bit: files stop at 4 GiB.

    Examples
    --------
    >>> import io
    >>> out = io.BytesIO()
    >>> write_tiff(np.zeros((2, 3, 4, 5), np.uint16), out)
    >>> out.getvalue()[:4]
    b'II*\\x00'
    """
    n, height, width, channels = frames.shape
    bits = 16 if frames.dtype == np.uint16 else 8
    kind, extra = photometric(channels)
    row_bytes = width * channels * bits // 8
    rows_per_strip = max(1, min(height, _STRIP_BYTES // max(row_bytes, 1)))
    stream.write(b"II*\x00" + struct.pack("<I", 8))
    position = 8
    for index in range(n):
        strips = _encode_strips(frames[index], rows_per_strip, compress_level)
        counts = [len(s) for s in strips]
        tags = [
            (256, _LONG, [width]),
            (257, _LONG, [height]),
            (258, _SHORT, [bits] * channels),
            (259, _SHORT, [8 if compress_level else 1]),
            (262, _SHORT, [kind]),
            (273, _LONG, [0] * len(strips)),  # filled in below, once the IFD's size is known
            (277, _SHORT, [channels]),
            (278, _LONG, [rows_per_strip]),
            (279, _LONG, counts),
            (282, _RATIONAL, [1, 1]),
            (283, _RATIONAL, [1, 1]),
            (284, _SHORT, [1]),
            (296, _SHORT, [1]),  # resolution unit: none (the pixels' size is unknown)
        ]
        if compress_level:
            tags.append((317, _SHORT, [2]))
        if extra:
            tags.append((338, _SHORT, extra))
        tags.append((339, _SHORT, [1] * channels))
        size = _ifd_size(tags)
        offsets = np.cumsum([position + size, *counts[:-1]]).tolist()
        tags[5] = (273, _LONG, offsets)
        end = position + size + sum(counts)
        if end >= 1 << 32:
            raise OutputError("TIFF files stop at 4 GiB; write a result this big as .npy")
        stream.write(_ifd(tags, position, end if index + 1 < n else 0))
        for strip in strips:
            stream.write(strip)
        position = end


def _encode_strips(frame: np.ndarray, rows: int, level: int) -> list[bytes]:
    from convcli.conv.engines.tiles import run_parallel

    data = frame.astype(frame.dtype.newbyteorder("<"), copy=False)
    if level:
        # Predictor 2: each sample minus its left neighbour, per channel, wrapping.
        diffed = np.empty_like(data)
        diffed[:, :1] = data[:, :1]
        np.subtract(data[:, 1:], data[:, :-1], out=diffed[:, 1:])
        data = diffed

    def strip(top: int) -> bytes:
        raw = np.ascontiguousarray(data[top : top + rows]).data
        return zlib.compress(raw, level) if level else bytes(raw)

    return run_parallel(strip, range(0, frame.shape[0], rows))


def _ifd_size(tags: list) -> int:
    body = 2 + 12 * len(tags) + 4
    for _, kind, values in tags:
        length = _TYPE_SIZES[kind] * len(values) // (2 if kind == _RATIONAL else 1)
        if length > 4:
            body += length + (length & 1)
    return body


def _ifd(tags: list, position: int, next_ifd: int) -> bytes:
    """One IFD at ``position``: entries, the next IFD's offset, then values over 4 bytes."""
    entries = [struct.pack("<H", len(tags))]
    spill = bytearray()
    spill_at = position + 2 + 12 * len(tags) + 4
    for tag, kind, values in tags:
        code = {_SHORT: "H", _LONG: "I", _RATIONAL: "I"}[kind]
        payload = struct.pack(f"<{len(values)}{code}", *values)
        count = len(values) // 2 if kind == _RATIONAL else len(values)
        if len(payload) <= 4:
            field = payload.ljust(4, b"\x00")
        else:
            field = struct.pack("<I", spill_at + len(spill))
            spill += payload + b"\x00" * (len(payload) & 1)  # values start on word boundaries
        entries.append(struct.pack("<HHI", tag, kind, count) + field)
    entries.append(struct.pack("<I", next_ifd))
    return b"".join(entries) + bytes(spill)


# Reading ----------------------------------------------------------------------------------


@dataclass
class Page:
    """What one IFD says about its pixels (only what :func:`read_tiff` needs)."""

    width: int
    height: int
    channels: int
    bits: int
    compression: int
    predictor: int
    rows_per_strip: int
    offsets: list[int]
    counts: list[int]
    extra: list[int]
    simple: bool  # a layout read_tiff decodes (else Pillow's job)


def is_tiff(data: bytes) -> bool:
    return data[:4] in (b"II*\x00", b"MM\x00*")


def pages(data: bytes, source: str) -> list[Page]:
    """Every IFD of TIFF ``data``, in order; a damaged structure is an ImageError."""
    order = "<" if data[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack_from(f"{order}I", data, 4)
        found: list[Page] = []
        seen: set[int] = set()
        while offset and len(found) < _MAX_PAGES:
            if offset in seen:
                raise ImageError(f"{source}: damaged TIFF: its pages form a loop")
            seen.add(offset)
            tags, offset = _read_ifd(data, offset, order)
            found.append(_page(tags))
    except (struct.error, ValueError, KeyError, IndexError) as err:
        raise ImageError(f"{source}: damaged TIFF structure ({err})") from None
    if not found:
        raise ImageError(f"{source}: damaged TIFF: no pages")
    return found


def _read_ifd(data: bytes, offset: int, order: str) -> tuple[dict[int, list[int]], int]:
    (count,) = struct.unpack_from(f"{order}H", data, offset)
    tags: dict[int, list[int]] = {}
    for i in range(count):
        tag, kind, n = struct.unpack_from(f"{order}HHI", data, offset + 2 + 12 * i)
        if kind not in (_SHORT, _LONG, 1) or n > 1 << 20:
            continue  # text, rationals and the like: nothing read_tiff needs
        size = _TYPE_SIZES[kind] * n
        at = offset + 2 + 12 * i + 8
        if size > 4:
            (at,) = struct.unpack_from(f"{order}I", data, at)
        if at + size > len(data):
            raise ValueError(f"tag {tag} points past the end of the file")
        code = {1: "B", _SHORT: "H", _LONG: "I"}[kind]
        tags[tag] = list(struct.unpack_from(f"{order}{n}{code}", data, at))
    (next_ifd,) = struct.unpack_from(f"{order}I", data, offset + 2 + 12 * count)
    return tags, next_ifd


def _page(tags: dict[int, list[int]]) -> Page:
    channels = tags.get(277, [1])[0]
    bits = tags.get(258, [1])
    extra = tags.get(338, [])
    kind = tags.get(262, [-1])[0]
    simple = (
        len(set(bits)) == 1
        and bits[0] in (8, 16)
        and len(bits) == channels
        and tags.get(259, [1])[0] in (1, 8, 32946)
        and tags.get(317, [1])[0] in (1, 2)
        and tags.get(284, [1])[0] == 1
        and set(tags.get(339, [1])) == {1}
        and tags.get(274, [1])[0] == 1
        and 322 not in tags  # tiled
        and 1 not in extra  # associated (premultiplied) alpha
        and ((kind == 1 and channels >= 1) or (kind == 2 and channels >= 3))
        and len(tags.get(273, [])) == len(tags.get(279, [])) > 0
    )
    return Page(
        tags[256][0],
        tags[257][0],
        channels,
        max(bits),
        tags.get(259, [1])[0],
        tags.get(317, [1])[0],
        tags.get(278, [2**32 - 1])[0],
        tags.get(273, []),
        tags.get(279, []),
        extra,
        simple,
    )


def pages_or_none(data: bytes, source: str) -> list[Page] | None:
    """The pages of TIFF ``data``; None for other formats and unparsable TIFFs."""
    if not is_tiff(data):
        return None
    try:
        return pages(data, source)
    except ImageError:
        return None  # Pillow then names what is wrong


def pillow_reads(page: Page) -> bool:
    """Whether Pillow opens this page's layout at all (a guess, from its mode table)."""
    return page.channels <= 4 and not (page.bits == 16 and page.channels == 2)


def why_unreadable(found: list[Page]) -> str:
    """Why :func:`read_tiff` (after Pillow) cannot read these pages, for the user."""
    page = next(p for p in found if not p.simple)
    return (
        f"a TIFF layout convcli cannot read ({page.channels} samples of {page.bits} bits, "
        f"compression {page.compression}); convcli reads what Pillow reads, and chunky 8- or "
        f"16-bit strips, uncompressed or deflate"
    )


def read_tiff(data: bytes, source: str, found: list[Page] | None = None) -> np.ndarray:
    """Decode TIFF ``data`` whose pages are all simple: (N, H, W, C) uint8 or uint16.

    Simple means chunky strips of 8- or 16-bit unsigned samples, uncompressed or
    deflate, with or without the horizontal predictor: what :func:`write_tiff`
    writes, and what most tools write when asked for deflate.
    """
    found = found if found is not None else pages(data, source)
    order = "<" if data[:2] == b"II" else ">"
    frames = []
    for page in found:
        dtype = np.dtype(f"{order}u{page.bits // 8}")
        row = page.width * page.channels * dtype.itemsize
        rows = min(page.rows_per_strip, page.height) or 1
        pieces = []
        for index, (offset, count) in enumerate(zip(page.offsets, page.counts, strict=True)):
            want = row * min(rows, page.height - index * rows)
            if want <= 0:
                break
            raw = data[offset : offset + count]
            if page.compression != 1:
                try:
                    unpacker = zlib.decompressobj()
                    raw = unpacker.decompress(raw, want)  # never more than the strip holds
                except zlib.error as err:
                    raise ImageError(f"{source}: damaged TIFF deflate data ({err})") from None
            if len(raw) < want:
                raise ImageError(f"{source}: truncated TIFF: a strip ends early")
            pieces.append(raw[:want])
        pixels = np.frombuffer(b"".join(pieces), dtype)
        if pixels.size != page.height * page.width * page.channels:
            raise ImageError(f"{source}: truncated TIFF: the strips hold too few rows")
        pixels = pixels.reshape(page.height, page.width, page.channels).astype(
            dtype.newbyteorder("=")
        )
        if page.predictor == 2:
            np.cumsum(pixels, axis=1, dtype=pixels.dtype, out=pixels)  # unsigned: wraps back
        frames.append(pixels)
    if len({f.shape for f in frames}) > 1:
        raise ImageError(f"{source}: its frames differ in size or channels; split them first")
    return np.stack(frames)


def rawmodes16(rawmode: str) -> tuple[str, str] | None:
    """(high-byte, low-byte) rawmodes for a 16-bit Pillow tile rawmode, else None.

    Pillow's unpackers ``RGB;16B`` / ``RGB;16L`` keep the high byte of a big- /
    little-endian sample. The tile's own rawmode (``N``: the machine's order,
    which is how libtiff hands samples over) keeps the high byte; the same mode
    of the other byte order keeps the low one. Decoding once with each gives
    both bytes of every sample.

    Examples
    --------
    >>> rawmodes16("RGB;16B"), rawmodes16("L")
    (('RGB;16B', 'RGB;16L'), None)
    """
    base, _, suffix = rawmode.partition(";16")
    if not _ or suffix not in ("B", "L", "N"):
        return None
    native = {"little": "L", "big": "B"}[sys.byteorder]
    high = native if suffix == "N" else suffix
    return f"{base};16{high}", f"{base};16{'L' if high == 'B' else 'B'}"
