"""TIFF in (convcli/images/tiff_reading.py): every layout, colours, damaged files.

Every file is written, or read back, by a reader that is not convcli's: libtiff's
tiffcp and tiffinfo, OpenCV (libtiff), Pillow, ImageMagick, libvips, or a TIFF
built here from the spec alone (tests/images/tiff_files.py).
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from PIL import Image as PILImage

from convcli import ImageError
from convcli.images.reading import read_image, read_image_shape
from convcli.images.tiff import write_tiff
from tests.images.tiff_files import (
    TIFFCP,
    TIFFINFO,
    ifd_offsets,
    opencv,
    opencv_rgb,
    random_values,
    raw_tiff,
    read_exact,
    run_magick,
    run_tiffcp,
    run_vips,
    set_next_ifd,
    set_tag,
    tiffinfo_strips,
)
from tests.paths import SAMPLES
from tests.strategies import mutations

# Reading 16-bit colour (Pillow alone keeps only the high byte) ------------------------------


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("compression", [1, 5, 8])  # none, LZW (OpenCV's default), deflate
def test_sixteen_bit_colour_tiff_from_opencv_is_exact(tmp_path, channels, compression):
    cv2 = opencv()
    rgb = random_values((9, 13, channels))
    path = tmp_path / "x.tif"
    bgr = rgb[..., [2, 1, 0, 3][:channels]]
    assert cv2.imwrite(str(path), bgr, [cv2.IMWRITE_TIFF_COMPRESSION, compression])
    img = read_image(str(path))
    assert img.depth == 16 and img.has_alpha is (channels == 4)
    np.testing.assert_array_equal(read_exact(path)[0], rgb)
    np.testing.assert_array_equal(opencv_rgb(cv2.imread(str(path), cv2.IMREAD_UNCHANGED)), rgb)


def test_sixteen_bit_rgba_tiff_stays_sixteen_bit_through_the_command(tmp_path):
    cv2 = opencv()
    source, out = tmp_path / "in.tif", tmp_path / "out.tif"
    assert cv2.imwrite(str(source), random_values((6, 5, 4), seed=5))
    command = [sys.executable, "-m", "convcli", "apply", str(source), "-k", "1", "-o", str(out)]
    result = subprocess.run([*command, "-q"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16
    np.testing.assert_array_equal(written, cv2.imread(str(source), cv2.IMREAD_UNCHANGED))


def test_sixteen_bit_colour_pages_from_opencv_are_exact(tmp_path):
    cv2 = opencv()
    frames = random_values((3, 6, 5, 3))
    path = tmp_path / "pages.tif"
    assert cv2.imwritemulti(str(path), [f[..., ::-1] for f in frames])
    np.testing.assert_array_equal(read_exact(path), frames)


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
    rgb = random_values((5, 7, 3), seed=3)
    path = tmp_path / "be.tif"
    path.write_bytes(_big_endian_rgb16(rgb))
    with PILImage.open(path) as im:
        assert im.mode == "RGB"  # Pillow opens it (and would keep 8 bits)
    np.testing.assert_array_equal(read_exact(path)[0], rgb)


@pytest.mark.skipif(TIFFCP is None, reason="tiffcp (libtiff-tools) is not installed")
@pytest.mark.parametrize("compression", ["none", "lzw", "zip"])
def test_big_endian_compressed_by_libtiff_is_exact(tmp_path, compression):
    rgba = random_values((6, 9, 4), seed=4)
    little = tmp_path / "le.tif"
    with open(little, "wb") as stream:
        write_tiff(rgba[None], stream)
    big = tmp_path / "be.tif"
    subprocess.run([TIFFCP, "-B", "-c", compression, str(little), str(big)], check=True)
    assert big.read_bytes()[:2] == b"MM"
    np.testing.assert_array_equal(read_exact(big)[0], rgba)


# Files that lie -------------------------------------------------------------------------------


def _five_channel_tiff(level: int = 0) -> bytes:
    buffer = io.BytesIO()
    write_tiff(random_values((2, 6, 7, 5), seed=9), buffer, compress_level=level)
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


# Reading every layout: libtiff (tiffcp) writes, the values must come back ------------------


@pytest.mark.parametrize("planar", [False, True])
def test_raw_tiff_helper_is_what_libtiff_reads(tmp_path, planar):
    values = random_values((5, 6, 3), np.uint16, seed=1)
    path = tmp_path / "raw.tif"
    path.write_bytes(raw_tiff(values, order=">", planar=planar))
    if TIFFINFO is None:
        pytest.skip("tiffinfo (libtiff-tools) is not installed")
    samples = tiffinfo_strips(path, np.uint16)[0]
    expected = values.transpose(2, 0, 1) if planar else values
    np.testing.assert_array_equal(samples.reshape(expected.shape), expected)


LAYOUTS = {
    "planar": ["-p", "separate"],
    "tiled": ["-t", "-w", "32", "-l", "16"],
    "lzw predictor": ["-c", "lzw:2"],
    "deflate 7-row strips": ["-c", "zip", "-r", "7"],
    "packbits": ["-c", "packbits"],
    "zstd": ["-c", "zstd"],
    "lzma": ["-c", "lzma"],
    "bigtiff": ["-8", "-c", "zip:2"],
    "big-endian planar": ["-B", "-p", "separate", "-c", "lzw:2", "-r", "5"],
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("dtype", "channels"), [(np.uint8, 1), (np.uint8, 4), (np.uint16, 3)])
def test_layouts_libtiff_writes_are_read_exactly(tmp_path, layout, dtype, channels):
    values = random_values((37, 45, channels), dtype, seed=channels)
    planar = "separate" in LAYOUTS[layout]  # tiffcp makes 8-bit planar only
    path = run_tiffcp(tmp_path, raw_tiff(values, planar=planar), *LAYOUTS[layout])
    np.testing.assert_array_equal(read_exact(path)[0], values)
    assert read_image_shape(str(path)) == (1, channels, 37, 45)


# (tiffcp 4.5 scrambles 16-bit planar samples into tiles: those are 8-bit here)
@pytest.mark.parametrize("channels", [2, 5, 16])
@pytest.mark.parametrize(
    ("dtype", "options"),
    [
        (np.uint8, ["-t", "-w", "16", "-l", "16", "-c", "zip:2"]),
        (np.uint16, ["-c", "lzw:2", "-r", "5"]),
    ],
)
def test_any_channel_count_planar(tmp_path, channels, dtype, options):
    values = random_values((33, 18, channels), dtype, seed=channels)
    path = run_tiffcp(tmp_path, raw_tiff(values, planar=True), *options)
    img = read_image(str(path))
    assert img.pixels.shape == (1, channels, 33, 18) and not img.has_alpha
    np.testing.assert_array_equal(read_exact(path)[0], values)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_samples_keep_their_values(tmp_path, dtype):
    values = (np.random.default_rng(2).standard_normal((9, 11, 3)) * 1000).astype(dtype)
    path = tmp_path / "f.tif"
    path.write_bytes(raw_tiff(values))
    img = read_image(str(path))
    assert img.depth == 32 and img.pixels.dtype == np.float32
    np.testing.assert_array_equal(img.pixels[0], values.astype(np.float32).transpose(2, 0, 1))


def test_float_predictor_and_tiles_from_libtiff(tmp_path):
    values = np.random.default_rng(3).standard_normal((40, 50, 1)).astype(np.float32)
    path = run_tiffcp(tmp_path, raw_tiff(values), "-c", "zip:3", "-t", "-w", "16", "-l", "32")
    np.testing.assert_array_equal(read_image(str(path)).pixels[0, 0], values[..., 0])


@pytest.mark.parametrize(("dtype", "outside"), [(np.int16, -1), (np.uint32, 65536)])
def test_wider_or_signed_integers_within_16_bits_read_as_16_bit(tmp_path, dtype, outside):
    values = np.random.default_rng(4).integers(0, 32768, (6, 7, 1)).astype(dtype)
    path = tmp_path / "i.tif"
    path.write_bytes(raw_tiff(values))
    img = read_image(str(path))
    assert img.depth == 16
    np.testing.assert_array_equal(read_exact(path)[0], values.astype(np.uint16))
    values[3, 4] = outside
    path.write_bytes(raw_tiff(values))
    with pytest.raises(
        ImageError, match=rf"i\.tif: {np.dtype(dtype)} samples .*outside 0\.\.65535"
    ):
        read_image(str(path))


def test_pages_several_and_multi_page_shape(tmp_path):
    pages = [raw_tiff(random_values((4, 5, 3), np.uint8, seed=s)) for s in range(3)]
    # tiffcp joins files as pages
    for n, page in enumerate(pages):
        (tmp_path / f"p{n}.tif").write_bytes(page)
    if TIFFCP is None:
        pytest.skip("tiffcp (libtiff-tools) is not installed")
    out = tmp_path / "pages.tif"
    subprocess.run(
        [TIFFCP, "-c", "lzw", *[str(tmp_path / f"p{n}.tif") for n in range(3)], str(out)]
    )
    expected = np.stack([random_values((4, 5, 3), np.uint8, seed=s) for s in range(3)])
    np.testing.assert_array_equal(read_exact(out), expected)
    assert read_image_shape(str(out)) == (3, 3, 4, 5)


# Colours as Pillow read them (Pillow is the oracle for the 8-bit layouts it reads) ----------


def _pillow_rgb_like(path: Path, mode: str) -> np.ndarray:
    """Pillow's reading of ``path`` converted to ``mode``, as (H, W, C)."""
    with PILImage.open(path) as im:
        array = np.asarray(im.convert(mode))
    return array[..., None] if array.ndim == 2 else array


