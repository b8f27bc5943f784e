"""Hostile inputs through the real command, under an address-space limit: damaged data is
an error (never a black image), bombs are refused before their memory is asked for, and
inputs that are not regular files are read only as far as makes sense.

Every failure: exit 1, one ``Error:`` line, no output, no temporary file, the inputs
unchanged, and the other inputs of a batch written completely.
"""

from __future__ import annotations

import io
import os
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from tests import hostile
from tests.hostile import assert_one_error, leftovers, run, snapshot


def _multi_frame(fmt: str, **options) -> bytes:
    frames = [PILImage.fromarray(hostile.pixels(seed=seed)) for seed in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=fmt, save_all=True, append_images=frames[1:], **options)
    return buffer.getvalue()


DAMAGED = {
    "garbage-idat.png": hostile.garbage_idat_png,
    "truncated.jpg": lambda: hostile.truncated(hostile.encoded(hostile.pixels(), "JPEG")),
    "no-eoi.jpg": lambda: hostile.encoded(hostile.pixels(), "JPEG")[:-2],
    "truncated.png": lambda: hostile.truncated(hostile.encoded(hostile.pixels(), "PNG"), 0.8),
    "partial-frame.gif": lambda: hostile.truncated(_multi_frame("GIF"), 0.9),
    "partial-frame.webp": lambda: hostile.truncated(_multi_frame("WEBP", lossless=True), 0.9),
    "partial-page.tif": lambda: hostile.truncated(
        _multi_frame("TIFF", compression="tiff_deflate"), 0.9
    ),
    "partial-frame.png": lambda: hostile.truncated(_multi_frame("PNG"), 0.9),
    "garbage-lzw.tif": hostile.damaged_lzw_tiff,
    # Whole files whose data holds too little: decoders pad it with zeros or gray.
    "short-idat.png": hostile.short_idat_png,
    "short-fdat.png": lambda: hostile.short_fdat_apng(_multi_frame("PNG")),
    "end-marker-early.jpg": lambda: hostile.end_marker_early(
        hostile.encoded(hostile.pixels(), "JPEG")
    ),
    "cut-jpeg-strip.tif": hostile.cut_jpeg_tiff,
}


def _good(tmp_path: Path, name: str, seed: int) -> Path:
    path = tmp_path / name
    PILImage.fromarray(hostile.pixels(seed=seed)).save(path)
    return path


def _batch(tmp_path: Path, files: dict[str, bytes], *args) -> tuple:
    """``apply`` on a good image, ``files`` (written under their names), a good image, into
    ``out/{index}-{stem}``; returns the result, the Error lines and the output directory,
    having checked that the inputs are unchanged and that nothing temporary is left."""
    first, last = _good(tmp_path, "a.png", 1), _good(tmp_path, "z.png", 2)
    paths = []
    for name, data in files.items():
        paths.append(tmp_path / name)
        paths[-1].write_bytes(data)
    out = tmp_path / "out"
    out.mkdir()
    before = snapshot(first, *paths, last)
    result = run("apply", first, *paths, last, *args, "-q", "-o", f"{out}/{{index}}-{{stem}}.npy")
    assert snapshot(first, *paths, last) == before
    assert leftovers(out) == []
    errors = result.stderr.splitlines()
    assert all(line.startswith("Error: ") for line in errors), result.stderr
    return result, errors, out


def test_damaged_data_in_every_format_fails_its_input_and_the_batch_goes_on(tmp_path):
    damaged = {name: make() for name, make in sorted(DAMAGED.items())}
    result, errors, out = _batch(tmp_path, damaged, "-k", "box:3")
    assert result.returncode == 1
    assert [line.split(": ")[1] for line in errors] == [str(tmp_path / n) for n in damaged]
    last = len(damaged) + 1
    assert sorted(p.name for p in out.iterdir()) == sorted(["0-a.npy", f"{last}-z.npy"])
    for path in out.iterdir():
        assert np.load(path).shape == (3, 24, 32)  # complete files


def test_a_garbage_idat_is_not_a_black_image(tmp_path):
    # The decode error used to be swallowed by the EXIF step (exit 0, an all-black PNG).
    (tmp_path / "g.png").write_bytes(hostile.garbage_idat_png())
    result = run("apply", tmp_path / "g.png", "-k", "identity", "-o", tmp_path / "o.png")
    assert "damaged or truncated PNG data" in assert_one_error(result)
    assert not (tmp_path / "o.png").exists()


