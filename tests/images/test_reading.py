"""Reading and writing images: modes, depths, frames, EXIF, and files that lie."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given
from PIL import Image as PILImage

from convcli import ImageError, OutputError, ParameterError
from convcli.images.png import read_png16, write_png
from convcli.images.reading import read_image, read_image_shape
from convcli.images.writing import to_integers, write_image
from tests.paths import SAMPLES
from tests.strategies import mutations


def pil_save(tmp_path, name, image, **options):
    path = tmp_path / name
    image.save(path, **options)
    return str(path)


@pytest.mark.parametrize(
    ("name", "top"), [("x.png", 255), ("x.jpg", 255), ("x16.png", 65535), ("x16.ppm", 1000)]
)
def test_integer_images_keep_what_was_decoded(tmp_path, name, top):
    """8- and 16-bit images keep their integers (``stored``) and make the float pixels,
    exactly the integers over their top, only when asked."""
    values = np.random.default_rng(5).integers(0, top + 1, (7, 6, 3))
    path = tmp_path / name
    if name == "x16.ppm":  # maxval 1000: read as values / 1000
        path.write_bytes(b"P6 6 7 1000\n" + values.astype(">u2").tobytes())
    elif top == 65535:
        write_image(values.transpose(2, 0, 1) / top, str(path), depth=16)
    else:
        PILImage.fromarray(values.astype(np.uint8)).save(path)
    image = read_image(str(path))
    assert image.stored is not None and image.stored.top == top
    assert image.shape == (1, 3, 7, 6) == image.stored.values.shape
    assert np.issubdtype(image.stored.values.dtype, np.integer)
    expected = np.divide(image.stored.values, np.float32(top), dtype=np.float32)
    np.testing.assert_array_equal(image.pixels, expected)
    if name != "x.jpg":  # lossless: the file's own values
        np.testing.assert_array_equal(image.stored.values[0].transpose(1, 2, 0), values)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_sixteen_bit_png_round_trip_is_exact(tmp_path, channels):
    values = np.random.default_rng(channels).integers(0, 65536, (channels, 9, 11), np.uint16)
    path = str(tmp_path / "x.png")
    write_image(values / 65535, path, depth=16)
    img = read_image(path)
    assert img.depth == 16
    np.testing.assert_array_equal(to_integers(img.pixels[0], 16), values)
    assert read_image_shape(path) == (1, channels, 9, 11)


def test_sixteen_bit_gray_tiff_and_pillow_png_round_trip(tmp_path):
    values = np.random.default_rng(0).integers(0, 65536, (6, 5), np.uint16)
    for name in ("x.tif", "y.png"):
        path = pil_save(tmp_path, name, PILImage.fromarray(values))
        img = read_image(path)
        assert img.depth == 16
        np.testing.assert_array_equal(to_integers(img.pixels[0, 0], 16), values)


@pytest.mark.parametrize("kind", [0, 1, 2, 3, 4])
def test_png16_reader_undoes_every_row_filter(kind):
    rng = np.random.default_rng(kind)
    pixels = rng.integers(0, 65536, (4, 5, 3), np.uint16)
    rows = pixels.astype(">u2").view(np.uint8).reshape(4, -1).astype(np.int64)
    bpp = 6
    encoded = []
    previous = np.zeros(rows.shape[1], np.int64)
    for row in rows:
        left = np.concatenate([np.zeros(bpp, np.int64), row[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int64), previous[:-bpp]])
        if kind == 0:
            pred = 0 * row
        elif kind == 1:
            pred = left
        elif kind == 2:
            pred = previous
        elif kind == 3:
            pred = (left + previous) // 2
        else:
            p = left + previous - upleft
            pa, pb, pc = abs(p - left), abs(p - previous), abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, previous, upleft))
        encoded.append(bytes([kind]) + ((row - pred) % 256).astype(np.uint8).tobytes())
        previous = row

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 5, 4, 16, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"".join(encoded)))
        + chunk(b"IEND", b"")
    )
    np.testing.assert_array_equal(read_png16(data, "x"), pixels)


def _png16_gray_alpha() -> bytes:
    buffer = io.BytesIO()
    write_png(np.arange(2 * 3 * 2, dtype=np.uint16).reshape(2, 3, 2) * 1000, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (lambda d: d[:-12], "ends before its IEND"),  # no IEND
        (lambda d: d[:-20], "ends before its IEND"),  # IDAT cut short
        (lambda d: d[:45] + bytes([d[45] ^ 1]) + d[46:], "'IDAT' chunk fails its CRC"),
        (lambda d: d[:27] + b"\x20" + d[28:], "damaged PNG header"),  # filter method 32
        (lambda d: d[:19] + bytes([d[19] ^ 1]) + d[20:], "'IHDR' chunk fails its CRC"),
    ],
)
def test_png16_reader_refuses_what_pillow_and_libpng_refuse(damage, needle):
    data = _png16_gray_alpha()
    assert read_png16(data, "x").shape == (2, 3, 2)
    with pytest.raises(ImageError, match=needle):
        read_png16(damage(data), "x")


def test_float_tiff_and_npy_are_raw(tmp_path):
    values = np.array([[-0.5, 2.5]], np.float32)
    img = read_image(pil_save(tmp_path, "f.tif", PILImage.fromarray(values)))
    assert img.depth == 32 and img.pixels[0, 0].tolist() == [[-0.5, 2.5]]
    np.save(tmp_path / "a.npy", np.arange(24.0).reshape(2, 3, 4))
    img = read_image(str(tmp_path / "a.npy"))
    assert img.pixels.shape == (1, 2, 3, 4) and img.pixels.max() == 23
    assert read_image_shape(str(tmp_path / "a.npy")) == (1, 2, 3, 4)
    write_image(np.full((1, 2, 2), 7.5), str(tmp_path / "out.npy"))
    assert np.load(tmp_path / "out.npy").tolist() == [[[7.5, 7.5], [7.5, 7.5]]]


def test_exif_orientation_is_applied(tmp_path):
    image = PILImage.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4) * 20)
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90 clockwise to display
    path = pil_save(tmp_path, "o.jpg", image, exif=exif.tobytes(), quality=100)
    assert read_image(path).pixels.shape == (1, 1, 4, 3)
    assert read_image_shape(path) == (1, 1, 4, 3)


def test_malformed_exif_loads_with_a_warning(tmp_path):
    image = PILImage.new("RGB", (4, 3))
    path = pil_save(tmp_path, "bad.jpg", image, exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff")
    img = read_image(path)
    assert img.pixels.shape == (1, 3, 3, 4)
    assert all("EXIF" in w for w in img.warnings)


def test_multi_frame_gif_tiff_and_apng(tmp_path):
    frames = [PILImage.new("L", (5, 4), v) for v in (0, 128, 255)]
    for name in ("a.gif", "a.tif", "a.png"):
        path = pil_save(tmp_path, name, frames[0], save_all=True, append_images=frames[1:])
        img = read_image(path)
        assert img.pixels.shape[0] == 3, name
        assert read_image_shape(path)[0] == 3
    out = str(tmp_path / "out.tif")
    write_image(np.stack([np.zeros((1, 4, 5)), np.ones((1, 4, 5))]), out)
    assert read_image(out).pixels.shape == (2, 1, 4, 5)


# Files that lie -----------------------------------------------------------------------------


def test_empty_text_truncated_and_missing(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "text.png"
    text.write_text("hello, I am not a PNG\n")
    good = (SAMPLES / "chelsea.png").read_bytes()
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(good[: len(good) // 2])
    jpeg = io.BytesIO()
    PILImage.new("RGB", (64, 64), "red").save(jpeg, format="JPEG")
    cut_jpeg = tmp_path / "cut.jpg"
    cut_jpeg.write_bytes(jpeg.getvalue()[:200])
    for path, needle in [
        (empty, "empty"),
        (text, "not an image"),
        (truncated, "truncated"),
        (cut_jpeg, "truncated"),
        (tmp_path / "nope.png", "no such file"),
    ]:
        with pytest.raises(ImageError, match=needle) as info:
            read_image(str(path))
        assert str(path) in str(info.value)


def _huge_png_header(width: int, height: int) -> bytes:
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00" * 100))
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_huge_png_header(20000, 20000))
    with pytest.raises(ImageError, match=r"400,000,000 pixels.*--max-pixels 400000000"):
        read_image(str(path))
    with pytest.raises(ImageError, match="truncated|damaged"):  # allowed, then it fails to decode
        read_image(str(path), max_pixels=10**9)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("x.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"),
        ("x.pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"),
    ],
)
def test_formats_that_run_outside_programs_are_refused(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageError, match=r"reads raster formats \(PNG, .*\) and NumPy .npy arrays"):
        read_image(str(path))


def test_pickled_npy_is_refused(tmp_path):
    np.save(tmp_path / "p.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ImageError, match="pickle"):
        read_image(str(tmp_path / "p.npy"))
    np.save(tmp_path / "q.npy", np.array([object()] * 9).reshape(3, 3), allow_pickle=True)
    for path in (tmp_path / "p.npy", tmp_path / "q.npy"):  # the header alone says so
        with pytest.raises(ImageError, match="pickle"):
            read_image_shape(str(path))
    np.save(tmp_path / "s.npy", np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ImageError, match="not real numbers"):
        read_image_shape(str(tmp_path / "s.npy"))


# Writing ------------------------------------------------------------------------------------


def test_values_clip_and_never_wrap(tmp_path):
    path = str(tmp_path / "c.png")
    write_image(np.array([[[-0.5, 0.5, 1.5, np.nan]]]), path)
    assert np.asarray(PILImage.open(path)).tolist() == [[0, 128, 255, 0]]


def test_rgba_to_jpeg_is_flattened_over_white_with_a_warning(tmp_path):
    rgba = np.zeros((4, 8, 8), np.float32)
    rgba[3, :, 4:] = 1  # black, transparent on the left half, opaque on the right
    warnings = write_image(rgba, str(tmp_path / "a.jpg"))
    assert warnings == [
        f"{tmp_path / 'a.jpg'}: JPEG has no alpha channel; flattened over white "
        f"(--background to choose)"
    ]
    pixels = read_image(str(tmp_path / "a.jpg")).pixels
    assert pixels.shape[1] == 3
    assert pixels[..., :3].min() > 0.95 and pixels[..., 5:].max() < 0.05


@pytest.mark.parametrize(
    ("pixels", "name", "kwargs", "error", "needle"),
    [
        (np.ones((5, 2, 2)), "x.png", {}, OutputError, "5 channels"),
        (np.ones((3, 2, 2)), "x.jpg", {"depth": 16}, OutputError, "8 bits"),
        (np.ones((2, 3, 2, 2)), "x.png", {}, OutputError, "frames"),
        (np.ones((3, 2, 2)), "x.gif2", {}, ParameterError, "convcli writes"),
    ],
)
def test_write_errors(tmp_path, pixels, name, kwargs, error, needle):
    path = tmp_path / name
    with pytest.raises(error, match=needle):
        write_image(pixels, str(path), **kwargs)
    assert not path.exists()


def test_sample_images_load():
    shapes = {p.name: read_image(str(p)).pixels.shape for p in SAMPLES.glob("*.png")}
    assert shapes["camera.png"] == (1, 1, 512, 512)
    assert shapes["chelsea.png"] == (1, 3, 300, 451)


# Fuzzing: mutated real images give an Image or ImageError, nothing else. --------------------

_SEEDS = []
for _name, _fmt in (("chelsea.png", "PNG"), ("coffee.png", "JPEG")):
    _buffer = io.BytesIO()
    PILImage.open(SAMPLES / _name).crop((0, 0, 24, 16)).save(_buffer, format=_fmt)
    _SEEDS.append(_buffer.getvalue())


@given(mutations(_SEEDS))
def test_fuzz_mutated_images(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "m.img"
    path.write_bytes(data)
    try:
        img = read_image(str(path))
    except ImageError:
        return
    assert img.pixels.ndim == 4 and img.pixels.dtype == np.float32


def test_large_png_is_written_as_several_idat_chunks_pillow_reads(tmp_path):
    values = np.random.default_rng(3).integers(0, 256, (700, 900, 3), np.uint8)
    path = tmp_path / "big.png"
    write_image(values.transpose(2, 0, 1).astype(np.float32) / 255, str(path))
    assert path.read_bytes().count(b"IDAT") > 1  # 1.9 MB of rows: more than one piece
    with PILImage.open(path) as im:
        np.testing.assert_array_equal(np.asarray(im), values)


def test_a_file_named_npy_that_is_not_one_says_so(tmp_path):
    path = tmp_path / "k.npy"
    path.write_text("1 2 1\n")
    for read in (read_image, read_image_shape):
        with pytest.raises(ImageError, match=r"k.npy: not a NumPy .npy array"):
            read(str(path))
    other = tmp_path / "notes.dat"
    other.write_text("hello\n")
    with pytest.raises(ImageError, match=r"NumPy .npy arrays"):
        read_image(str(other))


@pytest.mark.parametrize(
    ("shape", "hint"),
    [((6, 8, 3), "transpose(2, 0, 1)"), ((2, 6, 8, 4), "transpose(0, 3, 1, 2)")],
)
def test_channels_last_npy_is_read_as_stored_with_a_warning(tmp_path, shape, hint):
    array = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    np.save(tmp_path / "hwc.npy", array)
    image = read_image(str(tmp_path / "hwc.npy"))
    assert image.pixels.shape == (1,) * (4 - len(shape)) + shape  # the rule stays (C, H, W)
    assert len(image.warnings) == 1
    assert "read as (" in image.warnings[0] and hint in image.warnings[0]
    assert "hwc.npy" in image.warnings[0] and "channels-last" in image.warnings[0]


@pytest.mark.parametrize("shape", [(3, 8, 8), (8, 8), (16, 2, 3), (5, 5, 5), (1, 3, 8, 8)])
def test_channels_first_npy_reads_without_warnings(tmp_path, shape):
    np.save(tmp_path / "chw.npy", np.zeros(shape, np.float32))
    assert read_image(str(tmp_path / "chw.npy")).warnings == []


def test_a_npy_header_past_numpys_limit_is_one_line_naming_it(tmp_path):
    # numpy's three-line refusal came through as the message, speaking of allow_pickle.
    from tests.kernels.test_numpy_files import _long_header_npy

    path = tmp_path / "a.npy"
    path.write_bytes(_long_header_npy())
    with pytest.raises(ImageError) as refused:
        read_image(str(path))
    assert str(refused.value).startswith(f"{path}: its .npy header is over NumPy's safety")
    assert "\n" not in str(refused.value) and "pickle" not in str(refused.value)
