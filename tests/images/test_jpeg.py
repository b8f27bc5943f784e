"""JPEG data that libjpeg finds damaged fails the input, whoever decodes it (simplejpeg,
Pillow, tifffile); libjpeg pads it with gray and neither Pillow nor imagecodecs says so."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

from convcli.errors import ImageError
from convcli.images import fast_codecs
from convcli.images.reading import read_image
from convcli.images.tiff_regions import TiffRegions

pytest.importorskip("simplejpeg")


def _photo(height: int = 96, width: int = 128) -> np.ndarray:
    rng = np.random.default_rng(4)
    small = rng.integers(0, 256, (12, 16, 3), np.uint8)
    return np.asarray(PILImage.fromarray(small).resize((width, height), PILImage.BICUBIC))


def _jpeg(mode: str = "RGB", **options) -> bytes:
    stream = io.BytesIO()
    PILImage.fromarray(_photo()).convert(mode).save(stream, "JPEG", quality=90, **options)
    return stream.getvalue()


def _read(tmp_path, data: bytes, monkeypatch, *, fast: bool, name: str = "image.jpg"):
    path = tmp_path / name
    path.write_bytes(data)
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(fast_codecs, "_codecs", lambda: None)
        return read_image(str(path))


def _end_marker_early(data: bytes, share: float = 2 / 3) -> bytes:
    """The file cut at ``share`` with its end marker put back."""
    return data[: int(len(data) * share)] + b"\xff\xd9"


KINDS = {
    "baseline": lambda: _jpeg(),
    "gray": lambda: _jpeg("L"),
    "progressive": lambda: _jpeg(progressive=True),
    "restart markers": lambda: _jpeg(restart_marker_blocks=4),
    "cmyk": lambda: _jpeg("CMYK"),  # Pillow's: checked before it decodes
}


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("kind", KINDS)
def test_a_jpeg_cut_short_with_its_end_marker_fails_the_input(tmp_path, monkeypatch, kind, fast):
    # It decoded with gray rows and exit 0; ImageMagick says "premature end of data segment".
    whole = KINDS[kind]()
    assert _read(tmp_path, whole, monkeypatch, fast=fast).warnings == []
    with pytest.raises(ImageError, match=r"image\.jpg: damaged JPEG data \(Corrupt JPEG data"):
        _read(tmp_path, _end_marker_early(whole), monkeypatch, fast=fast)


@pytest.mark.parametrize("fast", [True, False])
def test_a_jpeg_cut_short_without_its_end_marker_fails_alike(tmp_path, monkeypatch, fast):
    with pytest.raises(ImageError, match=r"image\.jpg: damaged"):
        _read(tmp_path, _jpeg()[:2000], monkeypatch, fast=fast)


@pytest.mark.parametrize("fast", [True, False])
def test_bytes_after_the_coded_data_change_nothing(tmp_path, monkeypatch, fast):
    # libjpeg has every pixel before it reaches them: no error, Pillow's pixels.
    data = _jpeg()
    padded = data[:-2] + b"\x00\x01\x02" + data[-2:]  # before the end marker
    img = _read(tmp_path, padded, monkeypatch, fast=fast)
    expected = np.asarray(PILImage.open(io.BytesIO(data))).transpose(2, 0, 1) / np.float32(255)
    np.testing.assert_array_equal(img.pixels[0], expected)


def _stop_scan(data: bytearray, start: int, end: int) -> None:
    """An end marker in the middle of the coded data (after the SOS segment) of the JPEG
    at ``data[start:end]``; the size stays."""
    scan = data.index(b"\xff\xda", start)
    middle = (scan + end) // 2
    data[middle : middle + 2] = b"\xff\xd9"


def test_a_damaged_second_mpo_picture_fails_the_input(tmp_path, monkeypatch):
    pictures = [PILImage.fromarray(_photo()), PILImage.fromarray(_photo()[::-1].copy())]
    stream = io.BytesIO()
    pictures[0].save(stream, "MPO", save_all=True, append_images=pictures[1:], quality=90)
    data = bytearray(stream.getvalue())
    assert _read(tmp_path, bytes(data), monkeypatch, fast=True).pixels.shape[0] == 2
    with PILImage.open(io.BytesIO(bytes(data))) as im:
        im.seek(1)
        second = im.offset
    _stop_scan(data, second, len(data))
    with pytest.raises(ImageError, match=r"image\.mpo: damaged JPEG data in picture 1"):
        _read(tmp_path, bytes(data), monkeypatch, fast=True, name="image.mpo")


# TIFF ------------------------------------------------------------------------------------


def _tiff(tmp_path, **options) -> tuple:
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, _photo(), photometric="rgb", **options)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        return path, list(page.dataoffsets), list(page.databytecounts)


def _both_ways(path):
    """Read whole, then by region."""
    yield lambda: read_image(str(path))
    yield lambda: TiffRegions(str(path)).read_region(
        slice(0, 1), slice(0, 3), slice(0, 96), slice(0, 128)
    )


LAYOUTS = {
    "jpeg strips": dict(compression="jpeg", rowsperstrip=32),
    "jpeg tiles": dict(compression="jpeg", tile=(32, 32)),
    "deflate strips": dict(compression="zlib", rowsperstrip=32),
    "uncompressed": dict(rowsperstrip=32),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_tiff_cut_inside_its_last_segment_fails_whole_and_by_region(tmp_path, layout):
    # A JPEG strip the file ends inside of decoded with gray rows (exit 0).
    path, offsets, counts = _tiff(tmp_path, **LAYOUTS[layout])
    last = int(np.argmax(offsets))
    for read in _both_ways(path):
        read()
    with open(path, "r+b") as stream:
        stream.truncate(offsets[last] + counts[last] // 2)
    for read in _both_ways(path):
        with pytest.raises(ImageError, match="damaged TIFF: .* past the end of the file"):
            read()


@pytest.mark.parametrize("layout", ["jpeg strips", "jpeg tiles"])
def test_a_damaged_jpeg_segment_inside_the_file_fails_whole_and_by_region(tmp_path, layout):
    path, offsets, counts = _tiff(tmp_path, **LAYOUTS[layout])
    data = bytearray(path.read_bytes())
    _stop_scan(data, offsets[1], offsets[1] + counts[1])
    path.write_bytes(bytes(data))
    for read in _both_ways(path):
        with pytest.raises(ImageError, match=r"a\.tif: damaged JPEG data in page 0"):
            read()


@pytest.mark.skipif(shutil.which("tiffcp") is None, reason="tiffcp is not installed")
def test_jpeg_tables_in_their_own_tag_are_read_with_each_strip(tmp_path):
    # libtiff writes the tables once (JPEGTables) and abbreviated strips.
    PILImage.fromarray(_photo()).save(tmp_path / "plain.tif")
    subprocess.run(
        ["tiffcp", "-c", "jpeg:90", "-r", "32", tmp_path / "plain.tif", tmp_path / "a.tif"],
        check=True,
    )
    with tifffile.TiffFile(tmp_path / "a.tif") as tif:
        page = tif.pages[0]
        assert page.jpegtables is not None
        offsets, counts = list(page.dataoffsets), list(page.databytecounts)
    for read in _both_ways(tmp_path / "a.tif"):
        read()
    data = bytearray((tmp_path / "a.tif").read_bytes())
    _stop_scan(data, offsets[1], offsets[1] + counts[1])
    (tmp_path / "a.tif").write_bytes(bytes(data))
    for read in _both_ways(tmp_path / "a.tif"):
        with pytest.raises(ImageError, match="damaged JPEG data"):
            read()
