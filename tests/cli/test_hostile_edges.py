"""The real command at its edges: huge numbers and deep nesting, closed standard streams,
signals while writing, long names, and stderr that holds only convcli's own lines."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from tests import hostile
from tests.hostile import assert_one_error, leftovers, run, snapshot


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "a.png"
    PILImage.fromarray(hostile.pixels()).save(path)
    return path


# Numbers and nesting ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_a_kernel_file_nested_500_deep_is_one_usage_error(tmp_path, image, suffix):
    nested = "[" * 500 + "1" + "]" * 500
    kernel = tmp_path / f"deep{suffix}"
    kernel.write_text(f"weight = {nested}\n" if suffix == ".toml" else f'{{"weight": {nested}}}')
    result = run("apply", image, "-k", kernel, "-o", tmp_path / "o.png")
    assert "nested too deeply" in assert_one_error(result, 2)
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("where", ["option", "toml"])
def test_a_stride_past_int64_gives_the_one_output_it_defines(tmp_path, image, where):
    huge = 2**66  # one output row and column: what a stride of 10**6 gives too
    if where == "toml":
        kernel = tmp_path / "k.toml"
        kernel.write_text(f'weight = "box:3"\nstride = {huge}\npadding = "valid"\n')
        args = ["-k", kernel]
    else:
        args = ["-k", "box:3", "--stride", str(huge), "--padding", "valid"]
    result = run("apply", image, *args, "-o", tmp_path / "huge.npy", "-q")
    assert result.returncode == 0, result.stderr
    small = run(
        "apply",
        image,
        "-k",
        "box:3",
        "--stride",
        "1000000",
        "--padding",
        "valid",
        "-o",
        tmp_path / "small.npy",
        "-q",
    )
    assert small.returncode == 0, small.stderr
    got, expected = np.load(tmp_path / "huge.npy"), np.load(tmp_path / "small.npy")
    assert got.shape == (3, 1, 1)
    np.testing.assert_array_equal(got, expected)


def test_a_padding_past_int64_is_one_error(tmp_path, image):
    result = run(
        "apply",
        image,
        "-k",
        "box:3",
        "--padding",
        str(2**66),
        "--pad-mode",
        "zeros",
        "-o",
        tmp_path / "o.png",
    )
    assert "needs about" in assert_one_error(result)  # an output of 2**67 rows


# Closed standard streams ----------------------------------------------------------------------


def test_closed_stdout_with_o_dash_is_an_output_error(tmp_path, image):
    result = run("apply", image, "-k", "box:3", "-o", "-", close=(1,), stdout=None)
    assert "-o - writes to standard output, which is closed" in assert_one_error(result)


def test_closed_stdout_with_report_dash_does_not_pass_silently(tmp_path, image):
    out = tmp_path / "o.png"
    result = run("apply", image, "-k", "box:3", "-o", out, "--report", "-", close=(1,), stdout=None)
    assert "--report - writes to standard output" in assert_one_error(result)
    assert not out.exists()  # refused before anything was read or written


@pytest.mark.parametrize(
    "args", [["shape", "1,1,8,8", "-k", "3x3"], ["kernels"], ["kernels", "box:3"]]
)
def test_commands_that_answer_on_stdout_refuse_a_closed_one(args):
    result = run(*args, close=(1,), stdout=None)
    assert "standard output is closed" in assert_one_error(result)


def test_an_output_opened_while_stderr_is_closed_never_takes_its_descriptor(tmp_path):
    # With fd 2 closed, the next file opened would be fd 2: anything a C library writes
    # to stderr would land in it. A damaged TIFF makes libtiff want to write.
    bad = tmp_path / "bad.tif"
    bad.write_bytes(hostile.damaged_lzw_tiff())
    good = tmp_path / "good.png"
    PILImage.fromarray(hostile.pixels()).save(good)
    out = tmp_path / "out"
    out.mkdir()
    result = run("apply", good, bad, "-k", "box:3", "-o", f"{out}/", close=(2,), stderr=None)
    assert result.returncode == 1
    with PILImage.open(out / "good.png") as written:
        written.load()
    assert not (out / "bad.png").exists()


# Signals while an output is written ------------------------------------------------------------

# The real command with its PNG writer slowed down for the second output: the signal
# arrives while that output's temporary file is open and partly written.
_SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    from convcli.images import png
    original, calls = png.write_png, []

    def slow(pixels, stream, **options):
        calls.append(1)
        if len(calls) == 2:
            stream.write(b"half an image")
            stream.flush()
            time.sleep(float(sys.argv[1]))
        original(pixels, stream, **options)

    png.write_png = slow
    from convcli.cli.app import main
    main(sys.argv[2:])
    """
)


