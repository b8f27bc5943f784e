"""TIFF files for the tests, and the readers that are not convcli's: libtiff's tools,
OpenCV (libtiff), ImageMagick, libvips, and TIFFs built here from the spec alone."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from convcli.images.reading import read_image
from convcli.images.writing import to_integers

TIFFINFO = shutil.which("tiffinfo")
TIFFCP = shutil.which("tiffcp")
SHORT, LONG = 3, 4


def opencv():
    return pytest.importorskip("cv2")


def random_values(shape, dtype=np.uint16, seed=0):
    return np.random.default_rng(seed).integers(0, np.iinfo(dtype).max + 1, shape, dtype)


def read_exact(path) -> np.ndarray:
    """convcli's reading as (N, H, W, C) integers of the file's depth."""
    img = read_image(str(path))
    return to_integers(img.pixels, img.depth).transpose(0, 2, 3, 1)


def opencv_rgb(array: np.ndarray) -> np.ndarray:
    """OpenCV's BGR(A) as RGB(A); gray stays (H, W, 1)."""
    if array.ndim == 2:
        return array[..., None]
    return array[..., [2, 1, 0, 3][: array.shape[2]]] if array.shape[2] == 4 else array[..., ::-1]


def tiffinfo_strips(path: Path, dtype) -> list[np.ndarray]:
    """Each page's decoded samples, as libtiff's tiffinfo -d prints them (host order)."""
    pages: list[bytearray] = []
    reading = False
    for line in subprocess.run(
        [TIFFINFO, "-d", str(path)], capture_output=True, text=True, check=True
    ).stdout.splitlines():
        if line.startswith("=== TIFF directory"):
            pages.append(bytearray())
            reading = False
        elif line.startswith("Strip "):
            reading = True
        elif reading and line.startswith(" "):
            pages[-1] += bytes.fromhex(line)
        else:
            reading = False
    return [np.frombuffer(bytes(page), dtype) for page in pages]


def raw_tiff(
    values: np.ndarray, *, order: str = "<", photometric: int | None = None, planar: bool = False
) -> bytes:
    """An uncompressed TIFF of (H, W, C) samples, built here from the spec alone.

    Unsigned, signed or float samples (SampleFormat 1, 2, 3); photometric RGB for
    3+ channels, else gray, extra samples unspecified; chunky in one strip, or
    ``planar`` with one strip per channel.
    """
    height, width, channels = values.shape
    if photometric is None:
        photometric = 2 if channels >= 3 else 1
    extra = channels - (3 if photometric == 2 else 1)
    planes = values.transpose(2, 0, 1) if planar else values[None]
    strips = [p.astype(values.dtype.newbyteorder(order)).tobytes() for p in planes]
    entries = [
        (256, LONG, [width]),
        (257, LONG, [height]),
        (258, SHORT, [values.dtype.itemsize * 8] * channels),
        (259, SHORT, [1]),
        (262, SHORT, [photometric]),
        (273, LONG, [0] * len(strips)),  # offsets, known once the IFD's size is
        (277, SHORT, [channels]),
        (278, LONG, [height]),
        (279, LONG, [len(strip) for strip in strips]),
        (284, SHORT, [2 if planar else 1]),
        *([(338, SHORT, [0] * extra)] if extra else []),
        (339, SHORT, [{"u": 1, "i": 2, "f": 3}[values.dtype.kind]] * channels),
    ]
    size = {SHORT: 2, LONG: 4}
    spilled = sum(len(v) * size[t] for _, t, v in entries if len(v) * size[t] > 4)
    start = 8 + 2 + 12 * len(entries) + 4 + spilled
    offsets = [start + sum(len(s) for s in strips[:n]) for n in range(len(strips))]
    ifd, spill, position = struct.pack(f"{order}H", len(entries)), b"", start - spilled
    for tag, kind, value in entries:
        code = "H" if kind == SHORT else "I"
        payload = struct.pack(f"{order}{len(value)}{code}", *(offsets if tag == 273 else value))
        if len(payload) > 4:
            field, position, spill = (
                struct.pack(f"{order}I", position),
                position + len(payload),
                spill + payload,
            )
        else:
            field = payload.ljust(4, b"\x00")
        ifd += struct.pack(f"{order}HHI", tag, kind, len(value)) + field
    magic = b"II*\x00" if order == "<" else b"MM\x00*"
    return magic + struct.pack(f"{order}I", 8) + ifd + bytes(4) + spill + b"".join(strips)


def run_tiffcp(tmp_path: Path, source: bytes, *options: str, name: str = "cp.tif") -> Path:
    if TIFFCP is None:
        pytest.skip("tiffcp (libtiff-tools) is not installed")
    (tmp_path / "raw.tif").write_bytes(source)
    out = tmp_path / name
    subprocess.run([TIFFCP, *options, str(tmp_path / "raw.tif"), str(out)], check=True)
    return out


def run_magick(*args: str) -> None:
    if not Path("/usr/bin/convert").exists():
        pytest.skip("ImageMagick (/usr/bin/convert) is not installed")
    subprocess.run(["/usr/bin/convert", *args], check=True, capture_output=True)


def run_vips(*args: str) -> None:
    if shutil.which("vips") is None:
        pytest.skip("vips (libvips-tools) is not installed")
    subprocess.run(["vips", *args], check=True, capture_output=True)


def ifd_offsets(data: bytes) -> list[int]:
    offsets, (offset,) = [], struct.unpack_from("<I", data, 4)
    while offset:
        offsets.append(offset)
        (count,) = struct.unpack_from("<H", data, offset)
        (offset,) = struct.unpack_from("<I", data, offset + 2 + 12 * count)
    return offsets


def set_next_ifd(data: bytearray, page: int, value: int) -> None:
    offset = ifd_offsets(bytes(data))[page]
    (count,) = struct.unpack_from("<H", data, offset)
    struct.pack_into("<I", data, offset + 2 + 12 * count, value)


def set_tag(data: bytearray, page: int, tag: int, value: int) -> None:
    offset = ifd_offsets(bytes(data))[page]
    (count,) = struct.unpack_from("<H", data, offset)
    for entry in range(offset + 2, offset + 2 + 12 * count, 12):
        if struct.unpack_from("<H", data, entry)[0] == tag:
            kind = struct.unpack_from("<H", data, entry + 2)[0]
            struct.pack_into("<H" if kind == SHORT else "<I", data, entry + 8, value)
            return
    raise AssertionError(f"no tag {tag}")