@pytest.mark.parametrize("compression", ["raw", "tiff_lzw", "tiff_adobe_deflate"])
def test_palette_becomes_rgb_as_pillow_reads_it(tmp_path, compression):
    image = PILImage.fromarray(random_values((23, 31), np.uint8, seed=5), "P")
    image.putpalette(random_values((768,), np.uint8, seed=6).tolist())
    path = tmp_path / "p.tif"
    image.save(path, compression=compression)
    img = read_image(str(path))
    assert img.depth == 8 and not img.has_alpha and read_image_shape(str(path)) == (1, 3, 23, 31)
    np.testing.assert_array_equal(read_exact(path)[0], _pillow_rgb_like(path, "RGB"))


def test_cmyk_becomes_rgb_by_pillows_formula_for_every_ink_and_black(tmp_path):
    ink, black = np.meshgrid(np.arange(256), np.arange(256))  # every (C, K) pair
    cmyk = np.stack([ink, 255 - ink, random_values((256, 256), np.uint8, seed=7), black], -1)
    path = tmp_path / "cmyk.tif"
    PILImage.fromarray(cmyk.astype(np.uint8), "CMYK").save(path, compression="tiff_lzw")
    img = read_image(str(path))
    assert img.pixels.shape == (1, 3, 256, 256) and img.depth == 8
    np.testing.assert_array_equal(read_exact(path)[0], _pillow_rgb_like(path, "RGB"))


