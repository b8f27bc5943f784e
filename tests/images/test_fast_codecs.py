"""The fast codecs give exactly Pillow's pixels and JPEG files, or step aside."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from convcli.errors import ImageError
from convcli.images import fast_codecs
from convcli.images.reading import read_image
from convcli.images.writing import write_image

pytest.importorskip("imagecodecs")


def _smooth(width: int, height: int) -> np.ndarray:
    noise = np.random.default_rng(3).integers(0, 256, (9, 13, 3), np.uint8)
    return np.asarray(PILImage.fromarray(noise).resize((width, height), PILImage.BICUBIC))


def _encoded(image: PILImage.Image, **options) -> bytes:
    stream = io.BytesIO()
    image.save(stream, **options)
    return stream.getvalue()


def _both(tmp_path, data: bytes, monkeypatch) -> tuple:
    """read_image of ``data`` with the fast decoders, then with Pillow alone."""
    path = tmp_path / "image"
    path.write_bytes(data)
    fast = read_image(str(path))
    with monkeypatch.context() as patch:
        patch.setattr(fast_codecs, "_codecs", lambda: None)
        slow = read_image(str(path))
    return fast, slow


def _taken(data: bytes) -> bool:
    with PILImage.open(io.BytesIO(data)) as im:
        return fast_codecs.decode(data, im) is not None


def _assert_same(fast, slow) -> None:
    assert fast.pixels.dtype == slow.pixels.dtype == np.float32
    np.testing.assert_array_equal(fast.pixels, slow.pixels)
    assert (fast.depth, fast.has_alpha, fast.format) == (slow.depth, slow.has_alpha, slow.format)


CASES = [
    ("PNG", mode, {"interlace": interlace}) for mode in ("L", "RGB", "RGBA") for interlace in (0, 1)
] + [
    ("JPEG", mode, {"quality": 90, "subsampling": sub, "progressive": progressive})
    for mode in ("L", "RGB")
    for sub in (0, 1, 2)
    for progressive in (False, True)
]


@pytest.mark.parametrize(("fmt", "mode", "options"), CASES)
@pytest.mark.parametrize("size", [(101, 77), (17, 9), (1, 1)])
def test_same_pixels_as_pillow(tmp_path, monkeypatch, fmt, mode, options, size):
    data = _encoded(PILImage.fromarray(_smooth(*size)).convert(mode), format=fmt, **options)
    assert _taken(data)
    fast, slow = _both(tmp_path, data, monkeypatch)
    _assert_same(fast, slow)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_turns_alike(tmp_path, monkeypatch, orientation):
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    data = _encoded(PILImage.fromarray(_smooth(40, 24)), format="JPEG", exif=exif)
    assert _taken(data)
    fast, slow = _both(tmp_path, data, monkeypatch)
    _assert_same(fast, slow)
    assert fast.pixels.shape[2:] == ((40, 24) if orientation >= 5 else (24, 40))


def _apng() -> bytes:
    frames = [PILImage.fromarray(_smooth(8, 6)), PILImage.new("RGB", (8, 6), (9, 9, 9))]
    return _encoded(frames[0], format="PNG", save_all=True, append_images=frames[1:])


def _png_with_exif() -> bytes:
    exif = PILImage.Exif()
    exif[0x0112] = 6
    return _encoded(PILImage.fromarray(_smooth(8, 6)), format="PNG", exif=exif)


@pytest.mark.parametrize(
    "data",
    [
        _encoded(PILImage.fromarray(_smooth(8, 6)).convert("P"), format="PNG"),
        _encoded(PILImage.fromarray(_smooth(8, 6)).convert("1"), format="PNG"),
        _encoded(PILImage.fromarray(_smooth(8, 6)).convert("LA"), format="PNG"),
        _encoded(PILImage.fromarray(_smooth(8, 6)).convert("CMYK"), format="JPEG"),
        _apng(),
        _png_with_exif(),
    ],
    ids=["palette", "1-bit", "gray+alpha", "cmyk-jpeg", "apng", "png-exif"],
)
def test_other_layouts_go_to_pillow(tmp_path, monkeypatch, data):
    assert not _taken(data)
    fast, slow = _both(tmp_path, data, monkeypatch)
    _assert_same(fast, slow)


def test_data_after_the_jpeg_end_marker_is_ignored_as_pillow_ignores_it(tmp_path, monkeypatch):
    data = _encoded(PILImage.fromarray(_smooth(8, 6)), format="JPEG") + b"trailer"
    assert _taken(data)
    fast, slow = _both(tmp_path, data, monkeypatch)
    _assert_same(fast, slow)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_damaged_files_get_pillows_error(tmp_path, monkeypatch, fmt):
    data = _encoded(PILImage.fromarray(_smooth(64, 48)), format=fmt)
    path = tmp_path / "cut"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as fast:
        read_image(str(path))
    monkeypatch.setattr(fast_codecs, "_codecs", lambda: None)
    with pytest.raises(ImageError) as slow:
        read_image(str(path))
    assert str(fast.value) == str(slow.value)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("quality", [1, 50, 75, 95, 100])
@pytest.mark.parametrize("size", [(101, 77), (17, 9), (1, 1)])
def test_jpeg_files_are_pillows_byte_for_byte(tmp_path, monkeypatch, channels, quality, size):
    values = _smooth(*size)[..., :channels]
    pixels = values.transpose(2, 0, 1)[None].astype(np.float32) / 255
    fast = tmp_path / "fast.jpg"
    assert fast_codecs.encode_jpeg(values[..., 0] if channels == 1 else values, quality=quality)
    write_image(pixels, str(fast), quality=quality)
    monkeypatch.setattr(fast_codecs, "_codecs", lambda: None)
    slow = tmp_path / "slow.jpg"
    write_image(pixels, str(slow), quality=quality)
    assert fast.read_bytes() == slow.read_bytes()
