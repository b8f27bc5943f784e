"""TIFF out (convcli/images/tiff.py): every layout written, checked by readers that are
not convcli's (OpenCV, Pillow, libtiff's tiffinfo -d); BigTIFF, tiles from an iterator, pipes.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from convcli import OutputError, ParameterError
from convcli.images import tiff
from convcli.images.outputs import atomic_output
from convcli.images.reading import read_image, read_image_shape
from convcli.images.tiff import write_tiff
from convcli.images.tiff_reading import read_tiff
from convcli.images.writing import to_integers, write_image
from tests.images.tiff_files import (
    TIFFCP,
    TIFFINFO,
    opencv,
    opencv_rgb,
    random_values,
    read_exact,
    tiffinfo_strips,
)
from tests.paths import SAMPLES

# Writing: every layout, checked by readers that are not convcli -----------------------------


@pytest.mark.parametrize("channels", [1, 2, 3, 4, 5, 16])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("level", [0, 1])
def test_written_tiff_is_read_by_other_readers(tmp_path, channels, dtype, level):
    frames = random_values((2, 37, 29, channels), dtype, seed=channels)
    path = tmp_path / "w.tif"
    with open(path, "wb") as stream:
        write_tiff(frames, stream, compress_level=level)
    np.testing.assert_array_equal(read_exact(path), frames)
    assert read_image_shape(str(path)) == (2, channels, 37, 29)
    checked = False
    if channels <= 4 and not (dtype == np.uint16 and channels != 1):  # Pillow's modes
        with PILImage.open(path) as im:
            for n in range(2):
                im.seek(n)
                page = np.asarray(im).reshape(37, 29, channels)
                np.testing.assert_array_equal(page, frames[n])
        checked = True
    if dtype == np.uint16 and channels in (1, 3, 4):
        cv2 = opencv()
        ok, pages = cv2.imreadmulti(str(path), flags=cv2.IMREAD_UNCHANGED)
        assert ok and len(pages) == 2
        for n in range(2):
            np.testing.assert_array_equal(opencv_rgb(pages[n]), frames[n])
        checked = True
    if TIFFINFO:
        for n, samples in enumerate(tiffinfo_strips(path, dtype)):
            np.testing.assert_array_equal(samples.reshape(frames[n].shape), frames[n])
        checked = True
    if not checked:
        pytest.skip("no independent reader for this layout (install libtiff-tools)")


@pytest.mark.skipif(TIFFINFO is None, reason="tiffinfo (libtiff-tools) is not installed")
def test_written_tags_say_what_the_pixels_are(tmp_path):
    path = tmp_path / "rgba.tif"
    with open(path, "wb") as stream:
        write_tiff(np.zeros((1, 600, 300, 4), np.uint16), stream)
    info = subprocess.run([TIFFINFO, str(path)], capture_output=True, text=True).stdout
    for needle in (
        "Bits/Sample: 16",
        "Compression Scheme: AdobeDeflate",
        "Photometric Interpretation: RGB color",
        "Extra Samples: 1<unassoc-alpha>",
        "Rows/Strip: 109",  # 256 KiB strips: 109 rows of 300 * 4 * 2 bytes
        "Predictor: horizontal differencing 2",
    ):
        assert needle in info


def test_write_image_sixteen_bit_colour_and_feature_maps(tmp_path):
    rgb = random_values((3, 8, 10), seed=7)
    path = tmp_path / "rgb16.tif"
    assert write_image(rgb / 65535, str(path), depth=16) == []
    np.testing.assert_array_equal(read_exact(path)[0].transpose(2, 0, 1), rgb)
    maps = np.random.default_rng(8).random((2, 16, 5, 6), np.float32)
    path = tmp_path / "maps.tif"
    write_image(maps, str(path))
    img = read_image(str(path))
    assert img.pixels.shape == (2, 16, 5, 6) and img.depth == 8 and not img.has_alpha
    np.testing.assert_array_equal(to_integers(img.pixels, 8), to_integers(maps, 8))


def test_sixteen_feature_maps_through_the_command(tmp_path):
    weight = tmp_path / "w16.npy"
    np.save(weight, np.random.default_rng(0).random((16, 1, 3, 3)).astype(np.float32) / 9)
    source = SAMPLES / "camera.png"
    out = tmp_path / "maps.tif"
    command = [sys.executable, "-m", "convcli", "apply", str(source), "-k", str(weight)]
    result = subprocess.run([*command, "-o", str(out), "-q"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert read_image_shape(str(out)) == (1, 16, 512, 512)
    refused = subprocess.run(
        [*command, "-o", str(tmp_path / "maps.png"), "-q"], capture_output=True, text=True
    )
    # known from the geometry before filtering: a usage error
    assert refused.returncode == 2 and ".tif" in refused.stderr and ".npy" in refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / "maps.png").exists()


def test_other_formats_still_refuse_many_channels(tmp_path):
    with pytest.raises(OutputError, match=r"5 channels.*\.tif.*\.npy"):
        write_image(np.ones((5, 2, 2)), str(tmp_path / "x.webp"))
    assert not (tmp_path / "x.webp").exists()


# Writing: BigTIFF, tiles from an iterator, pipes ---------------------------------------------


def test_bigtiff_once_the_pixels_pass_the_classic_limit(tmp_path, monkeypatch):
    frames = random_values((2, 30, 20, 3), np.uint16, seed=13)
    small, big = tmp_path / "small.tif", tmp_path / "big.tif"
    with open(small, "wb") as stream:
        write_tiff(frames, stream)
    monkeypatch.setattr(tiff, "_CLASSIC_BYTES", frames.nbytes - 1)  # 4 GiB is too big to test
    with open(big, "wb") as stream:
        write_tiff(frames, stream)
    assert small.read_bytes()[:4] == b"II*\x00" and big.read_bytes()[:4] == b"II+\x00"
    np.testing.assert_array_equal(read_exact(big), frames)
    cv2 = opencv()  # libtiff's reading, not tifffile's
    ok, pages = cv2.imreadmulti(str(big), flags=cv2.IMREAD_UNCHANGED)
    assert ok and all(np.array_equal(opencv_rgb(p), f) for p, f in zip(pages, frames, strict=True))


def test_write_tiff_in_tiles_for_every_page(tmp_path):
    frames = random_values((3, 70, 50, 3), np.uint16, seed=17)
    path = tmp_path / "tiles.tif"
    with open(path, "wb") as stream:
        write_tiff(frames, stream, tile=(32, 16))
    cv2 = opencv()  # libtiff's reading
    ok, pages = cv2.imreadmulti(str(path), flags=cv2.IMREAD_UNCHANGED)
    assert ok and len(pages) == 3
    for page, frame in zip(pages, frames, strict=True):
        np.testing.assert_array_equal(opencv_rgb(page), frame)
    if TIFFINFO:
        info = subprocess.run([TIFFINFO, str(path)], capture_output=True, text=True).stdout
        assert info.count("Tile Width: 16 Tile Length: 32") == 3


def _bands(values: np.ndarray, heights: list[int]):
    top = 0
    for rows in heights:
        yield values[top : top + rows]
        top += rows


def _tiles(values: np.ndarray, tile: tuple[int, int], *, padded: bool = False):
    for top in range(0, values.shape[0], tile[0]):
        for left in range(0, values.shape[1], tile[1]):
            piece = values[top : top + tile[0], left : left + tile[1]]
            if padded:
                piece = np.pad(
                    piece, [(0, tile[0] - piece.shape[0]), (0, tile[1] - piece.shape[1]), (0, 0)]
                )
            yield piece


def _libtiff_strips(tmp_path: Path, path: Path, dtype) -> np.ndarray:
    """libtiff's decoding of a tiled TIFF: tiffcp to strips, tiffinfo -d."""
    if TIFFCP is None or TIFFINFO is None:
        pytest.skip("tiffcp and tiffinfo (libtiff-tools) are not installed")
    strips = tmp_path / "strips.tif"
    subprocess.run([TIFFCP, "-s", "-c", "none", str(path), str(strips)], check=True)
    return tiffinfo_strips(strips, dtype)[0]


