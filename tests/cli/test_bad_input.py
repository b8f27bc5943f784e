"""Bad input through the real command: one `Error:` line, the right exit code, no
traceback, no partial or overwritten file, inputs untouched."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image as PILImage

from convcli.cli.app import cli
from convcli.conv import memory
from tests.paths import SAMPLES


def run(*args: str):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    # any exception other than the exit itself is a crash, never acceptable
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def error_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("Error:")]


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "ok.png"
    PILImage.fromarray(np.random.default_rng(0).integers(0, 256, (12, 10, 3), np.uint8)).save(path)
    return path


def out_of(tmp_path) -> Path:
    return tmp_path / "out.png"


# Files that are not what they claim ------------------------------------------------------------


def _bad_files(tmp_path) -> dict[str, Path]:
    files = {}
    files["empty"] = tmp_path / "empty.png"
    files["empty"].write_bytes(b"")
    files["text"] = tmp_path / "text.png"
    files["text"].write_text("definitely not a png\n")
    png = (SAMPLES / "chelsea.png").read_bytes()
    files["truncated png"] = tmp_path / "cut.png"
    files["truncated png"].write_bytes(png[: len(png) // 3])
    buffer = io.BytesIO()
    PILImage.new("RGB", (80, 80), "blue").save(buffer, format="JPEG")
    files["truncated jpeg"] = tmp_path / "cut.jpg"
    files["truncated jpeg"].write_bytes(buffer.getvalue()[:300])
    files["eps"] = tmp_path / "x.eps"
    files["eps"].write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    files["pdf"] = tmp_path / "x.pdf"
    files["pdf"].write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    files["pickle"] = tmp_path / "p.npy"
    np.save(files["pickle"], np.array([{"x": 1}], dtype=object), allow_pickle=True)
    return files


@pytest.mark.parametrize(
    "kind", ["empty", "text", "truncated png", "truncated jpeg", "eps", "pdf", "pickle"]
)
def test_bad_files_exit_1_with_one_line(tmp_path, kind):
    path = _bad_files(tmp_path)[kind]
    result = run("apply", path, "-k", "box:3", "-o", out_of(tmp_path))
    assert result.exit_code == 1
    lines = error_lines(result)
    assert len(lines) == 1 and str(path) in lines[0]
    assert not out_of(tmp_path).exists()


def test_corrupt_file_in_the_middle_of_a_batch(tmp_path, image):
    bad = _bad_files(tmp_path)["truncated png"]
    other = tmp_path / "two.png"
    other.write_bytes(image.read_bytes())
    (tmp_path / "o").mkdir()
    result = run("apply", image, bad, other, "-k", "box:3", "-o", f"{tmp_path / 'o'}/")
    assert result.exit_code == 1
    assert sorted(os.listdir(tmp_path / "o")) == ["ok.png", "two.png"]
    assert len(error_lines(result)) == 1


def _bomb(path: Path) -> None:
    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_refused_with_the_limit_and_the_fix(tmp_path):
    bomb = tmp_path / "bomb.png"
    _bomb(bomb)
    result = run("apply", bomb, "-k", "box:3", "-o", out_of(tmp_path))
    assert result.exit_code == 1
    assert "400,000,000 pixels" in result.output and "--max-pixels" in result.output


def test_malformed_exif_still_loads_with_a_warning(tmp_path):
    path = tmp_path / "exif.jpg"
    PILImage.new("RGB", (6, 5)).save(path, exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff")
    result = run("apply", path, "-k", "box:3", "-o", out_of(tmp_path))
    assert result.exit_code == 0
    assert "Warning:" in result.output and "EXIF" in result.output


# Filters -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("1 2 1\n2 4\n", "line 2"),
        ("1 2 x\n", "'x' is not a number"),
        ("", "no numbers"),
        ("1 nan 1\n", "finite"),
        ("1 inf 1\n", "finite"),
    ],
)
def test_bad_filter_files_exit_2_naming_file_and_line(tmp_path, image, content, needle):
    kernel = tmp_path / "k.txt"
    kernel.write_text(content)
    result = run("apply", image, "-k", kernel, "-o", out_of(tmp_path))
    assert result.exit_code == 2
    assert needle in result.output and "k.txt" in result.output
    assert not out_of(tmp_path).exists()


def test_awkward_but_valid_filters(tmp_path, image):
    csv = tmp_path / "excel.csv"
    csv.write_bytes(b"\xef\xbb\xbf0,-1,0,\r\n-1,5,-1,\r\n0,-1,0,\r\n")
    assert run("apply", image, "-k", csv, "-o", out_of(tmp_path), "-q").exit_code == 0
    assert run("apply", image, "-k", "1 2 1", "-o", out_of(tmp_path), "-q").exit_code == 0
    even = run("apply", image, "-k", "box:4", "-o", out_of(tmp_path))
    assert even.exit_code == 0 and "padding (1,2,1,2)" in even.output  # extra at bottom/right


def test_kernel_larger_than_the_image_exits_2_with_the_formula(tmp_path, image):
    result = run("apply", image, "-k", "box:15", "--padding", "valid", "-o", out_of(tmp_path))
    assert result.exit_code == 2
    assert "H_out = floor((12 + 0 + 0 - 1*(15-1) - 1) / 1) + 1 = -2" in result.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-k", "sobel-x", "--normalize"], "sums to zero"),
        (["-k", "[[[[1]]]]"], "the image's 3 channels make groups=3"),
        (["-k", "box:3", "--pad-mode", "reflect", "--padding", "20"], "reflect padding"),
        (["-k", "box:3", "--stride", "0"], "stride must be positive"),
        (["-k", "im:Sobel:1e400"], "'1e400' is not a finite number"),
        (["-k", "im:Gaussian:1e400"], "'1e400' is not a finite number"),
        (["-k", "box:3_0"], "'box:3_0': '3_0' is not a number"),
    ],
)
def test_usage_errors_exit_2(tmp_path, image, args, needle):
    result = run("apply", image, *args, "-o", out_of(tmp_path))
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert not out_of(tmp_path).exists()


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ('{"weight": [[1]], "colour": 1}', "unknown key 'colour'"),
        ('{"weight": [[1]], "stride": "two"}', "'stride' must be"),
        ('{"weight": [[1]], "pad_mode": "mirror"}', "'pad_mode' must be one of"),
    ],
)
def test_filter_config_errors_name_the_key(tmp_path, image, config, needle):
    path = tmp_path / "f.json"
    path.write_text(config)
    result = run("apply", image, "-k", path, "-o", out_of(tmp_path))
    assert result.exit_code == 2 and needle in result.output


# Values --------------------------------------------------------------------------------------


def test_sharpening_overshoot_clips_and_is_counted(tmp_path):
    src = tmp_path / "step.png"
    step = np.zeros((10, 10), np.uint8)
    step[:, 5:] = 250
    PILImage.fromarray(step).save(src)
    report = tmp_path / "r.jsonl"
    result = run("apply", src, "-k", "sharpen", "-o", out_of(tmp_path), "--report", report)
    assert result.exit_code == 0
    with PILImage.open(out_of(tmp_path)) as im:
        values = np.asarray(im)
    assert values[:, 5].min() == 255 and values[:, 4].max() == 0  # clipped, not wrapped
    import json

    record = json.loads(report.read_text())
    assert record["clipped_high"] > 0 and record["clipped_low"] > 0


def test_rgba_to_jpeg_is_flattened_over_white_with_a_warning(tmp_path):
    src = tmp_path / "a.png"
    PILImage.new("RGBA", (6, 6), (10, 20, 30, 128)).save(src)
    result = run("apply", src, "-k", "box:3", "-o", tmp_path / "a.jpg")
    assert result.exit_code == 0, result.output
    assert "flattened over white (--background to choose)" in result.output
    flat = [round(c * 128 / 255 + 255 * 127 / 255) for c in (10, 20, 30)]  # 133, 138, 143
    with PILImage.open(tmp_path / "a.jpg") as im:
        np.testing.assert_allclose(np.asarray(im), np.broadcast_to(flat, (6, 6, 3)), atol=2)


def test_sixteen_bit_to_jpeg_is_refused_not_cut(tmp_path):
    src = tmp_path / "deep.png"
    PILImage.fromarray(np.full((4, 4), 40000, np.uint16)).save(src)
    result = run("apply", src, "-k", "identity", "-o", tmp_path / "d.jpg")
    # a usage error (the format cannot hold the depth), refused before filtering
    assert result.exit_code == 2 and "8 bits" in result.output
    assert len(error_lines(result)) == 1
    assert not (tmp_path / "d.jpg").exists()


# Outputs -------------------------------------------------------------------------------------


def test_output_that_is_an_input_is_refused_before_any_work(tmp_path, image):
    before = image.read_bytes()
    link = tmp_path / "link.png"
    link.symlink_to(image)
    for target in (image, link, tmp_path / "." / "ok.png"):
        result = run("apply", image, "-k", "box:3", "-o", target)
        assert result.exit_code == 2 and "never overwrites its inputs" in result.output
    assert image.read_bytes() == before


def test_missing_directory_and_disk_full(tmp_path, image):
    result = run("apply", image, "-k", "box:3", "-o", tmp_path / "nope" / "o.png")
    assert result.exit_code == 1 and "nope" in result.output
    if os.path.exists("/dev/full"):
        result = run("apply", image, "-k", "box:3", "-o", "/dev/full", "--format", "png")
        assert result.exit_code == 1 and "/dev/full" in result.output


def test_failed_write_leaves_the_old_output_and_no_temporary(tmp_path, image, monkeypatch):
    target = out_of(tmp_path)
    target.write_bytes(b"previous result")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    result = run("apply", image, "-k", "box:3", "-o", target)
    assert result.exit_code == 1 and "No space left" in result.output
    assert target.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.png", "out.png"]


def test_unknown_output_extension_exits_2_before_reading_inputs(tmp_path):
    result = run("apply", tmp_path / "does-not-exist.png", "-k", "box:3", "-o", tmp_path / "x.gif2")
    assert result.exit_code == 2
    assert "'.gif2'" in result.output and "does-not-exist" not in result.output


def test_memory_refusal_shows_the_estimate(tmp_path, image, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1000)
    result = run("apply", image, "-k", "box:3", "-o", out_of(tmp_path))
    assert result.exit_code == 1 and "needs about" in result.output
    assert "MiB is available" in result.output
    assert not out_of(tmp_path).exists()


def test_errors_from_the_real_process_are_one_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "convcli",
            "apply",
            str(tmp_path / "none.png"),
            "-k",
            "box:3",
            "-o",
            str(out_of(tmp_path)),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("Error:")


# Fuzzing the shape calculator ----------------------------------------------------------------

values = st.one_of(
    st.integers(-3, 40).map(str),
    st.sampled_from(["same", "valid", "x", "1,2", "0,0,1,1", "3x3", "", "-1"]),
)


@given(
    st.lists(st.integers(0, 50).map(str), min_size=1, max_size=4).map(",".join),
    values,
    values,
    values,
    values,
    st.booleans(),
)
def test_fuzz_shape_options(shape, kernel, stride, padding, dilation, transpose):
    args = [
        "shape",
        shape,
        "-k",
        kernel or "3",
        "--stride",
        stride or "1",
        "--padding",
        padding or "0",
        "--dilation",
        dilation or "1",
    ]
    if transpose:
        args.append("--transpose")
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        result.output,
    )
    assert result.exit_code in (0, 2), (args, result.output)


# Usage mistakes in the step options: once, up front, before any input is read -----------------


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        (["--stride", "0"], "stride must be positive, got 0"),
        (["--dilation", "0,2"], "dilation must be positive, got (0, 2)"),
        (["--padding", "-2"], "padding must not be negative"),
        (["-k", "laplacian", "--normalize"], "the kernel sums to zero"),
        # These were decided per image, after reading it (a FIFO input was waited for):
        (["--groups", "2"], "groups=2 applies to 4-D (F, C/groups, Hf, Wf) weights"),
        (["--bias", "1e39"], "--bias values must be finite numbers of at most 3.40282e+38"),
        (["--bias", ""], "'' has an empty field"),
        (["-k", "[[[1, 2]]]", "--bias", "0.1,0.2"], "--bias takes 1 value or one per output"),
        (["-k", "[[[[1]]], [[[2]]]]", "--groups", "3"], "2 filters, not divisible by groups=3"),
        (["upsample", "--output-padding", "5"], "output_padding 5 on H must be smaller"),
        (["upsample", "--stride", "2", "--output-padding", "2"], "output_padding 2 on H"),
        (["upsample", "--groups", "5", "-k", "box:3"], "groups=5 applies to 4-D"),
    ],
)
def test_step_usage_errors_come_once_before_reading(tmp_path, options, needle):
    for name in ("a.png", "b.png"):
        PILImage.new("L", (8, 8), 60).save(tmp_path / name)
    command = "upsample" if options[0] == "upsample" else "apply"
    options = [o for o in options if o != "upsample"]
    kernel = [] if "-k" in options or command == "upsample" else ["-k", "box:3"]
    out = str(tmp_path / "{stem}-o.png")
    result = run(command, tmp_path / "a.png", tmp_path / "b.png", *kernel, *options, "-o", out)
    assert result.exit_code == 2, result.output
    assert len(error_lines(result)) == 1 and needle in error_lines(result)[0], result.output
    assert not list(tmp_path.glob("*-o.png"))
    # a missing input does not hide the usage error (it is never read)
    result = run(command, tmp_path / "nonexist.png", *kernel, *options, "-o", tmp_path / "x.png")
    assert result.exit_code == 2 and needle in result.output, result.output


def test_step_usage_errors_never_wait_for_a_pipe(tmp_path):
    # A named pipe nobody writes to: any read would block until the timeout.
    os.mkfifo(tmp_path / "ff")
    PILImage.new("L", (8, 8), 60).save(tmp_path / "a.png")
    args = ["apply", tmp_path / "ff", tmp_path / "a.png", "-k", "box:3", "--groups", "2"]
    result = subprocess.run(
        [sys.executable, "-m", "convcli", *map(str, args), "-o", str(tmp_path / "{index}.png")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and result.stderr.count("Error:") == 1, result.stderr


def test_an_upsampling_phase_warning_is_given_once_for_a_batch(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        PILImage.new("L", (8, 8), 60).save(tmp_path / name)
    inputs = [tmp_path / n for n in ("a.png", "b.png", "c.png")]
    result = run("upsample", *inputs, "-k", "box:3", "-o", tmp_path / "{stem}-up.png")
    assert result.exit_code == 0, result.output
    assert result.output.count("stride phases sum to") == 1, result.output


def test_normalize_error_names_the_kernel(tmp_path):
    result = run("apply", tmp_path / "a.png", "-k", "sobel-x", "--normalize", "-o", "x.png")
    assert result.exit_code == 2 and error_lines(result)[0].startswith("Error: -k sobel-x: ")