@pytest.mark.parametrize("compression", ["raw", "packbits", "group3", "group4", "tiff_lzw"])
def test_one_bit_becomes_gray(tmp_path, compression):
    bits = PILImage.fromarray(random_values((29, 37), np.uint8, seed=8) > 127)
    path = tmp_path / "bits.tif"
    bits.save(path, compression=compression)
    img = read_image(str(path))
    assert img.depth == 8 and img.pixels.shape == (1, 1, 29, 37)
    np.testing.assert_array_equal(read_exact(path)[0], _pillow_rgb_like(path, "L"))


def _with_photometric(data: bytes, value: int) -> bytes:
    """``data`` (a one-page little-endian TIFF) with its PhotometricInterpretation set."""
    data = bytearray(data)
    (offset,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, offset)
    for entry in range(offset + 2, offset + 2 + 12 * count, 12):
        if struct.unpack_from("<H", data, entry)[0] == 262:
            struct.pack_into("<H", data, entry + 8, value)
            return bytes(data)
    raise AssertionError("no PhotometricInterpretation tag")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_white_is_zero_is_inverted(tmp_path, dtype):
    values = random_values((7, 9, 1), dtype, seed=9)
    path = tmp_path / "white.tif"
    path.write_bytes(_with_photometric(raw_tiff(values), 0))
    np.testing.assert_array_equal(read_exact(path)[0], np.iinfo(dtype).max - values)
    if dtype == np.uint8:  # Pillow inverts 8-bit (not 16-bit: it keeps I;16 as stored)
        np.testing.assert_array_equal(read_exact(path)[0], _pillow_rgb_like(path, "L"))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_orientation_turns_the_pixels_as_pillow_does(tmp_path, orientation):
    from PIL import ImageOps

    values = random_values((5, 8, 3), np.uint8, seed=orientation)
    path = tmp_path / "o.tif"
    PILImage.fromarray(values).save(path, tiffinfo={274: orientation})
    with PILImage.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(read_exact(path)[0], expected)
    assert read_image_shape(str(path)) == (1, 3, *expected.shape[:2])


