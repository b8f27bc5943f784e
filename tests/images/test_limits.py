"""limits.py: the pixel limit from what a file declares, frame by frame and entry by entry,
and read_image's use of it: refusals come before the decoder is asked for memory."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image as PILImage

from convcli.errors import ImageError
from convcli.images.limits import (
    MAX_FRAMES,
    check_frame,
    check_frames,
    check_ico,
    check_pixels,
    check_samples,
    gif_frames,
    webp_canvas,
)
from convcli.images.reading import read_image, read_image_shape
from tests import hostile


def test_pixels_frames_and_samples():
    check_pixels("a", 100, 100, 2, 20_000)
    with pytest.raises(ImageError, match=r"--max-pixels 30000$"):
        check_pixels("a", 100, 100, 3, 20_000)
    check_samples("a", "pages", 1, 4, 100, 100, 10_000)
    with pytest.raises(ImageError, match="5 channels of 100x100 x 1 pages"):
        check_samples("a", "pages", 1, 5, 100, 100, 10_000)


def test_a_frame_of_another_size_is_refused_before_it_is_decoded():
    check_frame("a.gif", 2, (8, 8), (8, 8))
    with pytest.raises(ImageError, match="frame 2 is 9x8, the first frame 8x8"):
        check_frame("a.gif", 2, (9, 8), (8, 8))


def _bmp_entry_ico(width: int, height: int) -> bytes:
    """An ICO whose entry is a BMP (DIB) declaring ``width`` x ``height``."""
    dib = struct.pack("<IiiHHIIiiII", 40, width, 2 * height, 1, 32, 0, 0, 0, 0, 0, 0)
    entry = struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(dib) + 64, 22)
    return struct.pack("<HHH", 0, 1, 1) + entry + dib + bytes(64)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (hostile.ico_with_huge_png(), "20000x20000 is 400,000,000 pixels"),
        (_bmp_entry_ico(30000, 30000), "30000x30000 is 900,000,000 pixels"),
    ],
)
def test_every_image_an_icon_embeds_is_checked_from_its_own_header(tmp_path, data, needle):
    with pytest.raises(ImageError, match=needle):
        check_ico(data, "i.ico", 1_000_000)
    (tmp_path / "i.ico").write_bytes(data)
    for read in (read_image, read_image_shape):
        with pytest.raises(ImageError, match=needle):
            read(str(tmp_path / "i.ico"))


def test_a_real_icon_reads(tmp_path):
    values = hostile.pixels(16, 16, 4)
    PILImage.fromarray(values).save(tmp_path / "i.ico", sizes=[(16, 16)])
    check_ico((tmp_path / "i.ico").read_bytes(), "i.ico", 256)
    image = read_image(str(tmp_path / "i.ico"))
    assert image.pixels.shape == (1, 4, 16, 16)
    np.testing.assert_array_equal(image.pixels[0, 3], values[..., 3] / np.float32(255))


def test_a_damaged_icon_directory_is_an_image_error():
    data = bytearray(hostile.ico_with_huge_png())
    data[18:22] = struct.pack("<I", 1 << 30)  # the entry's offset, past the end
    with pytest.raises(ImageError, match="damaged ICO directory"):
        check_ico(bytes(data), "i.ico", 1_000_000)


def test_a_webp_canvas_is_checked_before_pillow_opens_it(tmp_path):
    (tmp_path / "w.webp").write_bytes(hostile.webp_with_huge_canvas())
    with pytest.raises(ImageError, match="16383x16383 is 268,402,689 pixels"):
        read_image(str(tmp_path / "w.webp"))
    for options in ({"lossless": True}, {"quality": 80}):  # VP8L and VP8 bitstreams
        buffer = io.BytesIO()
        PILImage.new("RGB", (300, 200)).save(buffer, format="WEBP", **options)
        assert webp_canvas(buffer.getvalue()) == (300, 200)
        (tmp_path / "s.webp").write_bytes(buffer.getvalue())
        with pytest.raises(ImageError, match="300x200 is 60,000 pixels"):
            read_image(str(tmp_path / "s.webp"), max_pixels=50_000)


def test_frames_are_checked_as_the_decoder_reaches_them(tmp_path):
    (tmp_path / "g.gif").write_bytes(hostile.gif_with_huge_second_frame(9, 8))
    with pytest.raises(ImageError, match="frame 1 is 9x8, the first frame 8x8"):
        read_image(str(tmp_path / "g.gif"))


def test_an_npy_header_is_checked_before_its_array_is_allocated(tmp_path):
    (tmp_path / "a.npy").write_bytes(hostile.npy_header_only((1, 4, 30000, 30000), "<f4"))
    with pytest.raises(ImageError, match="over the limit"):
        read_image(str(tmp_path / "a.npy"))
    (tmp_path / "b.npy").write_bytes(hostile.npy_header_only((3, 100, 100)))
    with pytest.raises(ImageError, match="declares a .3, 100, 100. array of float64"):
        read_image(str(tmp_path / "b.npy"))
    (tmp_path / "c.npy").write_bytes(hostile.npy_header_only((64, 100, 100), "<u1"))
    with pytest.raises(ImageError, match="64 channels"):
        read_image(str(tmp_path / "c.npy"), max_pixels=20_000)


def test_a_decode_error_is_never_swallowed_by_the_exif_step(tmp_path):
    # getexif() loads a PNG; its decode error used to become a warning and a black image.
    (tmp_path / "g.png").write_bytes(hostile.garbage_idat_png())
    with pytest.raises(ImageError, match="damaged or truncated PNG data"):
        read_image(str(tmp_path / "g.png"))


def test_truncated_images_stay_refused_whatever_pillow_was_told(tmp_path):
    from PIL import ImageFile

    data = hostile.encoded(hostile.pixels(), "JPEG")
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # convcli's setting, checked by behaviour
    with pytest.raises(ImageError, match="truncated"):
        read_image(str(tmp_path / "t.jpg"))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize(("bits", "colour"), [(16, 4), (16, 2), (8, 6)])
def test_an_over_long_idat_is_inflated_only_as_far_as_the_rows(tmp_path, bits, colour):
    (tmp_path / "l.png").write_bytes(hostile.png(8, 8, bits, colour, hostile.zeros_zlib(64 << 20)))
    image = read_image(str(tmp_path / "l.png"))
    assert image.pixels.shape[2:] == (8, 8) and not image.pixels.any()


def test_shape_of_a_png_reads_no_pixels(tmp_path):
    data = hostile.png(50000, 40000, 8, 2, hostile.zeros_zlib(1 << 20))
    (tmp_path / "h.png").write_bytes(data)
    assert read_image_shape(str(tmp_path / "h.png")) == (1, 3, 40000, 50000)
    (tmp_path / "g.png").write_bytes(hostile.garbage_idat_png())
    assert read_image_shape(str(tmp_path / "g.png")) == (1, 3, 8, 8)


def test_encoded_bytes_in_a_buffer_are_what_pillow_reads():
    # The fuzz seeds and these files are all read back by Pillow itself: a sanity check
    # that the generators make what they claim.
    with PILImage.open(io.BytesIO(hostile.gif_with_huge_second_frame())) as image:
        assert image.size == (8, 8) and image.n_frames == 2


# The frame limit: counted as frames are reached, refused at the first past it ----------------


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _animated(fmt: str, frames: int, **options) -> bytes:
    images = [PILImage.fromarray(hostile.pixels(6, 5, seed=i)) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, format=fmt, save_all=True, append_images=images[1:], **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "options",
    [{}, {"comment": b"note", "loop": 0, "duration": 40}, {"optimize": False, "disposal": 2}],
)
def test_gif_frames_are_counted_as_pillow_counts_them(options):
    data = _animated("GIF", 7, **options)
    assert gif_frames(data, 100) == PILImage.open(io.BytesIO(data)).n_frames == 7
    assert gif_frames(data, 3) == 4  # one past the limit is enough to refuse
    # Bytes between blocks start nothing: Pillow reads on past them, and so does the count.
    start = data.index(b"\x2c", 13 + 3 * (2 << (data[10] & 7)))
    padded = data[:start] + b"\x00\x07" + data[start:]
    assert gif_frames(padded, 100) == PILImage.open(io.BytesIO(padded)).n_frames == 7


def test_check_frames_names_the_count_or_that_there_are_more():
    check_frames("a", 5, 5)
    with pytest.raises(ImageError, match=r"a: 6 frames, over the limit of 5; .* --max-frames 6$"):
        check_frames("a", 6, 5)
    with pytest.raises(ImageError, match=r"a: more than 5 frames, .* with --max-frames$"):
        check_frames("a", 6, 5, counted=True)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("g.gif", lambda: _animated("GIF", 3)),
        ("a.png", lambda: _animated("PNG", 3)),
        ("w.webp", lambda: _animated("WEBP", 3, lossless=True)),
        ("m.mpo", lambda: _animated("MPO", 3)),
        ("t.tif", lambda: _animated("TIFF", 3)),
        ("n.npy", lambda: _npy(np.zeros((3, 1, 2, 2), np.float32))),
        ("tiny.gif", lambda: hostile.gif_of_tiny_frames(3)),
    ],
)
def test_every_multi_frame_format_is_refused_past_max_frames(tmp_path, name, data):
    # (An MPO of 5 pictures Pillow wrote does not read at all, on main too: 3 here.)
    path = tmp_path / name
    path.write_bytes(data())
    assert read_image(str(path), max_frames=3).shape[0] == 3
    assert read_image_shape(str(path), max_frames=3)[0] == 3
    with pytest.raises(
        ImageError, match=r"(3|more than 2) frames, over the limit of 2; .*--max-frames"
    ):
        read_image(str(path), max_frames=2)
    with pytest.raises(ImageError, match=r"(3|more than 2) frames, over the limit of 2"):
        read_image_shape(str(path), max_frames=2)


def test_regions_are_refused_past_max_frames_too(tmp_path):
    from convcli.images.regions import open_regions

    path = tmp_path / "t.tif"
    path.write_bytes(_animated("TIFF", 5))
    assert open_regions(str(path), max_frames=5).shape[0] == 5
    with pytest.raises(ImageError, match="more than 4 frames"):
        open_regions(str(path), max_frames=4)
    np.save(tmp_path / "n.npy", np.zeros((5, 1, 2, 2), np.float32))
    with pytest.raises(ImageError, match="5 frames, over the limit of 4"):
        open_regions(str(tmp_path / "n.npy"), max_frames=4)


def test_the_default_limit_refuses_a_gif_of_100000_tiny_frames_from_its_count(tmp_path):
    path = tmp_path / "many.gif"
    path.write_bytes(hostile.gif_of_tiny_frames(100_000))
    with pytest.raises(ImageError, match=f"more than {MAX_FRAMES:,} frames"):
        read_image(str(path))
    with pytest.raises(ImageError, match=f"more than {MAX_FRAMES:,} frames"):
        read_image_shape(str(path))