@pytest.mark.parametrize(
    ("pieces", "channels", "dtype"),
    [
        (lambda v: _bands(v, [1, 47, 100, 2, 50]), 3, np.uint8),  # bands of any height
        (lambda v: _bands(v, [200]), 1, np.uint16),  # one band: the whole image
        (lambda v: _tiles(v, (64, 32)), 5, np.uint16),  # tiles cut at the edges
        (lambda v: _tiles(v, (64, 32), padded=True), 4, np.uint8),  # or padded to full size
    ],
)
@pytest.mark.parametrize("level", [0, 6])
def test_write_tiled_from_bands_or_tiles(tmp_path, pieces, channels, dtype, level):
    values = random_values((200, 75, channels), dtype, seed=channels)
    path = tmp_path / "tiled.tif"
    with open(path, "wb") as stream:
        shape = (200, 75, channels)
        tiff.write_tiled(stream, pieces(values), shape=shape, dtype=dtype, tile=(64, 32),
                         compress_level=level)  # fmt: skip
    np.testing.assert_array_equal(read_exact(path)[0], values)
    if TIFFINFO:
        info = subprocess.run([TIFFINFO, str(path)], capture_output=True, text=True).stdout
        assert "Tile Width: 32 Tile Length: 64" in info
        assert ("AdobeDeflate" if level else "Compression Scheme: None") in info
    np.testing.assert_array_equal(
        _libtiff_strips(tmp_path, path, dtype).reshape(values.shape), values
    )


