"""PNG files checked chunk by chunk before a decoder sees them.

Decoders differ in what they let through: Pillow checks no IDAT CRC, ignores a critical
chunk it does not know, and zero-fills the rows of an image whose zlib stream ends
before its last row (its decoder stops where the stream does and reports nothing), as
it keeps the previous frame's pixels for an APNG frame whose ``fdAT`` data is short.
libpng and libspng refuse all of these. So every PNG convcli reads goes through
:func:`check_png` first (each chunk whole, its CRC right, every critical chunk known),
and a PNG that Pillow decodes through :func:`check_image_data` (each frame's stream
holds every row of that frame). A damaged ancillary chunk (text, a time stamp) is
dropped with a warning, as libpng does by default; a damaged critical one fails the
input.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from convcli.errors import ImageError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CRITICAL = {b"IHDR", b"PLTE", b"IDAT", b"IEND"}
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
_PIECE = 1 << 20  # inflated bytes asked for at a time: memory stays flat


@dataclass
class Checked:
    """A PNG's chunks, in order up to IEND, and the file as decoders should see it."""

    data: bytes  # without the ancillary chunks that failed their CRC
    chunks: list[tuple[bytes, memoryview]]  # (type, payload)
    notes: list[str] = field(default_factory=list)

    def payloads(self, kind: bytes) -> list[memoryview]:
        return [payload for found, payload in self.chunks if found == kind]

    def first(self, kind: bytes) -> bytes | None:
        found = self.payloads(kind)
        return bytes(found[0]) if found else None


def check_png(data: bytes, source: str) -> Checked:
    """Every chunk of PNG ``data`` up to IEND whole, its CRC right and, if critical,
    known: else an :class:`ImageError`. An ancillary chunk (lower-case first letter)
    that fails its CRC is left out of :attr:`Checked.data`, with a warning.

    Examples
    --------
    >>> def chunk(kind, payload=b""):
    ...     crc = zlib.crc32(kind + payload)
    ...     return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)
    >>> ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    >>> body = ihdr + chunk(b"IDAT", zlib.compress(b"\\0\\0")) + chunk(b"IEND")
    >>> [kind for kind, _ in check_png(SIGNATURE + body, "a.png").chunks]
    [b'IHDR', b'IDAT', b'IEND']
    >>> check_png(SIGNATURE + ihdr + chunk(b"ABCD") + body[25:], "a.png")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    convcli.errors.ImageError: a.png: its PNG chunk 'ABCD' is critical ...
    """
    view = memoryview(data)
    chunks: list[tuple[bytes, memoryview]] = []
    notes: list[str] = []
    dropped: list[tuple[int, int]] = []
    position = len(SIGNATURE)
    while position + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        end = position + 12 + length
        if end > len(data):
            break
        name = kind.decode("latin-1")
        if not kind.isalpha() or not kind.isascii():
            raise ImageError(f"{source}: damaged PNG data (a chunk of type {name!r})")
        payload = view[position + 8 : end - 4]
        ancillary = kind[0] & 0x20
        if zlib.crc32(payload, zlib.crc32(kind)) != struct.unpack_from(">I", data, end - 4)[0]:
            if not ancillary:
                raise ImageError(f"{source}: damaged PNG data (the {name!r} chunk fails its CRC)")
            notes.append(f"{source}: the PNG's {name!r} chunk fails its CRC; left out")
            dropped.append((position, end))
        else:
            if not ancillary and kind not in _CRITICAL:
                raise ImageError(
                    f"{source}: its PNG chunk {name!r} is critical (upper-case first letter) "
                    f"but unknown: the image cannot be read without it, so the PNG "
                    f"specification requires decoders to refuse the file"
                )
            chunks.append((kind, payload))
        if kind == b"IEND":
            if dropped:
                data = _without(data, dropped)
            return Checked(data, chunks, notes)
        position = end
    raise ImageError(f"{source}: truncated PNG: it ends before its IEND chunk")


def _without(data: bytes, spans: list[tuple[int, int]]) -> bytes:
    pieces, start = [], 0
    for begin, end in spans:
        pieces.append(data[start:begin])
        start = end
    pieces.append(data[start:])
    return b"".join(pieces)


def header(checked: Checked) -> tuple[int, int, int, int, int]:
    """(width, height, bit depth, colour type, interlace) of its IHDR chunk."""
    ihdr = checked.first(b"IHDR")
    if ihdr is None or len(ihdr) != 13 or checked.chunks[0][0] != b"IHDR":
        raise ImageError("damaged PNG header (IHDR)")
    return struct.unpack(">IIBBBBB", ihdr)[:3] + (ihdr[9], ihdr[12])  # type: ignore[return-value]


