"""PNG files are checked chunk by chunk whoever decodes them: short image data, unknown
critical chunks and damaged critical chunks fail the input, a damaged ancillary chunk is
left out with a warning, and a colour key becomes alpha, as libpng and libvips make it."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import zlib

import numpy as np
import pytest
from PIL import Image as PILImage

from convcli.errors import ImageError
from convcli.images import fast_codecs, png_chunks
from convcli.images.reading import read_image
from tests.hostile import chunk

# colour type -> samples per pixel
SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _rows(width: int, height: int, bits: int, colour: int, seed: int = 0) -> bytes:
    """Filtered rows (filter type 0) of random samples."""
    pitch = -(-width * SAMPLES[colour] * bits // 8)
    values = np.random.default_rng(seed).integers(0, 256, (height, pitch), np.uint8)
    if colour == 3:  # indices into a palette of 4 (2 bits would do for every depth)
        values &= 0x55 if bits < 8 else 3
    return b"".join(b"\0" + row.tobytes() for row in values)


def _png(
    width: int,
    height: int,
    bits: int,
    colour: int,
    idat: bytes,
    *,
    before: bytes = b"",
    after: bytes = b"",
) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, bits, colour, 0, 0, 0)
    palette = chunk(b"PLTE", bytes(range(12))) if colour == 3 else b""
    return (
        png_chunks.SIGNATURE
        + chunk(b"IHDR", header)
        + palette
        + before
        + chunk(b"IDAT", idat)
        + after
        + chunk(b"IEND", b"")
    )


def _read(tmp_path, data: bytes, monkeypatch, *, fast: bool):
    path = tmp_path / "image.png"
    path.write_bytes(data)
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(fast_codecs, "_codecs", lambda: None)
        return read_image(str(path))


LAYOUTS = [(8, 0), (8, 2), (8, 6), (8, 4), (8, 3), (2, 0), (4, 3), (16, 0), (16, 2), (16, 4)]


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(("bits", "colour"), LAYOUTS)
def test_image_data_that_ends_early_fails_the_input(tmp_path, monkeypatch, bits, colour, fast):
    # A complete zlib stream holding half the rows: Pillow zero-filled the rest.
    rows = _rows(64, 64, bits, colour)
    whole = _png(64, 64, bits, colour, zlib.compress(rows))
    assert _read(tmp_path, whole, monkeypatch, fast=fast).pixels.shape[2:] == (64, 64)
    short = _png(64, 64, bits, colour, zlib.compress(rows[: len(rows) // 2]))
    with pytest.raises(ImageError, match=r"image\.png: damaged or truncated PNG data \(its image"):
        _read(tmp_path, short, monkeypatch, fast=fast)


def _apng(frames: int = 3) -> bytes:
    rng = np.random.default_rng(5)
    images = [
        PILImage.fromarray(rng.integers(0, 256, (16, 20, 3), np.uint8)) for _ in range(frames)
    ]
    stream = io.BytesIO()
    images[0].save(stream, "PNG", save_all=True, append_images=images[1:])
    return stream.getvalue()


def _rechunked(data: bytes, change) -> bytes:
    """PNG ``data`` with each (type, payload) replaced by ``change``'s list of them."""
    out = [data[:8]]
    for kind, payload in png_chunks.check_png(data, "x").chunks:
        out.extend(chunk(k, bytes(p)) for k, p in change(kind, bytes(payload)))
    return b"".join(out)