def test_associated_alpha_is_unpremultiplied(tmp_path):
    rgba = random_values((12, 13, 4), np.uint8, seed=10)
    PILImage.fromarray(rgba).save(tmp_path / "rgba.png")
    run_magick(
        str(tmp_path / "rgba.png"), "-define", "tiff:alpha=associated", str(tmp_path / "a.tif")
    )
    img = read_image(str(tmp_path / "a.tif"))
    assert img.has_alpha
    # Pillow's RGBa -> RGBA rounds to 8 bits first; convcli keeps the quotient's float
    difference = read_exact(tmp_path / "a.tif")[0].astype(int) - _pillow_rgb_like(
        tmp_path / "a.tif", "RGBA"
    )
    assert np.abs(difference).max() <= 1


def test_sixteen_bit_cmyk_as_imagemagick_converts_it(tmp_path):
    run_magick(str(SAMPLES / "coffee.png"), "-crop", "40x30+100+100", "-depth", "16",
            "-colorspace", "CMYK", str(tmp_path / "cmyk.tif"))  # fmt: skip
    run_magick(str(tmp_path / "cmyk.tif"), "-colorspace", "sRGB", "-depth", "16",
            str(tmp_path / "rgb.tif"))  # fmt: skip
    img = read_image(str(tmp_path / "cmyk.tif"))
    assert img.depth == 16 and img.pixels.shape == (1, 3, 30, 40)
    difference = read_exact(tmp_path / "cmyk.tif").astype(int) - read_exact(tmp_path / "rgb.tif")
    assert np.abs(difference).max() <= 1


def test_twelve_bit_samples_span_the_full_range(tmp_path):
    run_magick(str(SAMPLES / "camera.png"), "-crop", "40x30+200+200", "-depth", "12",
            str(tmp_path / "g12.tif"))  # fmt: skip
    run_magick(str(tmp_path / "g12.tif"), "-depth", "16", str(tmp_path / "g16.tif"))
    img = read_image(str(tmp_path / "g12.tif"))
    assert img.depth == 16
    # ImageMagick's 12-bit values scaled to 16 bits; convcli's 12-bit / 4095
    difference = read_exact(tmp_path / "g12.tif").astype(int) - read_exact(tmp_path / "g16.tif")
    assert np.abs(difference).max() <= 1


# Compressions whose strips are images of their own ------------------------------------------


@pytest.mark.parametrize("options", [["-c", "jpeg", "-r", "16"], ["-c", "jpeg", "-t"]])
@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_strips_and_tiles_decode_as_libtiff_does(tmp_path, options, channels):
    values = np.asarray(PILImage.open(SAMPLES / "astronaut.png").convert("RGB"))[:70, :90]
    values = values[..., :1] if channels == 1 else values
    path = run_tiffcp(tmp_path, raw_tiff(values), *options)
    img = read_image(str(path))
    assert img.pixels.shape == (1, channels, 70, 90) and img.depth == 8
    mode = "L" if channels == 1 else "RGB"
    np.testing.assert_array_equal(read_exact(path)[0], _pillow_rgb_like(path, mode))