def test_write_tiled_reuses_no_caller_buffer(tmp_path):
    values = random_values((100, 40, 3), np.uint8, seed=14)

    def refilled():  # one buffer, refilled for every band, as a streaming producer would
        buffer = np.empty((10, 40, 3), np.uint8)
        for top in range(0, 100, 10):
            buffer[:] = values[top : top + 10]
            yield buffer

    out = io.BytesIO()
    tiff.write_tiled(out, refilled(), shape=values.shape, dtype=np.uint8, tile=(32, 16))
    np.testing.assert_array_equal(read_tiff(out.getvalue(), "x").frames[0], values)


@pytest.mark.parametrize(
    ("pieces", "needle"),
    [
        (lambda v: _bands(v, [30, 30]), "end at row 60 of 100"),
        (lambda v: _bands(np.concatenate([v, v]), [100, 10]), "more than shape"),
        (lambda v: iter([v.astype(np.uint16)]), "dtype uint16; expected 3 channels of uint8"),
        (lambda v: iter([v[..., :2]]), "expected 3 channels"),
        (lambda v: _tiles(v, (48, 16)), "is 48x16; expected 32x16"),
        (lambda v: iter([v[:50], v[50:, :20]]), "20 wide among bands 40 wide"),
    ],
)
def test_write_tiled_refuses_pieces_that_do_not_fit(tmp_path, pieces, needle):
    values = random_values((100, 40, 3), np.uint8, seed=15)
    path = tmp_path / "t.tif"
    with pytest.raises(OutputError, match=needle), atomic_output(str(path)) as stream:
        tiff.write_tiled(stream, pieces(values), shape=values.shape, dtype=np.uint8, tile=(32, 16))
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_write_tiled_tiles_are_multiples_of_16(tmp_path):
    with pytest.raises(ParameterError, match=r"tile=\(20, 32\)"):
        tiff.write_tiled(io.BytesIO(), iter([]), shape=(1, 1, 1), dtype=np.uint8, tile=(20, 32))


def test_tiff_to_a_pipe_is_complete(tmp_path):
    rgb = random_values((3, 37, 41), np.uint16, seed=16)
    np.save(tmp_path / "in.npy", rgb.astype(np.float32) / 65535)
    command = [sys.executable, "-m", "convcli", "apply", str(tmp_path / "in.npy"), "-k", "1"]
    result = subprocess.run(
        [*command, "--depth", "16", "-o", "-", "--format", "tif", "-q"], capture_output=True
    )
    assert result.returncode == 0, result.stderr
    (tmp_path / "out.tif").write_bytes(result.stdout)
    np.testing.assert_array_equal(read_exact(tmp_path / "out.tif")[0].transpose(2, 0, 1), rgb)
