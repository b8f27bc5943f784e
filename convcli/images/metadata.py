"""What an image carries besides its pixels: its ICC profile and its EXIF, read with the
image and written with the result, as libvips and ImageMagick do (``--strip`` drops both).

The ICC profile says what the pixel values mean: without it, a Display P3 or Adobe RGB
photograph is shown as sRGB by every colour-managed viewer, its colours dulled or
shifted. It is written, byte for byte, into PNG (iCCP), JPEG (APP2), WebP (ICCP) and
TIFF (InterColorProfile), when it fits the result: an RGB profile for RGB(A), a gray
one for gray(+alpha); a result whose colours differ from the profile's (a gray result
of an RGB photograph, a CMYK profile of a JPEG read as RGB) gets none, as libvips does.
BMP and PNM hold no profile: a warning says so, unless the profile is sRGB (what a
viewer assumes anyway).

EXIF is written into JPEG, WebP and PNG (eXIf), patched in place: its Orientation
becomes 1 (convcli turns the pixels upright when it reads them; a viewer that turned
them again would show them sideways) and its PixelXDimension/PixelYDimension become the
result's size. TIFF output keeps the profile but not the EXIF (tifffile writes no EXIF
directory), nor do ``.npy`` arrays.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from convcli.errors import shown_name

EXIF_HEADER = b"Exif\x00\x00"  # before the TIFF structure in JPEG's APP1 (and some WebPs)
_ORIENTATION, _EXIF_IFD, _PIXEL_X, _PIXEL_Y = 0x0112, 0x8769, 0xA002, 0xA003
_SHORT, _LONG = 3, 4
ICC_FORMATS = {"PNG", "JPEG", "WEBP", "TIFF"}
EXIF_FORMATS = {"PNG", "JPEG", "WEBP"}
_NO_METADATA = {"NPY"}  # raw arrays: nothing to say about a profile left out
JPEG_MARKER_BYTES = 65533  # the most a JPEG marker segment holds after its length


@dataclass(frozen=True)
class Metadata:
    """An image's ICC profile and EXIF, as read (EXIF as its TIFF structure, without the
    ``Exif\\0\\0`` header JPEG puts before it, and with its orientation as stored)."""

    icc_profile: bytes | None = None
    exif: bytes | None = None


NONE = Metadata()


def exif_payload(raw: bytes | None) -> bytes | None:
    """EXIF bytes as found in a file -> their TIFF structure (None if that is not one).

    Examples
    --------
    >>> exif_payload(b"Exif\\x00\\x00II*\\x00\\x08\\x00\\x00\\x00"), exif_payload(b"junk")
    (b'II*\\x00\\x08\\x00\\x00\\x00', None)
    """
    if not raw:
        return None
    raw = bytes(raw)
    if raw.startswith(EXIF_HEADER):
        raw = raw[len(EXIF_HEADER) :]
    return raw if raw[:4] in (b"II*\x00", b"MM\x00*") else None


def from_pillow(im) -> Metadata:
    """The ICC profile and EXIF of Pillow's image ``im`` (its current frame, loaded)."""
    icc = im.info.get("icc_profile") or None
    raw = im.info.get("exif")
    text = im.info.get("Raw profile type exif")  # ImageMagick's PNG: hex in a text chunk
    if raw is None and isinstance(text, str):
        try:
            raw = bytes.fromhex("".join(text.split("\n")[3:]))
        except ValueError:
            raw = None
    return Metadata(bytes(icc) if icc else None, exif_payload(raw))


def profile_space(icc: bytes) -> str:
    """The colour space an ICC profile's header declares: ``RGB``, ``GRAY``, ``CMYK``, ...

    Examples
    --------
    >>> profile_space(bytes(16) + b"GRAY" + bytes(108))
    'GRAY'
    """
    return icc[16:20].decode("latin-1").strip()


def profile_description(icc: bytes) -> str | None:
    """The name an ICC profile gives itself (its ``desc`` tag: ICC v2 text or v4
    ``mluc``), or None when it has none that can be read."""
    try:
        (count,) = struct.unpack_from(">I", icc, 128)
        for index in range(min(count, 256)):
            signature, offset, size = struct.unpack_from(">4sII", icc, 132 + 12 * index)
            if signature == b"desc":
                return _description(icc[offset : offset + size])
    except struct.error:
        return None
    return None


def _description(tag: bytes) -> str | None:
    if tag[:4] == b"desc":  # textDescriptionType: a count, then ASCII
        (length,) = struct.unpack_from(">I", tag, 8)
        text = tag[12 : 12 + length].split(b"\0", 1)[0].decode("latin-1")
    elif tag[:4] == b"mluc":  # multiLocalizedUnicodeType: the first record, UTF-16BE
        length, offset = struct.unpack_from(">II", tag, 20)
        text = tag[offset : offset + length].decode("utf-16-be", "replace")
    else:
        return None
    return text.strip() or None