def test_webp_tiles_decode_as_libvips_does(tmp_path):
    source = str(SAMPLES / "chelsea.png")
    run_vips("tiffsave", source, str(tmp_path / "w.tif"), "--tile", "--compression", "webp")
    run_vips("copy", str(tmp_path / "w.tif"), str(tmp_path / "w.png"))
    np.testing.assert_array_equal(read_exact(tmp_path / "w.tif"), read_exact(tmp_path / "w.png"))


def test_a_pyramid_reads_its_full_resolution_level(tmp_path):
    source = str(SAMPLES / "chelsea.png")
    run_vips("tiffsave", source, str(tmp_path / "p.tif"), "--tile", "--pyramid", "--tile-width",
          "64", "--tile-height", "64", "--compression", "deflate")  # fmt: skip
    assert read_image_shape(str(tmp_path / "p.tif")) == (1, 3, 300, 451)
    np.testing.assert_array_equal(read_exact(tmp_path / "p.tif"), read_exact(source))


def test_ome_tiff_sub_resolutions_are_skipped(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    levels = [random_values((3, 64 >> n, 80 >> n), np.uint8, seed=n) for n in range(3)]
    with tifffile.TiffWriter(tmp_path / "o.ome.tif") as writer:
        writer.write(levels[0], subifds=2, metadata={"axes": "CYX"}, photometric="minisblack")
        for level in levels[1:]:
            writer.write(level, subfiletype=1, photometric="minisblack")
    # OME stores the three channels as three pages of the full-resolution level
    assert read_image_shape(str(tmp_path / "o.ome.tif")) == (3, 1, 64, 80)
    np.testing.assert_array_equal(read_exact(tmp_path / "o.ome.tif")[..., 0], levels[0])


# Damaged and hostile files: one ImageError naming the file, nothing decoded past a lie ------


def _three_pages() -> bytearray:
    buffer = io.BytesIO()
    write_tiff(random_values((3, 4, 5, 1), np.uint8, seed=11), buffer, compress_level=0)
    return bytearray(buffer.getvalue())


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (lambda d: set_next_ifd(d, 2, ifd_offsets(bytes(d))[0]), "circular"),
        (lambda d: set_next_ifd(d, 1, 10**6), "invalid page offset"),
        (lambda d: set_tag(d, 1, 273, 0), "image data for 0 of its 1 strips"),
        (lambda d: set_tag(d, 2, 279, 0), "image data for 0 of its 1 strips"),
        (lambda d: set_tag(d, 0, 273, 10**6), "damaged TIFF"),
        (lambda d: set_tag(d, 1, 256, 6), "differ in size"),
        (lambda d: set_tag(d, 0, 258, 0), "cannot read"),
        (lambda d: set_tag(d, 0, 262, 8), r"cannot read \(photometric CIELAB\)"),
        # a later page over the limit: refused from its header, before any page is decoded
        (lambda d: [set_tag(d, 2, tag, 60000) for tag in (256, 257)], "60000x60000 x 3 frames"),
    ],
)
def test_damaged_structure_is_one_clear_error(tmp_path, damage, needle):
    data = _three_pages()
    damage(data)
    path = tmp_path / "damaged.tif"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match=rf"damaged\.tif: .*{needle}"):
        read_image(str(path))


def test_strips_past_the_image_are_ignored_as_libtiff_ignores_them(tmp_path):
    rgb = random_values((6, 5, 3), np.uint8, seed=12)
    buffer = io.BytesIO()
    with pytest.importorskip("tifffile").TiffWriter(buffer) as writer:
        writer.write(rgb, photometric="rgb", rowsperstrip=3)  # two strips
    data = bytearray(buffer.getvalue())
    set_tag(data, 0, 257, 3)  # ImageLength: the first strip holds the image
    path = tmp_path / "extra.tif"
    path.write_bytes(bytes(data))
    np.testing.assert_array_equal(read_exact(path)[0], rgb[:3])
    cv2 = opencv()  # libtiff (Pillow's own raw decoder reads this file wrong)
    np.testing.assert_array_equal(opencv_rgb(cv2.imread(str(path), cv2.IMREAD_UNCHANGED)), rgb[:3])


