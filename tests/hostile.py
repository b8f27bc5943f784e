"""Hostile files, built byte by byte (no decoder is trusted to make them), and the real
command run the way an attacker or an unlucky user would: under an address-space limit,
with standard streams closed, with signals.
"""

from __future__ import annotations

import io
import os
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

CONVCLI = [sys.executable, "-m", "convcli"]
# Far above what convcli needs for a small image (~250 MiB of address space, mostly
# shared libraries), far below what the bombs below would take (0.8 to 1.6 GiB).
MEMORY_LIMIT = 700 << 20


def run(
    *args,
    limit: int | None = MEMORY_LIMIT,
    close: tuple[int, ...] = (),
    timeout: float = 60,
    **kwargs,
) -> subprocess.CompletedProcess:
    """``convcli ARGS`` in a subprocess, its address space limited to ``limit`` bytes and
    the standard descriptors in ``close`` closed; text output."""

    def prepare() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        for fd in close:
            os.close(fd)

    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", CONVCLI_THREADS="2")
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(
        [*CONVCLI, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=prepare,
        env=env,
        **kwargs,
    )


def assert_one_error(result: subprocess.CompletedProcess, code: int = 1) -> str:
    """Exit ``code``, stderr exactly one ``Error:`` line (no traceback, no C library's
    lines); returns that line."""
    lines = result.stderr.splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def leftovers(directory: Path) -> list[str]:
    """Temporary files an interrupted write would leave."""
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def snapshot(*paths: Path) -> dict[Path, bytes]:
    """The bytes of files that must come out of a run unchanged."""
    return {path: path.read_bytes() for path in paths}


# PNG ----------------------------------------------------------------------------------------


def chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png(width: int, height: int, bits: int, colour: int, idat: bytes) -> bytes:
    """A PNG with this header and one IDAT holding ``idat`` as it is."""
    header = struct.pack(">IIBBBBB", width, height, bits, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def zeros_zlib(size: int) -> bytes:
    """A zlib stream inflating to ``size`` zero bytes (a multiple of 1 MiB), made in
    milliseconds: one self-contained deflate block of 1 MiB of zeros, repeated."""
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = block.compress(b"\0" * (1 << 20)) + block.flush(zlib.Z_FULL_FLUSH)
    last = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)  # empty final block
    adler = ((size % 65521) << 16) | 1  # Adler-32 of `size` zeros
    return b"\x78\xda" + piece * (size >> 20) + last + struct.pack(">I", adler)


def long_idat_png(bits: int, colour: int, inflated: int = 384 << 20) -> bytes:
    """An 8x8 PNG whose IDAT inflates to ``inflated`` bytes (its rows need a few
    hundred): a decompression bomb for a decoder that inflates the whole stream."""
    return png(8, 8, bits, colour, zeros_zlib(inflated))


def garbage_idat_png() -> bytes:
    """An 8x8 RGB PNG whose IDAT is a zlib header followed by garbage."""
    return png(8, 8, 8, 2, b"\x78\x9c" + bytes(range(7, 250, 3)))


def short_idat_png() -> bytes:
    """A 24x32 RGB PNG whose complete zlib stream holds half of its rows."""
    rows = b"".join(b"\0" + row.tobytes() for row in pixels())
    return png(32, 24, 8, 2, zlib.compress(rows[: len(rows) // 2]))


def short_fdat_apng(apng: bytes) -> bytes:
    """``apng`` with its first ``fdAT`` frame's complete zlib stream holding half its rows."""
    out, position, done = [apng[:8]], 8, False
    while position < len(apng):
        length, kind = struct.unpack_from(">I4s", apng, position)
        payload = apng[position + 8 : position + 8 + length]
        if kind == b"fdAT" and not done:
            rows = zlib.decompress(payload[4:])
            payload, done = payload[:4] + zlib.compress(rows[: len(rows) // 2]), True
        out.append(chunk(kind, payload))
        position += 12 + length
    return b"".join(out)


# GIF, ICO, TIFF, WebP, JPEG, .npy -------------------------------------------------------------


def encoded(array: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def pixels(height: int = 24, width: int = 32, channels: int = 3, seed: int = 0) -> np.ndarray:
    shape = (height, width, channels) if channels > 1 else (height, width)
    return np.random.default_rng(seed).integers(0, 256, shape, np.uint8)


def gif_with_huge_second_frame(width: int = 30000, height: int = 30000) -> bytes:
    """An 8x8 GIF whose second frame's descriptor declares ``width`` x ``height``; the
    frame's data is the first frame's (a few bytes)."""
    data = encoded(np.zeros((8, 8), np.uint8), "GIF")
    flags = data[10]
    table = 3 * (2 << (flags & 7)) if flags & 0x80 else 0
    head, body = data[: 13 + table], data[13 + table : -1]  # no trailer
    start = body.index(b"\x2c")  # the image descriptor
    extensions, frame = body[:start], body[start + 10 :]
    big = b"\x2c" + struct.pack("<HHHH", 0, 0, width, height) + b"\x00"
    return head + extensions + body[start:] + extensions + big + frame + b"\x3b"


def ico_with_huge_png(width: int = 20000, height: int = 20000) -> bytes:
    """An ICO whose one entry claims 256x256 and holds a PNG declaring ``width`` x
    ``height`` (Pillow decodes it while opening the file)."""
    embedded = png(width, height, 8, 6, zeros_zlib(1 << 20))
    directory = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(embedded), 6 + 16)
    return directory + entry + embedded


def tiff_with_huge_second_page() -> bytes:
    """A two-page uncompressed gray TIFF whose second page declares 30000x30000."""
    small = encoded(np.zeros((8, 8), np.uint8), "TIFF")
    pages = io.BytesIO()
    first = PILImage.open(io.BytesIO(small))
    first.save(pages, format="TIFF", save_all=True, append_images=[first.copy()])
    data = bytearray(pages.getvalue())
    # The second IFD: follow the first's next-IFD offset; patch its width and length.
    first_ifd = struct.unpack_from("<I", data, 4)[0]
    count = struct.unpack_from("<H", data, first_ifd)[0]
    second_ifd = struct.unpack_from("<I", data, first_ifd + 2 + 12 * count)[0]
    count = struct.unpack_from("<H", data, second_ifd)[0]
    for n in range(count):
        at = second_ifd + 2 + 12 * n
        tag, kind = struct.unpack_from("<HH", data, at)
        if tag in (256, 257):  # ImageWidth, ImageLength
            if kind == 3:  # SHORT
                struct.pack_into("<H", data, at + 8, 30000)
            else:
                struct.pack_into("<I", data, at + 8, 30000)
    return bytes(data)


def truncated(data: bytes, share: float = 0.6) -> bytes:
    return data[: int(len(data) * share)]


def npy_header_only(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    """An .npy header declaring ``shape`` with no data after it."""
    buffer = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def damaged_lzw_tiff() -> bytes:
    """An LZW TIFF whose strip is garbage after its first bytes (libtiff: "Using code not
    yet in table")."""
    data = bytearray(encoded(pixels(64, 64), "TIFF", compression="tiff_lzw"))
    with PILImage.open(io.BytesIO(bytes(data))) as image:
        offset, size = image.tag_v2[273][0], image.tag_v2[279][0]
    garbage = np.random.default_rng(1).integers(0, 256, size - 20, np.uint8).tobytes()
    data[offset + 10 : offset + size - 10] = garbage
    return bytes(data)


def webp_with_huge_canvas() -> bytes:
    """An animated WebP of two 16x12 frames whose VP8X header declares a 16383x16383
    canvas (libwebp's animation decoder allocates two canvases while opening it)."""
    frames = [PILImage.fromarray(pixels(12, 16, seed=seed)) for seed in range(2)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:], lossless=True)
    data = bytearray(buffer.getvalue())
    at = data.index(b"VP8X") + 12
    data[at : at + 6] = (16382).to_bytes(3, "little") * 2
    return bytes(data)


def gif_of_tiny_frames(frames: int) -> bytes:
    """A 1x1 GIF of ``frames`` frames, 15 bytes each: 100,000 frames are 1.5 MB (the many
    frames cost a decoder and a writer far more than their few pixels)."""
    head = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    # A 1x1 image: its descriptor, LZW code size 2, one sub-block (clear, 0, end), the end.
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return head + frame * frames + b"\x3b"


def mpo_with_huge_second_frame() -> bytes:
    """A two-picture MPO (stereo JPEG) whose second picture's SOF declares 30000x30000."""
    first, second = (PILImage.fromarray(pixels(seed=seed)) for seed in range(2))
    buffer = io.BytesIO()
    first.save(buffer, format="MPO", save_all=True, append_images=[second])
    data = bytearray(buffer.getvalue())
    frames = [at for at in range(len(data) - 1) if data[at : at + 2] == b"\xff\xc0"]
    at = frames[1]  # the second picture's start of frame: length, precision, height, width
    data[at + 5 : at + 9] = struct.pack(">HH", 30000, 30000)
    return bytes(data)


def end_marker_early(jpeg: bytes) -> bytes:
    """A JPEG cut at two thirds with its end marker put back (libjpeg pads it with gray)."""
    return jpeg[: len(jpeg) * 2 // 3] + b"\xff\xd9"


def cut_jpeg_tiff() -> bytes:
    """A JPEG-compressed TIFF in strips, the file cut in the middle of its last strip."""
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels(), photometric="rgb", compression="jpeg", rowsperstrip=8)
    data = buffer.getvalue()
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages[0]
        last = int(np.argmax(page.dataoffsets))
        end = page.dataoffsets[last] + page.databytecounts[last] // 2
    return data[:end]