def is_srgb(icc: bytes) -> bool:
    """True when the profile names itself sRGB (what a viewer assumes without one)."""
    return "srgb" in (profile_description(icc) or "").lower().replace(" ", "")


def upright_exif(exif: bytes, *, width: int, height: int) -> bytes:
    """``exif`` with its Orientation set to 1 and its PixelXDimension/PixelYDimension to
    ``width`` x ``height``, patched in place (every other byte as it was: maker notes and
    offsets stay valid). Raises ValueError when the structure cannot be followed.

    Examples
    --------
    >>> tags = struct.pack("<2sHIH", b"II", 42, 8, 1) + struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0)
    >>> upright_exif(tags + bytes(4), width=4, height=3)[18:20]
    b'\\x01\\x00'
    """
    order = {b"II": "<", b"MM": ">"}.get(exif[:2])
    if order is None or struct.unpack_from(order + "H", exif, 2)[0] != 42:
        raise ValueError("not a TIFF structure")
    patched = bytearray(exif)
    values = {_ORIENTATION: 1}
    for tag, kind, position in _entries(
        patched, order, struct.unpack_from(order + "I", exif, 4)[0]
    ):
        if tag == _EXIF_IFD and kind in (_LONG, 13):
            offset = struct.unpack_from(order + "I", patched, position)[0]
            sizes = {_PIXEL_X: width, _PIXEL_Y: height}
            for inner, inner_kind, inner_position in _entries(patched, order, offset):
                _set(patched, order, inner_kind, inner_position, sizes.get(inner))
        else:
            _set(patched, order, kind, position, values.get(tag))
    return bytes(patched)


def _entries(data: bytearray, order: str, offset: int):
    """(tag, type, position of the value) of each entry of the IFD at ``offset``."""
    (count,) = struct.unpack_from(order + "H", data, offset)
    if offset + 2 + 12 * count > len(data):
        raise ValueError("an IFD past the end of the EXIF data")
    for index in range(count):
        position = offset + 2 + 12 * index
        tag, kind, number = struct.unpack_from(order + "HHI", data, position)
        if number == 1:
            yield tag, kind, position + 8


def _set(data: bytearray, order: str, kind: int, position: int, value: int | None) -> None:
    """Write one SHORT or LONG value in place (a SHORT that cannot hold it is left)."""
    if value is None:
        return
    if kind == _SHORT and value <= 0xFFFF:
        struct.pack_into(order + "H", data, position, value)
    elif kind == _LONG:
        struct.pack_into(order + "I", data, position, value)


def for_output(
    metadata: Metadata, path: str, fmt: str, *, colours: int, width: int, height: int
) -> tuple[Metadata, list[str]]:
    """What of ``metadata`` a ``fmt`` file of ``colours`` colour channels (1 gray, 3 RGB;
    alpha not counted) and that size holds, and warnings about what it cannot."""
    notes: list[str] = []
    icc, exif = metadata.icc_profile, metadata.exif
    if icc is not None:
        wanted = {1: "GRAY", 3: "RGB"}.get(colours)
        if profile_space(icc) != wanted:
            icc = None  # a profile for other colours than the result's: none, as libvips
        elif fmt not in ICC_FORMATS:
            if not is_srgb(icc) and fmt not in _NO_METADATA:
                name = profile_description(icc) or "not sRGB"
                notes.append(
                    f"{shown_name(path)}: "
                    f"{fmt} cannot hold the input's ICC profile ({name}); colour-managed "
                    f"viewers will show its colours as sRGB; write PNG, JPEG, WebP or TIFF to keep "
                    f"it"
                )
            icc = None
        elif fmt == "JPEG" and len(icc) > 255 * (JPEG_MARKER_BYTES - 14):
            notes.append(
                f"{shown_name(path)}: the input's ICC profile is too large for JPEG; not written"
            )
            icc = None
    if exif is not None and fmt in EXIF_FORMATS:
        try:
            exif = upright_exif(exif, width=width, height=height)
        except (ValueError, struct.error):
            notes.append(f"{shown_name(path)}: the input's EXIF cannot be read; not written")
            exif = None
        if exif is not None and fmt == "JPEG" and len(exif) + 6 > JPEG_MARKER_BYTES:
            notes.append(
                f"{shown_name(path)}: the input's EXIF is too large for a JPEG marker; not written"
            )
            exif = None
    else:
        exif = None
    return Metadata(icc, exif), notes


def png_profile_name(icc: bytes) -> bytes:
    """The name of a PNG iCCP chunk for ``icc``: its description in Latin-1 (1 to 79
    printable characters, single spaces), or ``ICC profile``.

    Examples
    --------
    >>> png_profile_name(b"")
    b'ICC profile'
    """
    text = " ".join((profile_description(icc) or "").split())
    name = "".join(c for c in text if 32 <= ord(c) < 127 or 161 <= ord(c) < 256)[:79].strip()
    return name.encode("latin-1") if name else b"ICC profile"