# Bombs: refused from what they declare, before the memory -----------------------------------


BOMBS = {
    "huge-second-frame.gif": (hostile.gif_with_huge_second_frame, "frame 1 is 30000x30000"),
    "huge-entry.ico": (hostile.ico_with_huge_png, "20000x20000 is 400,000,000 pixels"),
    "huge-second-page.tif": (hostile.tiff_with_huge_second_page, "30000x30000"),
    "huge-canvas.webp": (hostile.webp_with_huge_canvas, "16383x16383 is 268,402,689 pixels"),
    "huge-second-picture.mpo": (hostile.mpo_with_huge_second_frame, "frame 1 is 30000x30000"),
    "header-only.npy": (
        lambda: hostile.npy_header_only((3, 8000, 8000)),
        "declares a (3, 8000, 8000) array",
    ),
}


def test_bombs_are_refused_from_their_headers_under_a_memory_limit(tmp_path):
    bombs = {name: make() for name, (make, _) in sorted(BOMBS.items())}
    result, errors, out = _batch(tmp_path, bombs, "-k", "box:3")
    assert result.returncode == 1 and len(errors) == len(bombs)
    for line, name in zip(errors, bombs, strict=True):
        assert name in line and BOMBS[name][1] in line and "memory" not in line
    assert len(list(out.iterdir())) == 2


def test_an_idat_inflating_far_past_its_rows_is_read_only_as_far_as_they_go(tmp_path):
    # 8x8 in the header, 384 MiB of zeros in the IDAT (a 390 KB file): the rows are
    # complete (a PNG may carry extra data), so each image reads, within the memory limit.
    kinds = [(16, 4, 2), (16, 2, 3), (16, 6, 4), (8, 2, 3), (8, 0, 1)]
    files = {
        f"long{bits}-{colour}.png": hostile.long_idat_png(bits, colour) for bits, colour, _ in kinds
    }
    result, errors, out = _batch(tmp_path, files, "-k", "identity")
    assert result.returncode == 0 and errors == []
    for index, (_, _, channels) in enumerate(kinds, start=1):
        values = np.load(next(out.glob(f"{index}-long*.npy")))
        assert values.shape == (channels, 8, 8) and not values.any()


def test_a_stream_past_its_budget_stops_there(tmp_path):
    # A valid header, then far more data than an image within --max-pixels can hold.
    (tmp_path / "h.png").write_bytes(hostile.encoded(hostile.pixels(4, 4), "PNG"))
    feeder = subprocess.Popen(
        ["bash", "-c", 'cat "$0"; head -c 200000000 /dev/zero', tmp_path / "h.png"],
        stdout=subprocess.PIPE,
    )
    try:
        result = run(
            "apply",
            "-",
            "-k",
            "box:3",
            "--max-pixels",
            "1000",
            "-o",
            tmp_path / "o.png",
            stdin=feeder.stdout,
        )
    finally:
        feeder.stdout.close()
        feeder.wait()
    line = assert_one_error(result)
    assert "<stdin>: more than" in line and "--max-pixels" in line
    assert not (tmp_path / "o.png").exists()


# Special files: devices refused unread, pipes read as streams ----------------------------------


@pytest.mark.parametrize(
    "command", [["apply", "-k", "box:3", "-o", "o.png"], ["shape", "-k", "3x3"]]
)
def test_a_device_is_refused_without_being_read(tmp_path, command):
    result = run(command[0], "/dev/zero", *command[1:], cwd=tmp_path, timeout=20)
    assert "/dev/zero: is a character device" in assert_one_error(result)
    assert not (tmp_path / "o.png").exists()


def test_a_device_on_standard_input_is_refused(tmp_path):
    with open("/dev/zero", "rb") as zero:
        result = run("apply", "-", "-k", "box:3", "-o", tmp_path / "o.png", stdin=zero, timeout=20)
    assert "<stdin>: is a character device" in assert_one_error(result)


def test_a_pipe_of_zeros_stops_at_its_first_bytes(tmp_path):
    shell = f"head -c 500000000 /dev/zero | {' '.join(hostile.CONVCLI)} apply - -k box:3 -o o.png"
    result = subprocess.run(
        ["bash", "-c", shell], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "Error: <stdin>: its first bytes are no image format convcli reads; stopped reading there"
    ]