def test_an_apng_frame_whose_data_ends_early_fails_the_input(tmp_path, monkeypatch):
    # Pillow kept the previous frame's pixels for frame 1, silently.
    seen = []

    def halve_second(kind, payload):
        if kind == b"fdAT":
            seen.append(kind)
            if len(seen) == 1:
                rows = zlib.decompress(payload[4:])
                payload = payload[:4] + zlib.compress(rows[: len(rows) // 2])
        return [(kind, payload)]

    assert _read(tmp_path, _apng(), monkeypatch, fast=True).pixels.shape == (3, 3, 16, 20)
    with pytest.raises(ImageError, match=r"image\.png: damaged or truncated PNG data in frame 1"):
        _read(tmp_path, _rechunked(_apng(), halve_second), monkeypatch, fast=True)


def test_image_data_past_the_last_row_is_a_warning(tmp_path, monkeypatch):
    rows = _rows(8, 8, 8, 3)
    img = _read(
        tmp_path, _png(8, 8, 8, 3, zlib.compress(rows + bytes(900))), monkeypatch, fast=True
    )
    assert img.warnings == [
        f"{tmp_path / 'image.png'}: PNG image data goes on past its last row; the rest is ignored"
    ]


@pytest.mark.parametrize("fast", [True, False])
def test_an_unknown_critical_chunk_is_refused_an_unknown_ancillary_one_ignored(
    tmp_path, monkeypatch, fast
):
    idat = zlib.compress(_rows(8, 8, 8, 2))
    ancillary = _read(
        tmp_path, _png(8, 8, 8, 2, idat, before=chunk(b"quIt", b"?")), monkeypatch, fast=fast
    )
    assert ancillary.pixels.shape == (1, 3, 8, 8) and ancillary.warnings == []
    with pytest.raises(ImageError, match="PNG chunk 'QUIT' is critical .* unknown"):
        _read(tmp_path, _png(8, 8, 8, 2, idat, before=chunk(b"QUIT", b"?")), monkeypatch, fast=fast)


def _bad_crc(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


@pytest.mark.parametrize("fast", [True, False])
def test_a_damaged_ancillary_chunk_is_left_out_with_a_warning(tmp_path, monkeypatch, fast):
    # Pillow refused the whole file ("not an image convcli can read"); libpng warns.
    idat = zlib.compress(_rows(8, 8, 8, 2))
    clean = _read(tmp_path, _png(8, 8, 8, 2, idat), monkeypatch, fast=fast)
    text = _bad_crc(chunk(b"tEXt", b"Comment\0hello"))
    img = _read(tmp_path, _png(8, 8, 8, 2, idat, before=text), monkeypatch, fast=fast)
    np.testing.assert_array_equal(img.pixels, clean.pixels)
    assert img.warnings == [
        f"{tmp_path / 'image.png'}: the PNG's 'tEXt' chunk fails its CRC; left out"
    ]


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("where", ["IHDR", "IDAT"])
def test_a_damaged_critical_chunk_fails_the_input(tmp_path, monkeypatch, fast, where):
    # Pillow never checks an IDAT's CRC.
    data = _rechunked(
        _png(8, 8, 8, 2, zlib.compress(_rows(8, 8, 8, 2))),
        lambda kind, payload: [(kind, payload)],
    )
    start = data.index(where.encode()) - 4
    length = struct.unpack_from(">I", data, start)[0]
    end = start + 12 + length
    damaged = data[:start] + _bad_crc(data[start:end]) + data[end:]
    with pytest.raises(ImageError, match=f"damaged PNG data .the '{where}' chunk fails its CRC"):
        _read(tmp_path, damaged, monkeypatch, fast=fast)


def _keyed_png(bits: int, colour: int) -> tuple[bytes, np.ndarray]:
    """A PNG with a tRNS colour key equal to its first pixel, and its samples."""
    rng = np.random.default_rng(bits + colour)
    top = (1 << bits) - 1
    levels = min(4, top + 1)
    samples = rng.integers(0, levels, (6, 8, SAMPLES[colour])) * (top // (levels - 1))
    if bits < 8:
        bits_per_row = [
            np.unpackbits(r.astype(np.uint8)[:, None], axis=1)[:, 8 - bits :]
            for r in samples[..., 0]
        ]
        rows = b"".join(b"\0" + np.packbits(r.reshape(-1)).tobytes() for r in bits_per_row)
    else:
        dtype = ">u2" if bits == 16 else np.uint8
        rows = b"".join(b"\0" + r.astype(dtype).tobytes() for r in samples)
    key = chunk(b"tRNS", struct.pack(f">{SAMPLES[colour]}H", *samples[0, 0]))
    return _png(8, 6, bits, colour, zlib.compress(rows), before=key), samples


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(("bits", "colour"), [(8, 2), (8, 0), (16, 2), (16, 0), (2, 0), (1, 0)])
def test_a_colour_key_becomes_alpha(tmp_path, monkeypatch, bits, colour, fast):
    data, samples = _keyed_png(bits, colour)
    img = _read(tmp_path, data, monkeypatch, fast=fast)
    assert img.has_alpha and img.pixels.shape == (1, SAMPLES[colour] + 1, 6, 8)
    transparent = (samples == samples[0, 0]).all(axis=2)
    np.testing.assert_array_equal(img.pixels[0, -1], np.where(transparent, 0, 1))
    top = (1 << bits) - 1
    np.testing.assert_allclose(img.pixels[0, :-1], np.moveaxis(samples, 2, 0) / top, atol=1e-7)


@pytest.mark.skipif(shutil.which("vips") is None, reason="vips is not installed")
@pytest.mark.parametrize(("bits", "colour"), [(8, 2), (8, 0), (16, 2), (16, 0), (2, 0)])
def test_a_colour_key_gives_libvips_bands(tmp_path, bits, colour):
    data, _ = _keyed_png(bits, colour)
    (tmp_path / "key.png").write_bytes(data)
    subprocess.run(["vips", "copy", tmp_path / "key.png", tmp_path / "vips.png"], check=True)
    theirs = read_image(str(tmp_path / "vips.png"))  # libvips writes the alpha it made
    ours = read_image(str(tmp_path / "key.png"))
    assert ours.pixels.shape == theirs.pixels.shape
    np.testing.assert_allclose(ours.pixels, theirs.pixels, atol=1e-7)
