"""Damaged PNG, JPEG, GIF, TIFF and WebP files (bit flips, overwritten bytes, edited length
fields, truncation): each run either succeeds, when no decoder reported an error, with an
output of the size the header declares, or fails as one ``ImageError`` (exit 1, one
line). Never a traceback, a hang, or an output written after a decoder's error.

Most examples run through the library (``read_image``, ``write_image``), watching every
Pillow ``load`` for an error convcli might swallow; a few run the real command under an
address-space limit. ``CONVCLI_SLOW_TESTS=1`` runs many more.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import signal
from collections.abc import Iterator

import numpy as np
from hypothesis import HealthCheck, given, settings
from PIL import Image as PILImage
from PIL import ImageFile

from convcli.errors import ImageError
from convcli.images.png import write_png
from convcli.images.reading import read_image, read_image_shape
from convcli.images.writing import write_image
from tests import hostile
from tests.hostile import leftovers, run
from tests.strategies import damaged_files

SLOW = bool(os.environ.get("CONVCLI_SLOW_TESTS"))


def _saved(frames: list[np.ndarray], fmt: str, **options) -> bytes:
    images = [PILImage.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    extra = {"save_all": True, "append_images": images[1:]} if len(images) > 1 else {}
    images[0].save(buffer, format=fmt, **extra, **options)
    return buffer.getvalue()


def _seeds() -> list[bytes]:
    rgb = [hostile.pixels(12, 16, seed=seed) for seed in range(3)]
    rgba = hostile.pixels(12, 16, 4)
    gray = hostile.pixels(12, 16, 1)
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotated: the output is 16x12
    return [
        _saved(rgb[:1], "PNG"),
        _saved([rgba], "PNG", compress_level=9),
        _saved([gray], "PNG"),
        _saved(rgb, "PNG"),  # APNG
        _saved([(rgb[0].astype(np.uint16) * 257)[..., 0]], "PNG"),  # 16-bit gray
        _saved(rgb[:1], "JPEG", quality=80),
        _saved(rgb[:1], "JPEG", progressive=True, exif=exif.tobytes()),
        _saved(rgb, "GIF"),
        _saved(rgb[:1], "TIFF", compression="tiff_lzw"),
        _saved(rgb, "TIFF", compression="tiff_deflate"),
        _saved([rgba], "TIFF"),
        _saved(rgb[:1], "WEBP", quality=80),
        _saved([rgba], "WEBP", lossless=True),
        _saved(rgb, "WEBP", lossless=True),  # animated
        # Beyond the five: the paths convcli decodes itself or byte by byte, and containers.
        _png16(rgba),  # 16-bit RGBA: both bytes through Pillow's decoder
        _png16(rgba[..., 2:]),  # 16-bit gray+alpha: convcli's own decoder
        _saved([rgba], "ICO", sizes=[(16, 12)]),
        _saved(rgb[:1], "BMP"),
    ]


def _png16(values: np.ndarray) -> bytes:
    """A 16-bit PNG of ``values`` (H, W, C), written by convcli (Pillow cannot)."""
    buffer = io.BytesIO()
    write_png(values.astype(np.uint16) * 257, buffer)
    return buffer.getvalue()


SEEDS = _seeds()


@contextlib.contextmanager
def decoder_errors() -> Iterator[list[BaseException]]:
    """Every exception raised by a Pillow ``load`` (the base class's and each plugin's
    own) while the block runs, whether or not someone catches it afterwards."""
    raised: list[BaseException] = []
    classes = [ImageFile.ImageFile]
    for cls in classes:  # every subclass, found as the list grows
        classes.extend(sub for sub in cls.__subclasses__() if sub not in classes)
    patched = [cls for cls in classes if "load" in vars(cls)]

    def watching(load):
        @functools.wraps(load)
        def wrapper(self, *args, **kwargs):
            try:
                return load(self, *args, **kwargs)
            except BaseException as err:
                raised.append(err)
                raise

        return wrapper

    originals = {cls: vars(cls)["load"] for cls in patched}
    for cls, load in originals.items():
        cls.load = watching(load)
    try:
        yield raised
    finally:
        for cls, load in originals.items():
            cls.load = load


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """A hang is a failure: SIGALRM interrupts the example."""

    def expired(signum, frame):
        raise TimeoutError(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _declared(path: str) -> tuple[int, int, int] | None:
    """(frames, height, width) from the header alone, or None if the header is refused."""
    try:
        frames, _, height, width = read_image_shape(path)
    except ImageError:
        return None
    return frames, height, width


def _examples(default: int, slow: int):
    return settings(
        max_examples=slow if SLOW else default,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


def _written(tmp_path_factory, data: bytes):
    """A fresh directory per example (hypothesis reuses a test's fixtures) holding ``data``."""
    path = tmp_path_factory.mktemp("fuzz") / "damaged.img"
    path.write_bytes(data)
    return path.parent, path


@_examples(60, 3000)
@given(data=damaged_files(SEEDS))
def test_a_damaged_file_is_read_whole_or_refused(tmp_path_factory, data):
    tmp_path, path = _written(tmp_path_factory, data)
    declared = _declared(str(path))
    with time_limit(30), decoder_errors() as raised:
        try:
            image = read_image(str(path))
        except ImageError:
            return
    assert not raised, f"a decoder error was swallowed: {raised[0]!r}"
    frames, _, height, width = image.pixels.shape
    assert declared == (frames, height, width), "the header and the pixels disagree"
    out = tmp_path / "out.npy"
    write_image(image.pixels, str(out))
    assert np.load(out).shape[-2:] == (height, width)


@_examples(6, 150)
@given(data=damaged_files(SEEDS))
def test_the_real_command_on_a_damaged_file(tmp_path_factory, data):
    tmp_path, path = _written(tmp_path_factory, data)
    with decoder_errors() as raised:
        try:
            expected = read_image(str(path)).pixels.shape
        except ImageError:
            expected = None
    assert not raised or expected is None
    out = tmp_path / "out.npy"
    result = run("apply", path, "-k", "identity", "-o", out, "-q")
    assert path.read_bytes() == data
    assert leftovers(tmp_path) == []
    if expected is None:
        hostile.assert_one_error(result)
        assert not out.exists()
    else:
        assert result.returncode == 0 and result.stderr == "", result.stderr
        assert np.load(out).shape[-2:] == expected[-2:]