@pytest.mark.parametrize("command", ["apply", "shape"])
def test_a_named_pipe_is_read_as_a_stream(tmp_path, command):
    image = _good(tmp_path, "a.png", 3)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as stream:
            stream.write(image.read_bytes())

    writer = threading.Thread(target=feed)
    writer.start()
    args = ["-k", "box:3", "-o", tmp_path / "o.png", "-q"] if command == "apply" else ["-k", "3x3"]
    result = run(command, fifo, *args)
    writer.join(timeout=30)
    assert result.returncode == 0, result.stderr
    if command == "shape":
        assert "output: (1, 3, 22, 30)" in result.stdout
    else:
        with PILImage.open(tmp_path / "o.png") as out:
            assert out.size == (32, 24)


@pytest.mark.parametrize(
    "command", [["apply", "-k", "box:3", "-o", "o.png"], ["shape", "-k", "3x3"]]
)
def test_closed_standard_input_is_one_error(tmp_path, command):
    result = run(command[0], "-", *command[1:], cwd=tmp_path, close=(0,), stdin=None)
    assert "<stdin>: standard input is closed" in assert_one_error(result)


def test_a_regular_file_larger_than_the_budget_is_refused_from_its_size(tmp_path):
    big = tmp_path / "big.png"
    with open(big, "wb") as stream:  # sparse: 128 MiB of nothing after a PNG header
        stream.write(hostile.encoded(hostile.pixels(4, 4), "PNG"))
        stream.truncate(128 << 20)
    result = run("apply", big, "-k", "box:3", "--max-pixels", "100", "-o", tmp_path / "o.png")
    assert "big.png: more than" in assert_one_error(result)


@pytest.mark.parametrize(
    "make",
    [
        lambda: hostile.png(50000, 50000, 8, 2, hostile.zeros_zlib(1 << 20)),
        hostile.garbage_idat_png,
    ],
)
def test_shape_reads_a_png_header_and_no_pixels(tmp_path, make):
    # Pillow's PNG getexif() decodes the pixels to look for EXIF after them.
    (tmp_path / "h.png").write_bytes(make())
    result = run("shape", tmp_path / "h.png", "-k", "3x3")
    assert result.returncode == 0, result.stderr
    assert "output: (1, 3, " in result.stdout


# A huge number of tiny frames: refused from their count, before any is decoded --------------


@pytest.mark.parametrize("command", ["apply", "upsample", "shape"])
def test_a_gif_of_100000_tiny_frames_is_one_error_naming_the_limit(tmp_path, command):
    path = tmp_path / "many.gif"
    path.write_bytes(hostile.gif_of_tiny_frames(100_000))  # 1.5 MB
    args = {"apply": ["-k", "box:3"], "upsample": ["--factor", "2"], "shape": ["-k", "box:1"]}
    output = [] if command == "shape" else ["-o", tmp_path / "out.tif"]
    line = assert_one_error(run(command, path, *args[command], *output))
    assert "more than 10,000 frames, over the limit of 10,000" in line
    assert line.endswith("raise it with --max-frames")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.gif"]


@pytest.mark.parametrize("chunks", [[], ["--chunks", "64"]])
def test_max_frames_raises_or_lowers_the_limit_in_memory_and_in_blocks(tmp_path, chunks):
    pages = [PILImage.fromarray(hostile.pixels(seed=seed)) for seed in range(3)]
    source = tmp_path / "pages.tif"
    pages[0].save(source, save_all=True, append_images=pages[1:])
    out = tmp_path / "out.tif"
    args = ["apply", source, "-k", "box:3", "-o", out, *chunks, "--max-frames"]
    line = assert_one_error(run(*args, "2"))
    assert "over the limit of 2" in line and not out.exists()
    result = run(*args, "3")
    assert result.returncode == 0, result.stderr
    tifffile = pytest.importorskip("tifffile")
    with tifffile.TiffFile(out) as written:
        assert len(written.pages) == 3


def test_max_frames_in_help_is_the_library_s_default():
    from click.testing import CliRunner

    from convcli.cli.app import cli
    from convcli.images.limits import MAX_FRAMES

    for command in ("apply", "upsample", "shape"):
        text = " ".join(CliRunner().invoke(cli, [command, "--help"]).output.split())
        assert "--max-frames N" in text and f"(default {MAX_FRAMES})" in text, command
