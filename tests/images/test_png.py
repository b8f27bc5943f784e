"""PNG: 16-bit colour through libpng (interlaced too), bounded by its header; warnings, not stderr.

PNGs here are built by a plain encoder in this file (Adam7 passes, filter 0) or by
convcli's writer, whose output Pillow and OpenCV check in test_reading.py.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageOps

from convcli import ImageError
from convcli.images import codecs, png
from convcli.images.reading import read_image, read_image_shape
from convcli.images.writing import to_integers

COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type
# The PNG specification's figure of Adam7: the pass of each pixel of an 8x8 block.
ADAM7 = np.array(
    [
        [1, 6, 4, 6, 2, 6, 4, 6],
        [7, 7, 7, 7, 7, 7, 7, 7],
        [5, 6, 5, 6, 5, 6, 5, 6],
        [7, 7, 7, 7, 7, 7, 7, 7],
        [3, 6, 4, 6, 3, 6, 4, 6],
        [7, 7, 7, 7, 7, 7, 7, 7],
        [5, 6, 5, 6, 5, 6, 5, 6],
        [7, 7, 7, 7, 7, 7, 7, 7],
    ]
)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def _png16(values: np.ndarray, *, interlaced: bool = False, extra: bytes = b"", chunks=()) -> bytes:
    """A 16-bit PNG of (H, W, C) values: filter 0 rows, Adam7 passes when ``interlaced``."""
    height, width, channels = values.shape
    passes = np.tile(ADAM7, (-(-height // 8), -(-width // 8)))[:height, :width]
    if not interlaced:
        passes[:] = 1
    rows = b"".join(  # each pass: the image rows it has pixels in, those pixels left to right
        b"\x00" + values[y, passes[y] == p].astype(">u2").tobytes()
        for p in range(1, 8)
        for y in range(height)
        if (passes[y] == p).any()
    )
    header = struct.pack(
        ">IIBBBBB", width, height, 16, COLOUR_TYPES[channels], 0, 0, int(interlaced)
    )
    idat = zlib.compress(rows + extra)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + b"".join(_chunk(kind, payload) for kind, payload in chunks)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def _values(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 65536, shape, np.uint16)


def _read16(path) -> np.ndarray:
    img = read_image(str(path))
    assert img.depth == 16
    return to_integers(img.pixels[0], 16).transpose(1, 2, 0)


@pytest.mark.parametrize("channels", [2, 3, 4])
@pytest.mark.parametrize("interlaced", [False, True])
def test_sixteen_bit_colour_is_exact_interlaced_or_not(tmp_path, channels, interlaced):
    values = _values((13, 11, channels), seed=channels)  # every Adam7 pass holds pixels
    path = tmp_path / "x.png"
    path.write_bytes(_png16(values, interlaced=interlaced))
    np.testing.assert_array_equal(_read16(path), values)
    assert read_image(str(path)).has_alpha is (channels in (2, 4))
    assert read_image_shape(str(path)) == (1, channels, 13, 11)


def test_interlaced_sixteen_bit_from_imagemagick(tmp_path):
    from pathlib import Path

    if not Path("/usr/bin/convert").exists():
        pytest.skip("ImageMagick (/usr/bin/convert) is not installed")
    values = _values((21, 17, 4), seed=5)
    (tmp_path / "plain.png").write_bytes(_png16(values))
    interlaced = tmp_path / "adam7.png"
    command = ["/usr/bin/convert", str(tmp_path / "plain.png"), "-interlace", "PNG"]
    subprocess.run([*command, str(interlaced)], check=True)
    assert png.header(interlaced.read_bytes())[4] == 1
    np.testing.assert_array_equal(_read16(interlaced), values)


def test_a_colour_key_becomes_alpha(tmp_path):
    # As libpng and libvips make it (and every other PNG's key: tests/images/test_png_chunks.py).
    values = _values((4, 5, 3), seed=6)
    path = tmp_path / "key.png"
    path.write_bytes(_png16(values, chunks=[(b"tRNS", values[0, 0].astype(">u2").tobytes())]))
    img = read_image(str(path))
    assert img.pixels.shape == (1, 4, 4, 5) and img.has_alpha
    np.testing.assert_array_equal(_read16(path)[..., :3], values)
    keyed = (values == values[0, 0]).all(axis=2)
    np.testing.assert_array_equal(img.pixels[0, 3], np.where(keyed, 0, 1))


def test_data_past_the_last_row_is_never_inflated_nor_given_to_libpng(tmp_path, monkeypatch):
    values = _values((6, 7, 4), seed=7)
    path = tmp_path / "bomb.png"
    path.write_bytes(_png16(values, extra=bytes(300_000_000)))  # 300 MB of zeros in 0.3 MB
    given = []
    imagecodecs = codecs.imagecodecs()

    class Spy:
        def png_decode(self, data):
            given.append(len(data))
            return imagecodecs.png_decode(data)

    monkeypatch.setattr(codecs, "imagecodecs", Spy)
    img = read_image(str(path))
    np.testing.assert_array_equal(to_integers(img.pixels[0], 16).transpose(1, 2, 0), values)
    assert img.warnings == [
        f"{path}: PNG image data goes on past its last row; the rest is ignored"
    ]
    assert given and given[0] < 1000  # libpng saw the rows only, not 0.3 MB of stream


def _bad_crc(chunk: bytes) -> bytes:
    return chunk[:-1] + bytes([chunk[-1] ^ 1])


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (lambda d: d[: len(d) - 30], "truncated PNG"),
        (lambda d: d[:45] + bytes([d[45] ^ 0xFF]) + d[46:], "damaged PNG data"),  # IDAT's CRC
        (lambda d: d[:33] + _chunk(b"CRIT", b"") + d[33:], "its PNG chunk 'CRIT' is critical"),
    ],
)
def test_damaged_sixteen_bit_png_is_one_error_and_no_stderr(tmp_path, damage, needle):
    path = tmp_path / "bad.png"
    path.write_bytes(damage(_png16(_values((20, 30, 3), seed=8))))
    with pytest.raises(ImageError, match=rf"bad\.png: {needle}"):
        read_image(str(path))
    command = [sys.executable, "-m", "convcli", "apply", str(path), "-k", "1", "-o", "-"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 1 and result.stderr.splitlines()[0].startswith("Error: ")
    assert "PNG warning" not in result.stderr and len(result.stderr.splitlines()) == 1


def test_what_libpng_warns_about_is_the_users_warning(tmp_path):
    # An ICC profile chunk too short to hold one: libpng warns, skips it and reads on.
    values = _values((5, 6, 3), seed=9)
    path = tmp_path / "icc.png"
    path.write_bytes(_png16(values, chunks=[(b"iCCP", b"x\x00\x00")]))
    img = read_image(str(path))
    assert img.warnings == [f"{path}: PNG warning: iCCP: too short"]
    np.testing.assert_array_equal(_read16(path), values)


def _exif(orientation: int) -> bytes:
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()[6:]  # eXIf holds the TIFF structure, without "Exif\0\0"


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_of_sixteen_bit_png(tmp_path, orientation):
    values = _values((5, 8, 4), seed=orientation)
    path = tmp_path / "turned.png"
    path.write_bytes(_png16(values, chunks=[(b"eXIf", _exif(orientation))]))
    with PILImage.open(path) as im:  # Pillow reads 8 bits of it, and turns them
        expected_high_bytes = np.asarray(ImageOps.exif_transpose(im))
    turned = _read16(path)
    np.testing.assert_array_equal(turned >> 8, expected_high_bytes)
    assert read_image_shape(str(path)) == (1, 4, *turned.shape[:2])


def test_malformed_exif_in_sixteen_bit_png_is_a_warning(tmp_path):
    values = _values((3, 4, 3), seed=10)
    path = tmp_path / "exif.png"
    path.write_bytes(_png16(values, chunks=[(b"eXIf", b"MM\x00*\x00\x00\x00\x08\xff\xff")]))
    img = read_image(str(path))
    np.testing.assert_array_equal(_read16(path), values)
    assert len(img.warnings) == 1 and "EXIF orientation could not be read" in img.warnings[0]


def test_writer_output_is_read_back_by_pillow_and_convcli():
    values = np.random.default_rng(11).integers(0, 256, (40, 30, 3), np.uint8)
    out = io.BytesIO()
    png.write_png(values, out, compress_level=6)
    with PILImage.open(io.BytesIO(out.getvalue())) as im:
        np.testing.assert_array_equal(np.asarray(im), values)
