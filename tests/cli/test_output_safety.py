"""The audit's cases through the real command: outputs and reports never overwrite an
input, everything knowable is checked before any input is read or filtered, and every
failure is one `Error:` line with the right exit code (1 input/output, 2 usage)."""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image as PILImage

from convcli.cli.app import cli
from convcli.conv import memory
from convcli.images import writing
from convcli.jobs import pipeline
from tests.paths import SAMPLES

CONVCLI = [sys.executable, "-m", "convcli"]


def run(*args, env: dict | None = None):
    result = CliRunner().invoke(cli, [str(a) for a in args], env=env)
    # any exception other than the exit itself is a crash, never acceptable
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def errors(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("Error:")]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def gray(path: Path, height: int = 12, width: int = 10, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    PILImage.fromarray(rng.integers(0, 256, (height, width), np.uint8)).save(path)
    return path


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# 1. {frame} outputs are checked against the inputs before anything is written ---------------


def test_frame_template_never_overwrites_an_input(work):
    source = gray(work / "a0.png")
    before = digest(source)
    result = run("apply", "a0.png", "-k", "box:3", "-o", "a{frame}.png")
    assert result.exit_code == 2, result.output
    assert errors(result) == [
        "Error: a0.png: output 'a0.png' is the input 'a0.png'; convcli never overwrites "
        "its inputs, choose another output name"
    ]
    assert digest(source) == before


def test_frame_template_refuses_an_input_among_later_frames_and_goes_on(work):
    # b.tif has two pages: b{frame}.png would write b0.png and b1.png, and b1.png is an input
    pages = [PILImage.fromarray(np.full((6, 6), v, np.uint8)) for v in (10, 200)]
    pages[0].save(work / "b.tif", save_all=True, append_images=pages[1:])
    gray(work / "b1.png", 6, 6)
    gray(work / "c.png", 7, 7)
    before = digest(work / "b1.png")
    result = run("apply", "b.tif", "b1.png", "c.png", "-k", "box:3", "-o", "{stem}{frame}.png")
    assert result.exit_code == 2
    assert len(errors(result)) == 1 and "'b1.png' is the input" in errors(result)[0]
    assert digest(work / "b1.png") == before
    assert not (work / "b0.png").exists()  # nothing of b.tif is written
    assert (work / "b10.png").exists() and (work / "c0.png").exists()  # the others go on


def test_frame_outputs_of_two_inputs_never_overwrite_each_other(work):
    # 'a' frame 10 and 'a1' frame 0 both name a10.png
    pages = [PILImage.fromarray(np.full((4, 4), v, np.uint8)) for v in range(11)]
    pages[0].save(work / "a.tif", save_all=True, append_images=pages[1:])
    PILImage.fromarray(np.full((4, 4), 99, np.uint8)).save(work / "a1.tif")
    result = run("apply", "a.tif", "a1.tif", "-k", "identity", "-o", "{stem}{frame}.png")
    assert result.exit_code == 2 and "written twice" in result.output
    assert np.asarray(PILImage.open(work / "a10.png")).max() == 10  # a's, not replaced


# 2. --report is checked like an output and opened only after the checks -----------------


def test_report_that_is_an_input_is_refused_and_the_input_kept(work):
    source = gray(work / "victim.png")
    before = digest(source)
    result = run("apply", "victim.png", "-k", "box:3", "-o", "o.png", "--report", "victim.png")
    assert result.exit_code == 2 and "--report 'victim.png' is the input" in result.output
    assert len(errors(result)) == 1
    assert digest(source) == before and not (work / "o.png").exists()


@pytest.mark.parametrize("output", ["out.png", "./out.png", "f{frame}.png"])
def test_report_that_is_an_image_output_is_refused(work, output):
    gray(work / "a.png")
    report = "out.png" if "frame" not in output else "f0.png"
    (work / report).write_bytes(b"previous")
    result = run("apply", "a.png", "-k", "box:3", "-o", output, "--report", report)
    assert result.exit_code == 2 and "also an image output" in result.output
    assert (work / report).read_bytes() == b"previous"  # not emptied


def test_report_in_a_missing_directory_is_refused_before_any_work(work):
    gray(work / "a.png")
    result = run("apply", "a.png", "-k", "box:3", "-o", "o.png", "--report", "no/r.jsonl")
    assert result.exit_code == 1 and "'no' does not exist" in result.output
    assert not (work / "o.png").exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_report_write_failure_is_one_error_line(work):
    gray(work / "a.png")
    result = subprocess.run(
        [*CONVCLI, "apply", "a.png", "-k", "box:3", "-o", "o.png", "-q", "--report", "/dev/full"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr == "Error: --report /dev/full: cannot write (No space left on device)\n"
    assert (work / "o.png").exists()  # the images still go on


# 3. Templates are plain fields, not Python format strings ----------------------------------


@pytest.mark.parametrize(
    "template",
    ["{stem.__class__}.png", "{stem:>99999999999}.png", "{stem!r}.png", "{0}.png", "{}.png"],
)
def test_template_fields_are_plain_names_only(work, template):
    gray(work / "a.png")
    result = run("apply", "a.png", "-k", "box:3", "-o", template)
    assert result.exit_code == 2
    assert errors(result) and template in errors(result)[0] and "{stem}" in errors(result)[0]
    assert sorted(os.listdir(work)) == ["a.png"]


# 4. Output directories are checked before any input is read; one failed write is one item --


def test_missing_output_directory_is_refused_before_reading(work):
    gray(work / "a.png")
    gray(work / "b.png")
    result = run("apply", "a.png", "b.png", "missing.png", "-k", "box:3", "-o", "nodir/")
    assert result.exit_code == 1
    assert errors(result) == [
        "Error: nodir/a.png: the directory 'nodir' does not exist; create it first"
    ]  # missing.png was never read, nothing was computed


def test_a_file_where_the_directory_should_be_is_named_as_a_file(work):
    gray(work / "a.png")
    gray(work / "b.png")
    result = run("apply", "b.png", "-k", "box:3", "-o", "a.png/x.png")
    assert result.exit_code == 1
    assert errors(result) == [
        "Error: a.png/x.png: 'a.png' is a file, not a directory; choose another output path"
    ]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_one_failed_write_in_a_batch_reports_that_item_only(work):
    for name in ("a.png", "b.png", "c.png"):
        gray(work / name)  # same shape: one batch
    (work / "out").mkdir()
    (work / "out" / "b.png").symlink_to("/dev/full")
    result = run("apply", "a.png", "b.png", "c.png", "-k", "box:3", "-o", "out/")
    assert result.exit_code == 1
    assert errors(result) == ["Error: b.png: out/b.png: cannot write (No space left on device)"]
    assert (work / "out" / "a.png").is_file() and (work / "out" / "c.png").is_file()


# 5. What the output format cannot hold is a usage error before filtering -------------------


def test_sixteen_bits_to_jpeg_is_refused_before_filtering(work, monkeypatch):
    PILImage.fromarray(np.full((4, 4), 40000, np.uint16)).save(work / "g16.png")
    monkeypatch.setattr(pipeline, "apply_steps", _never)
    result = run("apply", "g16.png", "-k", "identity", "-o", "g16.jpg")
    assert result.exit_code == 2 and "JPEG holds 8 bits" in result.output
    assert len(errors(result)) == 1 and not (work / "g16.jpg").exists()


def test_depth_16_to_jpeg_is_refused_before_reading(work):
    result = run("apply", "not-there.png", "-k", "box:3", "--depth", "16", "-o", "x.jpg")
    assert result.exit_code == 2 and "JPEG holds 8 bits" in result.output
    assert "not-there" not in result.output


def test_too_many_channels_for_png_is_refused_before_filtering(work, monkeypatch):
    gray(work / "a.png")
    np.save(work / "w.npy", np.ones((512, 1, 1, 1), np.float32))
    monkeypatch.setattr(pipeline, "apply_steps", _never)
    result = run("apply", "a.png", "-k", "w.npy", "-o", "maps.png")
    assert result.exit_code == 2 and "512 channels" in result.output
    assert not (work / "maps.png").exists()


def test_shared_check_still_guards_the_library(tmp_path):
    from convcli import OutputError

    with pytest.raises(OutputError, match="8 bits"):
        writing.write_image(np.zeros((1, 2, 2)), str(tmp_path / "x.jpg"), depth=16)


def test_rgba_through_a_colour_only_weight_drops_alpha(work):
    rng = np.random.default_rng(0)
    PILImage.fromarray(rng.integers(0, 256, (8, 8, 4), np.uint8)).save(work / "rgba.png")
    np.save(work / "luma.npy", np.array([[[0.299]], [[0.587]], [[0.114]]], np.float32))
    result = run("apply", "rgba.png", "-k", "luma.npy", "-o", "l.png")
    assert result.exit_code == 0, result.output
    assert "alpha dropped" in result.output
    assert np.asarray(PILImage.open(work / "l.png")).ndim == 2


def _never(*args, **kwargs):
    raise AssertionError("filtering started")


# 6. Memory: the process's own limits count, and running out is one line -----------------


def test_memory_error_is_one_line_and_the_batch_goes_on(work, monkeypatch):
    gray(work / "big.png", 20, 20)
    gray(work / "small.png", 8, 8)
    real = pipeline.apply_steps

    def short_of_memory(x, steps, **kwargs):
        if x.shape[-1] == 20:
            raise MemoryError
        return real(x, steps, **kwargs)

    monkeypatch.setattr(pipeline, "apply_steps", short_of_memory)
    result = run("apply", "big.png", "small.png", "-k", "box:3", "-o", "{stem}-o.png")
    assert result.exit_code == 1
    assert errors(result) == [
        "Error: big.png: ran out of memory filtering it; use smaller images, or fewer at once"
    ]
    assert (work / "small-o.png").exists() and not (work / "big-o.png").exists()


def test_address_space_limit_counts_in_the_estimate(work):
    gray(work / "s.png", 200, 200)
    limit = 3 << 30

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    # 200x200 upsampled 150 times is 30000x30000: ~10 GiB of float32 arrays
    result = subprocess.run(
        [*CONVCLI, "upsample", "s.png", "--factor", "150", "-k", "nearest", "-o", "u.png"],
        capture_output=True,
        text=True,
        preexec_fn=limited,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("Error: s.png: this job needs about"), result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    available = result.stderr.split(" and ")[1].split(" is available")[0]
    value, unit = available.split()
    assert unit == "MiB" or float(value) <= 3.0  # the limit, not the machine's memory
    assert not (work / "u.png").exists()


def test_available_memory_respects_rlimit_as(monkeypatch):
    monkeypatch.setattr(resource, "getrlimit", lambda which: (1 << 30, resource.RLIM_INFINITY))
    monkeypatch.setattr(memory, "_mapped_bytes", lambda: 1 << 29)
    available = memory.available_bytes()
    assert available is not None and available <= 1 << 29


# 7. --bias must be finite ------------------------------------------------------------------


@pytest.mark.parametrize("bias", ["nan", "inf", "-inf", "0.1,nan"])
def test_non_finite_bias_is_a_usage_error(work, bias):
    gray(work / "a.png")
    result = run("apply", "a.png", "-k", "box:3", "--bias", bias, "-o", "o.png")
    assert result.exit_code == 2 and "--bias" in result.output and "finite" in result.output
    assert not (work / "o.png").exists()


# 8. convcli shape: an input that is neither a shape nor a file; pickled .npy ------------------


def test_shape_of_something_that_is_neither_shape_nor_file(work):
    result = run("shape", "x", "-k", "3x3")
    assert result.exit_code == 2
    assert len(errors(result)) == 1 and "1,3,224,224" in result.output


def test_shape_refuses_a_pickled_npy(work):
    np.save(work / "pick.npy", np.array([object()] * 9).reshape(3, 3), allow_pickle=True)
    result = run("shape", "pick.npy", "-k", "3x3")
    assert result.exit_code == 1 and "pickle" in result.output
    assert "output:" not in result.output


# 9. Messages: stdin named once; the OS reason of a failed write kept ------------------------


def test_empty_stdin_is_named_once(work):
    result = CliRunner().invoke(cli, ["apply", "-", "-k", "box:3", "-o", "o.png"], input=b"")
    assert result.exit_code == 1
    assert errors(result) == ["Error: <stdin>: empty file, not an image"]


@pytest.mark.parametrize("name", ["big.npy", "big.png"])
def test_file_size_limit_keeps_the_os_reason_and_leaves_nothing(work, name):
    gray(work / "a.png", 300, 300)

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))

    result = subprocess.run(
        [*CONVCLI, "apply", "a.png", "-k", "box:3", "-o", name, "-q"],
        capture_output=True,
        text=True,
        preexec_fn=limited,
    )
    assert result.returncode == 1
    assert result.stderr == f"Error: a.png: {name}: cannot write (File too large)\n"
    assert sorted(os.listdir(work)) == ["a.png"]


# 10. --format and a known extension must agree ---------------------------------------------


def test_format_disagreeing_with_the_extension_is_refused(work):
    gray(work / "a.png")
    result = run("apply", "a.png", "-k", "box:3", "--format", "jpeg", "-o", "x.png")
    assert result.exit_code == 2 and "disagrees with the extension" in result.output
    assert not (work / "x.png").exists()
    assert run("apply", "a.png", "-k", "box:3", "--format", "jpg", "-o", "x.jpeg").exit_code == 0
    assert run("apply", "a.png", "-k", "box:3", "--format", "png", "-o", "x.out").exit_code == 0


# 11. Threads are validated once, before any input is read -----------------------------------


def test_bad_convcli_threads_is_one_usage_error(work):
    gray(work / "a.png")
    gray(work / "b.png", 9, 9)
    result = run(
        "apply", "a.png", "b.png", "-k", "box:3", "-o", "{stem}-o.png",
        env={"CONVCLI_THREADS": "abc"},
    )  # fmt: skip
    assert result.exit_code == 2
    assert errors(result) == ["Error: CONVCLI_THREADS must be a positive integer, got 'abc'"]
    assert sorted(os.listdir(work)) == ["a.png", "b.png"]


# Kernel and filter files read by -k are inputs too --------------------------------------------


def test_output_over_a_kernel_file_is_refused_before_reading(work):
    np.save(work / "wk.npy", np.ones((3, 3)))
    before = digest(work / "wk.npy")
    # the image does not exist: the usage error must come first, before any reading
    result = run("apply", "crop.png", "-k", "wk.npy", "-o", "wk.npy")
    assert result.exit_code == 2, result.output
    assert errors(result) == [errors(result)[0]] and "kernel file 'wk.npy'" in errors(result)[0]
    assert digest(work / "wk.npy") == before


def test_report_over_a_filter_file_is_refused(work):
    gray(work / "a.png")
    (work / "blur.mat").write_text("3 3\n1 1 1\n1 1 1\n1 1 1\n")
    before = digest(work / "blur.mat")
    result = run("apply", "a.png", "-k", "blur.mat", "-o", "o.png", "--report", "blur.mat")
    assert result.exit_code == 2 and "--report 'blur.mat' is the kernel file" in result.output
    assert digest(work / "blur.mat") == before and not (work / "o.png").exists()


def test_kernel_files_are_protected_through_links_configs_and_frames(work):
    gray(work / "a.png")
    (work / "w").mkdir()
    np.save(work / "w" / "inner.npy", np.ones((3, 3)))
    (work / "cfg.json").write_text('{"weight": "w/inner.npy", "normalize": true}')
    (work / "link.npy").symlink_to(work / "w" / "inner.npy")
    before = digest(work / "w" / "inner.npy")
    for output in ("link.npy", "w/inner.npy", "w/inner{frame}.npy"):
        if "{frame}" in output:  # frame 0 of the template names the weight file
            (work / "w" / "inner0.npy").symlink_to(work / "w" / "inner.npy")
        result = run("apply", "a.png", "-k", "cfg.json", "-o", output)
        assert result.exit_code == 2, (output, result.output)
        assert "is the kernel file" in errors(result)[0]
    result = run("apply", "a.png", "-k", "cfg.json", "-o", "o.png", "--report", "link.npy")
    assert result.exit_code == 2 and "is the kernel file" in result.output
    assert digest(work / "w" / "inner.npy") == before


def test_stdin_named_twice_is_a_usage_error_up_front(work):
    image = (SAMPLES / "camera.png").read_bytes()
    result = CliRunner().invoke(
        cli, ["apply", "-", "-", "-k", "box:3", "-o", "o{index}.png"], input=image
    )
    assert result.exit_code == 2, result.output
    assert errors(result) == [errors(result)[0]] and "named 2 times" in result.output
    assert not list(work.glob("o*.png"))


# Standard streams open on an input: compared by the file they are open on -----------------


def _shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """``command`` in a shell (for its redirections), ``convcli`` being this one."""
    env = dict(os.environ, CONVCLI=" ".join(CONVCLI))
    return subprocess.run(
        ["bash", "-c", command.replace("convcli ", "$CONVCLI ")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


STREAM_CASES = [
    ("convcli apply - -k box:3 -o in.png < in.png", "output 'in.png' is the input - (standard"),
    (
        "convcli apply in.png -k box:3 -o - >> in.png",
        "output - (standard output) is the input 'in.png'",
    ),
    (
        "convcli apply in.png -k box:3 -o - 1<>in.png",
        "output - (standard output) is the input 'in.png'",
    ),
    ("convcli apply - -k box:3 -o - 1<>in.png < in.png", "is the input - (standard input)"),
    (
        "convcli apply in.png -k box:3 -o o.png --report - >> in.png",
        "--report - (standard output) is the input",
    ),
    (
        "convcli apply - -k box:3 -o o.png --report in.png < in.png",
        "--report 'in.png' is the input - ",
    ),
    ("convcli apply in.png -k k.txt -o - >> k.txt", "is the kernel file 'k.txt' (-k)"),
    ("convcli upsample - -o in.png < in.png", "output 'in.png' is the input - (standard"),
    ("convcli shape - -k 3x3 --diagram in.png < in.png", "--diagram 'in.png' is the input - "),
    ("convcli shape in.png -k 3x3 >> in.png", "the shape text - (standard output) is the input"),
    ("convcli kernels k.txt >> k.txt", "the kernel text - (standard output) is the kernel file"),
]


@pytest.mark.parametrize(("command", "needle"), STREAM_CASES)
def test_standard_streams_never_overwrite_an_input(tmp_path, command, needle):
    # Each of these replaced or grew its input (exit 0): `/dev/stdin` as a path was
    # refused, `-` was not.
    gray(tmp_path / "in.png", 6, 5)
    (tmp_path / "k.txt").write_text("1 2 1\n")
    before = {p: digest(p) for p in (tmp_path / "in.png", tmp_path / "k.txt")}
    result = _shell(command, tmp_path)
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and needle in lines[0]
    assert {p: digest(p) for p in before} == before
    assert not (tmp_path / "o.png").exists()


def test_streams_on_other_files_are_still_fine(tmp_path):
    gray(tmp_path / "in.png", 6, 5)
    result = _shell("convcli apply - -k box:3 -o - < in.png > out.png", tmp_path)
    assert result.returncode == 0, result.stderr
    with PILImage.open(tmp_path / "out.png") as written:
        assert written.size == (5, 6)


@pytest.mark.parametrize("name", ["/dev/stdout", "/dev/fd/1"])
def test_a_path_to_a_closed_stdout_is_refused_as_dash_is(tmp_path, name):
    # convcli holds a closed stdout on /dev/null: the data went nowhere, exit 0.
    gray(tmp_path / "in.png", 6, 5)
    result = _shell(f"convcli apply in.png -k box:3 -o {name} --format png >&-", tmp_path)
    lines = result.stderr.splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert f"-o {name} writes to standard output, which is closed" in lines[0]