# Adam7: (first column, first row, column step, row step) of each pass
_PASSES = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


def row_bytes(width: int, height: int, pixel_bits: int, interlace: int) -> int:
    """Bytes of filtered rows (a filter byte each) that ``width`` x ``height`` pixels of
    ``pixel_bits`` bits take, interlaced (Adam7) or not.

    Examples
    --------
    >>> row_bytes(3, 2, 48, 0), row_bytes(1, 1, 48, 1), row_bytes(9, 1, 1, 0)
    (38, 7, 3)
    """
    passes = _PASSES if interlace else ((0, 0, 1, 1),)
    total = 0
    for left, top, dx, dy in passes:
        columns, rows = -(-(width - left) // dx), -(-(height - top) // dy)
        if columns > 0 and rows > 0:
            total += rows * (1 + -(-columns * pixel_bits // 8))
    return total


def inflates_past(stream: list[memoryview], need: int, source: str, *, part: str = "") -> bool:
    """Whether a zlib ``stream`` (its pieces) holds more than ``need`` bytes, inflating
    no further than that; an ImageError when it is damaged or holds fewer (``part``
    names the frame whose stream it is, after ``source``)."""
    inflater = zlib.decompressobj()
    produced = 0
    try:
        for piece in stream:
            while piece and not inflater.eof:
                produced += len(inflater.decompress(piece, _PIECE))
                if produced > need:
                    return True
                piece = inflater.unconsumed_tail
    except zlib.error as err:
        raise ImageError(f"{source}: damaged or truncated PNG data{part} ({err})") from None
    if produced < need:
        raise ImageError(
            f"{source}: damaged or truncated PNG data{part} (its image data ends after "
            f"{produced:,} of the {need:,} bytes its rows take)"
        )
    return False


def check_image_data(checked: Checked, source: str) -> None:
    """Every frame's zlib stream holds all its rows: the IDAT data the header's size,
    each APNG frame's ``fdAT`` data (sequence numbers left out) its ``fcTL`` size. An
    ImageError when one ends early (Pillow would leave the rest zeros, or the previous
    frame's pixels); data past the last row, which decoders ignore, is a warning."""
    width, height, depth, colour, interlace = header(checked)
    bits = _CHANNELS.get(colour, 1) * depth
    streams: list[tuple[str, int, int, list[memoryview]]] = []
    frames = 0
    for kind, payload in checked.chunks:
        if kind == b"fcTL" and len(payload) >= 12:
            streams.append((f"frame {frames}", *struct.unpack_from(">II", payload, 4), []))
            frames += 1
        elif kind == b"IDAT":
            if not streams or (streams[-1][0].startswith("frame") and streams[-1][3]):
                streams.append(("the image", width, height, []))  # not an animation frame
            elif not streams[-1][3]:  # frame 0 is the image: decoded at the header's size
                streams[-1] = (streams[-1][0], width, height, streams[-1][3])
            streams[-1][3].append(payload)
        elif kind == b"fdAT" and streams:
            streams[-1][3].append(payload[4:])
    for name, frame_width, frame_height, pieces in streams:
        need = row_bytes(frame_width, frame_height, bits, interlace)
        part = "" if name == "the image" else f" in {name}"
        if inflates_past(pieces, need, source, part=part):
            checked.notes.append(
                f"{source}: PNG image data{part} goes on past its last row; the rest is ignored"
            )


def colour_key(checked: Checked) -> tuple[int, ...] | None:
    """The tRNS colour key of a gray or RGB PNG, in the values its decoders give: 8-bit
    gray of fewer bits scaled to 0..255 (a 2-bit 1 is 85), 16-bit as it is; None when
    there is none (or it is not one: a palette's tRNS is its alpha table)."""
    key = checked.first(b"tRNS")
    _, _, depth, colour, _ = header(checked)
    if key is None or colour not in (0, 2) or len(key) != 2 * _CHANNELS[colour]:
        return None
    values = struct.unpack(f">{_CHANNELS[colour]}H", key)
    top = (1 << depth) - 1
    if any(value > top for value in values):
        return None  # no sample can equal it (libpng warns and ignores it)
    scale = 255 // top if depth < 8 else 1
    return tuple(value * scale for value in values)
