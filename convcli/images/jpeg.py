"""JPEG data decoded strictly: what libjpeg calls corrupt fails the input.

libjpeg (libjpeg-turbo) does not stop at damaged data: it warns ("Corrupt JPEG data:
premature end of data segment") and fills what is missing with flat gray, and neither
Pillow nor imagecodecs passes its warnings on, so a JPEG cut short with its end marker
put back decoded without a word (ImageMagick and libvips warn). simplejpeg drives the
same libjpeg-turbo through its TurboJPEG API, which stops at the first warning: here
the warnings that mean lost pixels are errors, and those that do not (bytes between
segments, an unknown JFIF version) are the user's warnings, the pixels decoded anyway.

:func:`decode` is the fast decoder of gray and RGB JPEG files (the same pixels as
Pillow's, tested); :func:`check` looks at JPEG data that another decoder will read
(CMYK files and MPO pictures for Pillow, the strips and tiles of a JPEG-compressed
TIFF for tifffile), decoding it at an eighth of its size, which still runs through all
of its coded data (40 % of the time of a whole decode).
"""

from __future__ import annotations

import numpy as np

from convcli.errors import ImageError

# libjpeg's warnings (jerror.h, JWRN_*) that mean pixels are missing or wrong.
_DAMAGE = (
    "premature end of data segment",  # JWRN_HIT_MARKER: the data stops mid-scan
    "Premature end of JPEG file",  # JWRN_JPEG_EOF: the file stops
    "bad Huffman code",
    "bad arithmetic code",
    "instead of RST",  # JWRN_MUST_RESYNC: a restart marker lost
    "Inconsistent progression sequence",
)

# Those that leave every pixel decoded.
_HARMLESS = (
    "extraneous bytes before marker",  # JWRN_EXTRANEOUS_DATA: bytes between segments
    "unknown JFIF revision",
    "Invalid SOS parameters for sequential JPEG",
    "Unknown Adobe color transform",
)


def _simplejpeg():
    import simplejpeg

    return simplejpeg


def _damage(err: ValueError) -> bool:
    return any(text in str(err) for text in _DAMAGE)


def _harmless(err: ValueError) -> bool:
    return any(text in str(err) for text in _HARMLESS)


def decode(data: bytes, *, gray: bool, source: str, notes: list[str]) -> np.ndarray | None:
    """(H, W) or (H, W, 3) uint8 pixels of a gray or RGB JPEG; an :class:`ImageError`
    when libjpeg finds damage, a warning in ``notes`` for a harmless oddity, and None
    when the file is not one this decoder reads (the caller's decoder then words it)."""
    simplejpeg = _simplejpeg()
    colours = "GRAY" if gray else "RGB"
    try:
        pixels = simplejpeg.decode_jpeg(data, colorspace=colours, strict=True)
    except ValueError as err:
        if _damage(err):
            raise ImageError(f"{source}: damaged JPEG data ({err})") from None
        if not _harmless(err):  # an error of libjpeg's, not a warning: Pillow words it
            return None
        try:  # a warning that leaves the pixels whole: decode past it
            pixels = simplejpeg.decode_jpeg(data, colorspace=colours, strict=False)
        except ValueError:
            return None
        notes.append(f"{source}: JPEG: {err}; decoded anyway")
    return pixels[..., 0] if gray else pixels


def check(data: bytes, source: str, *, components: int, part: str = "") -> str | None:
    """Run through JPEG ``data`` of ``components`` colour components as libjpeg would:
    an :class:`ImageError` when it finds damage, the warning when it finds a harmless
    oddity, None otherwise (and when it cannot read the data at all: its decoder will
    say why). ``part`` says where in ``source`` the data is (" in picture 1")."""
    if components not in (1, 3, 4):
        return None
    try:
        _simplejpeg().decode_jpeg(
            data,
            colorspace="CMYK" if components == 4 else "GRAY",
            min_factor=8,
            min_height=1,
            min_width=1,
            strict=True,
        )
    except ValueError as err:
        if _damage(err):
            raise ImageError(f"{source}: damaged JPEG data{part} ({err})") from None
        return f"{source}: JPEG{part}: {err}" if _harmless(err) else None
    return None