def test_pages_of_different_depths_are_refused(tmp_path):
    for n, dtype in enumerate((np.uint8, np.uint16)):
        (tmp_path / f"p{n}.tif").write_bytes(raw_tiff(random_values((4, 5, 1), dtype)))
    if TIFFCP is None:
        pytest.skip("tiffcp (libtiff-tools) is not installed")
    out = tmp_path / "mixed.tif"
    subprocess.run([TIFFCP, str(tmp_path / "p0.tif"), str(tmp_path / "p1.tif"), str(out)])
    with pytest.raises(ImageError, match=r"mixed\.tif: its pages differ in bit depth"):
        read_image(str(out))


def test_a_jpeg_tile_claiming_more_pixels_than_its_place_is_refused(tmp_path):
    values = random_values((64, 64, 3), np.uint8, seed=12)
    data = bytearray(run_tiffcp(tmp_path, raw_tiff(values), "-c", "jpeg", "-t").read_bytes())
    tifffile = pytest.importorskip("tifffile")
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        start = tif.pages[0].dataoffsets[0]
    frame = data.index(b"\xff\xc0", start)  # the first tile's frame header
    struct.pack_into(">HH", data, frame + 5, 30000, 30000)  # 700 bytes, 2.7 GB decoded
    path = tmp_path / "bomb.tif"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match=r"bomb\.tif: .*30000x30000 image .* room for 256x256"):
        read_image(str(path))


def _with_unreadable_tag(tag: int) -> bytearray:
    """A 3-page TIFF whose first page has XMP (700) data; ``tag``'s value points past the end."""
    buffer = io.BytesIO()
    with pytest.importorskip("tifffile").TiffWriter(buffer) as writer:
        for n in range(3):
            writer.write(random_values((4, 5, 3), np.uint8, seed=n), photometric="rgb",
                         extratags=[(700, 1, 100, bytes(100), True)])  # fmt: skip
    data = bytearray(buffer.getvalue())
    set_tag(data, 0, tag, len(data) + 1000)
    return data


def test_an_unreadable_tag_that_decoding_needs_is_an_error(tmp_path):
    path = tmp_path / "bits.tif"
    path.write_bytes(bytes(_with_unreadable_tag(258)))  # BitsPerSample: 3 values, an offset
    with pytest.raises(ImageError, match=r"bits\.tif: damaged TIFF .*258"):
        read_image(str(path))


