"""TIFF: 16-bit colour read exactly, any channel count written and read back.

Every file is checked against a reader that is not convcli's: OpenCV (libtiff),
Pillow, libtiff's own ``tiffinfo -d`` when installed, or a TIFF built here by hand.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from PIL import Image as PILImage

from convcli import ImageError, OutputError
from convcli.images.reading import read_image, read_image_shape
from convcli.images.tiff import write_tiff
from convcli.images.writing import to_integers, write_image
from tests.paths import SAMPLES
from tests.strategies import mutations

TIFFINFO = shutil.which("tiffinfo")
TIFFCP = shutil.which("tiffcp")


def _cv2():
    return pytest.importorskip("cv2")


def _values(shape, dtype=np.uint16, seed=0):
    return np.random.default_rng(seed).integers(0, np.iinfo(dtype).max + 1, shape, dtype)


def _read_exact(path) -> np.ndarray:
    """convcli's reading as (N, H, W, C) integers of the file's depth."""
    img = read_image(str(path))
    return to_integers(img.pixels, img.depth).transpose(0, 2, 3, 1)


def _cv2_rgb(array: np.ndarray) -> np.ndarray:
    """OpenCV's BGR(A) as RGB(A); gray stays (H, W, 1)."""
    if array.ndim == 2:
        return array[..., None]
    return array[..., [2, 1, 0, 3][: array.shape[2]]] if array.shape[2] == 4 else array[..., ::-1]


# Reading 16-bit colour (Pillow alone keeps only the high byte) ------------------------------


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("compression", [1, 5, 8])  # none, LZW (OpenCV's default), deflate
def test_sixteen_bit_colour_tiff_from_opencv_is_exact(tmp_path, channels, compression):
    cv2 = _cv2()
    rgb = _values((9, 13, channels))
    path = tmp_path / "x.tif"
    bgr = rgb[..., [2, 1, 0, 3][:channels]]
    assert cv2.imwrite(str(path), bgr, [cv2.IMWRITE_TIFF_COMPRESSION, compression])
    img = read_image(str(path))
    assert img.depth == 16 and img.has_alpha is (channels == 4)
    np.testing.assert_array_equal(_read_exact(path)[0], rgb)
    np.testing.assert_array_equal(_cv2_rgb(cv2.imread(str(path), cv2.IMREAD_UNCHANGED)), rgb)


def test_sixteen_bit_rgba_tiff_stays_sixteen_bit_through_the_command(tmp_path):
    cv2 = _cv2()
    source, out = tmp_path / "in.tif", tmp_path / "out.tif"
    assert cv2.imwrite(str(source), _values((6, 5, 4), seed=5))
    command = [sys.executable, "-m", "convcli", "apply", str(source), "-k", "1", "-o", str(out)]
    result = subprocess.run([*command, "-q"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16
    np.testing.assert_array_equal(written, cv2.imread(str(source), cv2.IMREAD_UNCHANGED))


def test_sixteen_bit_colour_pages_from_opencv_are_exact(tmp_path):
    cv2 = _cv2()
    frames = _values((3, 6, 5, 3))
    path = tmp_path / "pages.tif"
    assert cv2.imwritemulti(str(path), [f[..., ::-1] for f in frames])
    np.testing.assert_array_equal(_read_exact(path), frames)


def _big_endian_rgb16(values: np.ndarray) -> bytes:
    """A minimal big-endian, uncompressed 16-bit RGB TIFF, built without convcli."""
    height, width, _ = values.shape
    pixels = values.astype(">u2").tobytes()
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 3, 8 + 2 + 12 * 10 + 4),  # BitsPerSample: three SHORTs after the IFD
        (259, 3, 1, 1 << 16),  # SHORT values sit in the field's first two bytes
        (262, 3, 1, 2 << 16),
        (273, 4, 1, 8 + 2 + 12 * 10 + 4 + 6),
        (277, 3, 1, 3 << 16),
        (278, 4, 1, height),
        (279, 4, 1, len(pixels)),
        (284, 3, 1, 1 << 16),
    ]
    ifd = struct.pack(">H", len(entries))
    ifd += b"".join(struct.pack(">HHII", *entry) for entry in entries) + struct.pack(">I", 0)
    return b"MM\x00*" + struct.pack(">I", 8) + ifd + struct.pack(">3H", 16, 16, 16) + pixels


def test_big_endian_sixteen_bit_rgb_is_exact(tmp_path):
    rgb = _values((5, 7, 3), seed=3)
    path = tmp_path / "be.tif"
    path.write_bytes(_big_endian_rgb16(rgb))
    with PILImage.open(path) as im:
        assert im.mode == "RGB"  # Pillow opens it (and would keep 8 bits)
    np.testing.assert_array_equal(_read_exact(path)[0], rgb)


