"""Binary PGM/PPM (P5/P6) at 8 or 16 bits, which Pillow only half handles.

Pillow writes PNM from its modes (no 16-bit RGB) and reads 16-bit P6 as
8-bit RGB: Pillow 13 gives (4, 8, 255) for the samples (1000, 2000, 65535),
256 times coarser. imagecodecs has no PNM codec, and OpenCV, which has one, is
no dependency of convcli. Netpbm stores samples above 255 as two big-endian
bytes; both ways are a few lines with NumPy.
"""

from __future__ import annotations

import re
from typing import BinaryIO

import numpy as np

from convcli.errors import ImageError

# Magic, then width, height and maxval separated by whitespace or # comments, then
# exactly one whitespace byte before the samples.
_HEADER = re.compile(rb"(P[56])((?:\s+(?:#[^\n]*\n\s*)*\d+){3})\s")


def header(data: bytes) -> tuple[str, int, int, int, int] | None:
    """(magic, width, height, maxval, data offset) of a binary PGM/PPM, or None.

    Examples
    --------
    >>> header(b"P6\\n# made by hand\\n2 1\\n65535\\n" + bytes(12))
    ('P6', 2, 1, 65535, 28)
    """
    match = _HEADER.match(data[:1024])
    if match is None:
        return None
    numbers = re.sub(rb"#[^\n]*\n", b" ", match.group(2)).split()
    width, height, maxval = (int(n) for n in numbers)
    return match.group(1).decode(), width, height, maxval, match.end()


def is_16bit_ppm(data: bytes) -> bool:
    h = header(data)
    return h is not None and h[0] == "P6" and 255 < h[3] < 65536


def read_ppm16(data: bytes, source: str) -> tuple[np.ndarray, int]:
    """A P6 file with maxval over 255 as ((H, W, 3) uint16, maxval), every bit kept."""
    _, width, height, maxval, offset = header(data)  # type: ignore[misc]
    size = width * height * 3
    if len(data) - offset < 2 * size:
        raise ImageError(f"{source}: truncated PPM: the image data ends early")
    values = np.frombuffer(data, ">u2", size, offset).reshape(height, width, 3)
    return values.astype(np.uint16), maxval


def write_pnm(pixels: np.ndarray, stream: BinaryIO) -> None:
    """Write (H, W, 1) or (H, W, 3) uint8/uint16 as P5 (gray) or P6 (RGB).

    uint16 is written with maxval 65535, as two big-endian bytes a sample.

    Examples
    --------
    >>> import io
    >>> out = io.BytesIO()
    >>> write_pnm(np.full((1, 2, 1), 258, np.uint16), out)
    >>> out.getvalue()
    b'P5\\n2 1\\n65535\\n\\x01\\x02\\x01\\x02'
    """
    height, width, channels = pixels.shape
    wide = pixels.dtype == np.uint16
    magic = "P5" if channels == 1 else "P6"
    stream.write(f"{magic}\n{width} {height}\n{65535 if wide else 255}\n".encode())
    stream.write(np.ascontiguousarray(pixels, ">u2" if wide else np.uint8).data)