def test_an_unreadable_tag_decoding_does_not_need_is_a_warning_not_stderr(tmp_path):
    path = tmp_path / "xmp.tif"
    path.write_bytes(bytes(_with_unreadable_tag(700)))
    img = read_image(str(path))
    assert img.pixels.shape == (3, 3, 4, 5)
    assert img.warnings == [f"{path}: TIFF tag 700 cannot be read; ignored"]
    command = [sys.executable, "-m", "convcli", "apply", str(path), "-k", "identity"]
    result = subprocess.run(
        [*command, "-o", str(tmp_path / "o.tif")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()  # the warning and the image's line; no tifffile log
    assert lines[0] == f"Warning: {img.warnings[0]}" and len(lines) == 2


def test_a_tiff_through_a_pipe_is_recognised_and_read(tmp_path):
    values = random_values((9, 11, 4), np.uint16, seed=13)
    source = run_tiffcp(tmp_path, raw_tiff(values), "-c", "lzw:2", "-t", "-w", "16", "-l", "16")
    out = tmp_path / "out.tif"
    command = [sys.executable, "-m", "convcli", "apply", "-", "-k", "identity", "-o", str(out)]
    # input= feeds a pipe, which convcli reads as a stream and recognises by its first bytes
    result = subprocess.run([*command, "-q"], input=source.read_bytes(), capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
    np.testing.assert_array_equal(read_exact(out)[0], values)


# One page keeps its integers (no float copy), over its own range ----------------------------

_LAYOUTS = {
    "gray8": ((9, 13), np.uint8, {}),
    "rgb8": ((9, 13, 3), np.uint8, {"photometric": "rgb"}),
    "rgba8": ((9, 13, 4), np.uint8, {"photometric": "rgb", "extrasamples": [2]}),
    "gray16": ((9, 13), np.uint16, {}),
    "rgb16": ((9, 13, 3), np.uint16, {"photometric": "rgb", "byteorder": ">"}),
    "planar": ((9, 13, 3), np.uint8, {"photometric": "rgb", "planarconfig": "separate"}),
    "tiled": (
        (40, 50, 3),
        np.uint8,
        {"photometric": "rgb", "tile": (16, 16), "compression": "zlib"},
    ),
    "channels5": ((9, 13, 5), np.uint16, {"photometric": "minisblack", "planarconfig": "contig"}),
}


@pytest.mark.parametrize("layout", list(_LAYOUTS))
def test_one_page_keeps_its_integers_and_pixels(tmp_path, layout):
    tifffile = pytest.importorskip("tifffile")
    shape, dtype, options = _LAYOUTS[layout]
    values = random_values(shape, dtype, seed=3)
    planar = options.get("planarconfig") == "separate"  # tifffile takes (S, H, W) then
    tifffile.imwrite(
        tmp_path / "x.tif", np.moveaxis(values, -1, 0) if planar else values, **options
    )
    img = read_image(str(tmp_path / "x.tif"))
    top = np.iinfo(dtype).max
    assert img.stored is not None and img.stored.top == top and img.stored.values.dtype == dtype
    planes = values[..., None] if values.ndim == 2 else values
    expected = (planes.astype(np.float32) / np.float32(top)).transpose(2, 0, 1)[None]
    np.testing.assert_array_equal(img.pixels, expected, strict=True)


def test_one_page_keeps_its_orientation_and_white_is_zero(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    values = random_values((9, 13), np.uint8, seed=4)
    tifffile.imwrite(
        tmp_path / "w.tif", values, photometric="miniswhite", extratags=[(274, "H", 1, 6, True)]
    )
    img = read_image(str(tmp_path / "w.tif"))
    assert img.stored is not None and img.pixels.shape == (1, 1, 13, 9)
    turned = np.rot90(255 - values, k=-1)  # orientation 6: turned clockwise to display
    np.testing.assert_array_equal(img.pixels[0, 0], turned.astype(np.float32) / np.float32(255))


def test_twelve_bit_page_keeps_its_integers_over_4095(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    run_magick(str(SAMPLES / "camera.png"), "-crop", "40x30+200+200", "-depth", "12",
               str(tmp_path / "g12.tif"))  # fmt: skip
    raw = tifffile.imread(tmp_path / "g12.tif")  # tifffile's own 12-bit unpacking
    img = read_image(str(tmp_path / "g12.tif"))
    assert img.stored is not None and img.stored.top == 4095 and int(raw.max()) <= 4095
    np.testing.assert_array_equal(img.pixels[0, 0], raw.astype(np.float32) / np.float32(4095))


@pytest.mark.parametrize(
    ("pages", "options"),
    [
        ([random_values((9, 13, 4), np.uint8)], {"photometric": "rgb", "extrasamples": [1]}),
        ([np.linspace(0, 1, 117, dtype=np.float32).reshape(9, 13)], {}),
        ([random_values((9, 13), np.uint8, seed=n) for n in range(2)], {}),
    ],
    ids=["premultiplied", "float", "pages"],
)
def test_floats_and_pages_are_not_kept_as_integers(tmp_path, pages, options):
    with pytest.importorskip("tifffile").TiffWriter(tmp_path / "x.tif") as writer:
        for page in pages:
            writer.write(page, **options)
    img = read_image(str(tmp_path / "x.tif"))
    assert img.stored is None and img.pixels.shape[0] == len(pages)