@pytest.mark.skipif(TIFFCP is None, reason="tiffcp (libtiff-tools) is not installed")
@pytest.mark.parametrize("compression", ["none", "lzw", "zip"])
def test_big_endian_compressed_by_libtiff_is_exact(tmp_path, compression):
    rgba = _values((6, 9, 4), seed=4)
    little = tmp_path / "le.tif"
    with open(little, "wb") as stream:
        write_tiff(rgba[None], stream)
    big = tmp_path / "be.tif"
    subprocess.run([TIFFCP, "-B", "-c", compression, str(little), str(big)], check=True)
    assert big.read_bytes()[:2] == b"MM"
    np.testing.assert_array_equal(_read_exact(big)[0], rgba)


# Writing: every layout, checked by readers that are not convcli -----------------------------


def _tiffinfo_strips(path: Path, dtype) -> list[np.ndarray]:
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


@pytest.mark.parametrize("channels", [1, 2, 3, 4, 5, 16])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("level", [0, 1])
def test_written_tiff_is_read_by_other_readers(tmp_path, channels, dtype, level):
    frames = _values((2, 37, 29, channels), dtype, seed=channels)
    path = tmp_path / "w.tif"
    with open(path, "wb") as stream:
        write_tiff(frames, stream, compress_level=level)
    np.testing.assert_array_equal(_read_exact(path), frames)
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
        cv2 = _cv2()
        ok, pages = cv2.imreadmulti(str(path), flags=cv2.IMREAD_UNCHANGED)
        assert ok and len(pages) == 2
        for n in range(2):
            np.testing.assert_array_equal(_cv2_rgb(pages[n]), frames[n])
        checked = True
    if TIFFINFO:
        for n, samples in enumerate(_tiffinfo_strips(path, dtype)):
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
    rgb = _values((3, 8, 10), seed=7)
    path = tmp_path / "rgb16.tif"
    assert write_image(rgb / 65535, str(path), depth=16) == []
    np.testing.assert_array_equal(_read_exact(path)[0].transpose(2, 0, 1), rgb)
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


# Files that lie -------------------------------------------------------------------------------


def _five_channel_tiff(level: int = 0) -> bytes:
    buffer = io.BytesIO()
    write_tiff(_values((2, 6, 7, 5), seed=9), buffer, compress_level=level)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("code", "needle"),
    [
        (12345, r"lzw5\.tif: a TIFF layout convcli cannot read \(compression 12345\)"),
        (5, r"lzw5\.tif: damaged TIFF \(.*LZW"),  # raw samples are no LZW stream
    ],
)
def test_unknown_compression_is_one_clear_error(tmp_path, code, needle):
    data = bytearray(_five_channel_tiff())
    # The fourth IFD entry (at 8 + 2 + 3 * 12) is Compression; its value is 8 bytes in.
    assert struct.unpack_from("<HHIH", data, 46) == (259, 3, 1, 1)
    struct.pack_into("<H", data, 54, code)
    path = tmp_path / "lzw5.tif"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match=needle):
        read_image(str(path))


def test_huge_multichannel_header_is_refused_before_decoding(tmp_path):
    data = bytearray(_five_channel_tiff())
    struct.pack_into("<I", data, 8 + 2 + 8, 100_000)  # ImageWidth
    struct.pack_into("<I", data, 8 + 2 + 12 + 8, 100_000)  # ImageLength
    path = tmp_path / "bomb.tif"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="over the limit"):
        read_image(str(path))


@pytest.mark.parametrize("cut", [20, 200, 400])
def test_truncated_multichannel_tiff(tmp_path, cut):
    path = tmp_path / "cut.tif"
    path.write_bytes(_five_channel_tiff(1)[:-cut])
    with pytest.raises(ImageError, match="cut.tif"):
        read_image(str(path))


_SEEDS = [_five_channel_tiff(0), _five_channel_tiff(1)]


@settings(max_examples=150, deadline=None)
@given(mutations(_SEEDS))
def test_fuzz_mutated_tiffs(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "m.tif"
    path.write_bytes(data)
    try:
        img = read_image(str(path), max_pixels=10**6)
    except ImageError:
        return
    assert img.pixels.ndim == 4 and img.pixels.dtype == np.float32


def test_many_channels_count_against_the_pixel_limit(tmp_path):
    path = tmp_path / "deep.tif"
    with open(path, "wb") as stream:
        write_tiff(np.zeros((1, 10, 10, 64), np.uint8), stream, compress_level=0)
    with pytest.raises(ImageError, match=r"6,400 samples.*--max-pixels 1600"):
        read_image(str(path), max_pixels=1000)
    assert read_image(str(path), max_pixels=1600).pixels.shape == (1, 64, 10, 10)
