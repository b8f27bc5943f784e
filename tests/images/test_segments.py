"""Strips and tiles checked before decoding: embedded images' own sizes, missing segments.

The sizes come from images that Pillow encodes (JPEG, JPEG 2000, WebP in its three
kinds, PNG), so the header readers are checked against real encoders, not against
bytes written here.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import features

from convcli import ImageError
from convcli.images.reading import read_image
from convcli.images.segments import embedded_size
from convcli.images.writing import to_integers

JPEG, JPEG2000, WEBP, PNG = 7, 34712, 50001, 34933


def _encoded(mode: str, size: tuple[int, int], fmt: str, **options) -> bytes:
    values = np.random.default_rng(0).integers(0, 256, (size[1], size[0], len(mode)), np.uint8)
    image = PILImage.fromarray(values[..., 0] if mode == "L" else values, mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("compression", "mode", "fmt", "options", "samples"),
    [
        (JPEG, "RGB", "JPEG", {}, 3),
        (JPEG, "L", "JPEG", {"progressive": True}, 1),
        (JPEG, "CMYK", "JPEG", {"icc_profile": bytes(70000)}, 4),  # frame after long APP2s
        (JPEG2000, "RGB", "JPEG2000", {}, 3),
        (JPEG2000, "RGBA", "JPEG2000", {"no_jp2": True}, 4),  # a bare codestream
        (WEBP, "RGB", "WEBP", {}, 4),  # lossy: VP8
        (WEBP, "RGB", "WEBP", {"lossless": True}, 4),  # VP8L
        (WEBP, "RGBA", "WEBP", {"exif": b"Exif\x00\x00"}, 4),  # VP8X
        (PNG, "RGB", "PNG", {}, 4),
    ],
)
def test_embedded_size_reads_what_encoders_write(compression, mode, fmt, options, samples):
    if fmt == "JPEG2000" and not features.check("jpg_2000"):
        pytest.skip("Pillow without OpenJPEG")
    data = _encoded(mode, (123, 45), fmt, **options)
    assert embedded_size(compression, data) == (45, 123, samples)


@pytest.mark.parametrize("compression", [JPEG, JPEG2000, WEBP, PNG])
def test_embedded_size_of_garbage_or_a_cut_header_is_none(compression):
    if compression == JPEG2000 and not features.check("jpg_2000"):
        pytest.skip("Pillow without OpenJPEG")
    data = _encoded("RGB", (40, 30), {JPEG: "JPEG", JPEG2000: "JPEG2000"}.get(compression, "PNG"))
    assert embedded_size(compression, b"\x00" * 64) is None
    if compression != JPEG2000:  # its header is found by search, cut or not
        assert embedded_size(compression, data[:14]) is None


def test_a_png_tile_larger_than_its_place_is_refused(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    path = tmp_path / "png.tif"
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8)
    tifffile.imwrite(path, image, tile=(32, 32), compression="png", photometric="rgb")
    pixels = to_integers(read_image(str(path)).pixels[0], 8)
    np.testing.assert_array_equal(pixels, image.transpose(2, 0, 1))
    data = bytearray(path.read_bytes())
    header = data.index(b"IHDR") + 4
    data[header : header + 8] = (20000).to_bytes(4, "big") * 2  # the first tile's size
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match=r"png\.tif: .*20000x20000 image"):
        read_image(str(path))
