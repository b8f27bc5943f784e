"""PGM/PPM past 8 bits, which Pillow only half handles, and PGM/PPM out at 8 or 16 bits.

Pillow writes PNM from its modes (no 16-bit RGB) and reads 16-bit P6 as
8-bit RGB: Pillow 13 gives (4, 8, 255) for the samples (1000, 2000, 65535),
256 times coarser; a plain (ASCII) P3 with maxval 1023 as 8-bit RGB too; and a
P2 or P5 with maxval 1000 scaled to 65535 and rounded (500 became 32768, not half).
imagecodecs has no PNM codec, and OpenCV, which has one, is no dependency of
convcli. Netpbm stores samples above 255 as two big-endian bytes (binary P5/P6) or
as decimal numbers (plain P2/P3); both ways are a few lines with NumPy, and every
sample is divided by the file's own maxval.
"""

from __future__ import annotations

import re
from typing import BinaryIO

import numpy as np

from convcli.errors import ImageError

# Magic, then width, height and maxval separated by whitespace or # comments, then
# exactly one whitespace byte before the samples.
_HEADER = re.compile(rb"(P[2356])((?:\s+(?:#[^\n]*\n\s*)*\d+){3})\s")
_PLAIN_BLOCK = 1 << 24  # bytes of plain samples parsed at a time


def header(data: bytes) -> tuple[str, int, int, int, int] | None:
    """(magic, width, height, maxval, data offset) of a gray or colour PGM/PPM
    (P2, P3, P5, P6), or None.

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


def is_wide_pnm(data: bytes) -> bool:
    """A PGM/PPM with maxval over 255, which :func:`read_pnm` reads (not Pillow)."""
    h = header(data)
    return h is not None and h[3] > 255


def read_pnm(data: bytes, source: str) -> tuple[np.ndarray, int]:
    """A P2, P3, P5 or P6 file as ((H, W, C) uint16, maxval), every bit kept: divide
    by maxval for [0, 1]. An :class:`ImageError` for a maxval past 65535, data that
    ends early, a sample above maxval or, in a plain file, anything but numbers."""
    magic, width, height, maxval, offset = header(data)  # type: ignore[misc]
    if not 0 < maxval < 65536:
        raise ImageError(f"{source}: PGM/PPM maxval {maxval}; Netpbm allows 1 to 65535")
    channels = 3 if magic in ("P3", "P6") else 1
    size = width * height * channels
    if magic in ("P5", "P6"):
        wide = maxval > 255
        if len(data) - offset < size * (2 if wide else 1):
            raise ImageError(f"{source}: truncated PGM/PPM: the image data ends early")
        values = np.frombuffer(data, ">u2" if wide else np.uint8, size, offset)
    else:
        values = _plain_samples(data, offset - 1, size, source)
    top = int(values.max(initial=0))
    if top > maxval:
        raise ImageError(f"{source}: a sample is {top}, above its maxval {maxval}")
    return values.astype(np.uint16).reshape(height, width, channels), maxval


def _plain_samples(data: bytes, offset: int, size: int, source: str) -> np.ndarray:
    """The first ``size`` decimal samples after ``offset``, parsed a block at a time (a
    list of every token would take tens of bytes a sample)."""
    out = np.empty(size, np.int64)
    done, position = 0, offset
    while done < size and position < len(data):
        end = min(len(data), position + _PLAIN_BLOCK)
        while end < len(data) and not data[end : end + 1].isspace():
            end += 1  # a block ends between numbers
        block = re.sub(rb"#[^\n]*", b" ", data[position:end])
        if not re.fullmatch(rb"[0-9\s]*", block):
            bad = re.search(rb"[^0-9\s]+", block).group()[:16]  # type: ignore[union-attr]
            raise ImageError(f"{source}: plain PGM/PPM sample {bad!r} is not a number")
        numbers = np.fromstring(block, dtype=np.int64, sep=" ") if block.strip() else []
        taken = min(len(numbers), size - done)
        out[done : done + taken] = numbers[:taken]
        done, position = done + taken, end
    if done < size:
        raise ImageError(f"{source}: truncated PGM/PPM: the image data ends early")
    return out


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