def _interrupted(
    tmp_path: Path, signum: int, *, ignore: bool = False, sleep: float = 60, threads: int = 1
):
    inputs = []
    for n in range(3):
        path = tmp_path / f"in{n}.png"
        PILImage.fromarray(hostile.pixels(seed=n)).save(path)
        inputs.append(path)
    out = tmp_path / "out"
    out.mkdir()
    before = snapshot(*inputs)

    def prepare() -> None:
        if ignore:  # as nohup does
            signal.signal(signum, signal.SIG_IGN)

    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _SLOW_WRITER,
            str(sleep),
            "apply",
            *map(str, inputs),
            "-k",
            "box:3",
            "-q",
            "--threads",
            str(threads),
            "-o",
            f"{out}/",
        ],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=prepare,
    )

    def stalled() -> str | None:
        """The name of the input whose output stalls half written, once it does."""
        for part in out.glob(".*.part"):
            with contextlib.suppress(FileNotFoundError):  # renamed into place meanwhile
                if part.read_bytes() == b"half an image":
                    return part.name.split(".")[1]
        return None

    deadline = time.monotonic() + 60
    while (stalling := stalled()) is None:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert snapshot(*inputs) == before
    return process.returncode, stderr, out, stalling


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_signal_while_writing_leaves_no_temporary_file(tmp_path, signum, code, threads):
    start = time.monotonic()
    returncode, stderr, out, stalling = _interrupted(tmp_path, signum, threads=threads)
    assert time.monotonic() - start < 30  # not held by the writer, which sleeps a minute
    assert returncode == code
    assert "Traceback" not in stderr
    assert stderr.strip() == f"Aborted ({signal.Signals(signum).name})."
    assert leftovers(out) == []
    written = sorted(p.name for p in out.iterdir())
    if threads == 1:
        assert stalling == "in1" and written == ["in0.png"]  # complete, the rest not begun
    else:
        # Images in flight side by side (the second to be written stalls, whichever it
        # is): the outputs are in input order only, none from the stalled one on.
        stalled_at = int(stalling[2:])
        assert written == [f"in{n}.png" for n in range(len(written))]
        assert len(written) <= stalled_at
    for name in written:
        with PILImage.open(out / name) as image:
            image.load()


def test_a_hangup_ignored_by_the_caller_stays_ignored(tmp_path):
    returncode, stderr, out, _ = _interrupted(tmp_path, signal.SIGHUP, ignore=True, sleep=1)
    assert returncode == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == ["in0.png", "in1.png", "in2.png"]


# Long names ---------------------------------------------------------------------------------


def test_a_legal_250_byte_output_name_is_written(tmp_path, image):
    out = tmp_path / ("n" * 246 + ".png")
    result = run("apply", image, "-k", "box:3", "-o", out, "-q")
    assert result.returncode == 0, result.stderr
    assert out.exists() and leftovers(tmp_path) == []


def test_a_multibyte_name_at_the_limit_gets_a_temporary_that_fits(tmp_path, image):
    out = tmp_path / ("é" * 125 + ".png")  # 254 bytes
    result = run("apply", image, "-k", "box:3", "-o", out, "-q")
    assert result.returncode == 0, result.stderr
    assert out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("option", ["-o", "--report"])
def test_a_name_too_long_is_refused_before_any_input_is_read(tmp_path, option):
    name = tmp_path / ("n" * 300 + (".png" if option == "-o" else ".jsonl"))
    other = ["-o", tmp_path / "o.png"] if option == "--report" else []
    result = run("apply", tmp_path / "missing.png", "-k", "box:3", option, name, *other)
    line = assert_one_error(result)
    assert "the file name is 30" in line and "missing.png" not in line


# Messages -------------------------------------------------------------------------------------


def test_a_damaged_lzw_tiff_gives_only_convcli_s_line(tmp_path):
    bad = tmp_path / "scan.tif"
    bad.write_bytes(hostile.damaged_lzw_tiff())
    result = run("apply", bad, "-k", "box:3", "-o", tmp_path / "o.png")
    line = assert_one_error(result)
    assert line.startswith(f"Error: {bad}: ") and "tempfile" not in result.stderr


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_kernel_path_that_is_not_a_regular_file_says_so(tmp_path, image, kind):
    if kind == "fifo":
        kernel = tmp_path / "k.txt"
        os.mkfifo(kernel)
    else:
        kernel = Path("/dev/zero")
    result = run("apply", image, "-k", kernel, "-o", tmp_path / "o.png", timeout=20)
    line = assert_one_error(result, 2)
    assert f"kernel file '{kernel}' is not a regular file" in line


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('{"weight": [[1, 2]], "weight": [[3, 4]]}', "weight"),
        ('{"weight": [[1]], "stride": 1, "stride": 2}', "stride"),
    ],
)
def test_json_kernel_files_refuse_duplicate_keys_as_toml_does(tmp_path, image, text, key):
    kernel = tmp_path / "k.json"
    kernel.write_text(text)
    assert json.loads(text)  # Python's json alone takes the last value silently
    before = snapshot(kernel)
    result = run("apply", image, "-k", kernel, "-o", tmp_path / "o.png")
    assert f"the key {key!r} is given twice" in assert_one_error(result, 2)
    assert snapshot(kernel) == before
    toml = tmp_path / "k.toml"
    toml.write_text(f"{key} = 1\n{key} = 2\n")
    assert_one_error(run("kernels", toml), 2)


def test_a_fifo_kernel_is_never_waited_on(tmp_path):
    # Opening a FIFO with no writer would block forever; it is refused from what it is.
    kernel = tmp_path / "k.json"
    os.mkfifo(kernel)
    result = run("kernels", kernel, timeout=20)
    assert "is not a regular file" in assert_one_error(result, 2)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_a_wait_for_a_pipe_that_has_no_writer(tmp_path, image, signum, code):
    # The pipe is opened where the signal arrives (not on the read-ahead thread, which
    # the interpreter would wait for at exit, for ever).
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    out.mkdir()
    process = subprocess.Popen(
        [*hostile.CONVCLI, "apply", image, fifo, "-k", "box:3", "-o", f"{out}/", "-q"],
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1)  # long enough to reach the pipe; the assertions hold either way
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == code and "Traceback" not in stderr
    assert leftovers(out) == []
