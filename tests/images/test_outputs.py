"""Output safety: atomic replacement, staged outputs, special files, no temporary left."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from convcli import OutputError
from convcli.images.outputs import (
    CompleteWrites,
    _temporary_name,
    atomic_output,
    remove_unplaced,
)
from convcli.images.writing import write_image
from tests.paths import SAMPLES

SAMPLE = SAMPLES / "camera.png"


def test_atomic_replace_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(str(target)) as stream:
        stream.write(b"partial")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.png"]
    with atomic_output(str(target)) as stream:
        stream.write(b"new")
    assert target.read_bytes() == b"new"
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)


def test_interrupt_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt), atomic_output(str(tmp_path / "x.png")) as stream:
        stream.write(b"half")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_missing_directory_and_a_file_as_directory(tmp_path):
    with (
        pytest.raises(OutputError, match="does not exist"),
        atomic_output(str(tmp_path / "missing" / "x.png")),
    ):
        pass
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="file"), atomic_output(str(blocker / "x.png")):
        pass


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_disk_full_device_is_written_directly_and_reported():
    with pytest.raises(OutputError, match="/dev/full.*space"), atomic_output("/dev/full") as s:
        s.write(b"x" * 100000)
    assert os.path.exists("/dev/full") and not os.path.isfile("/dev/full")


def test_read_only_directory(tmp_path):
    if os.geteuid() == 0:
        # root writes anywhere; a read-only bind is not available, so use a path under a file
        target = tmp_path / "f"
        target.write_text("")
        path = str(target / "out.png")
    else:
        os.chmod(tmp_path, 0o500)
        path = str(tmp_path / "out.png")
    with pytest.raises(OutputError, match="out.png"), atomic_output(path) as stream:
        stream.write(b"x")


def test_named_pipe_is_written_directly(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    pid = os.fork()
    if pid == 0:  # reader
        with open(fifo, "rb") as reader:
            data = reader.read()
        os._exit(0 if data == b"through the pipe" else 1)
    with atomic_output(str(fifo)) as stream:
        stream.write(b"through the pipe")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert fifo.exists() and not fifo.is_file()


def test_stdout(capfdbinary):
    with atomic_output("-") as stream:
        assert stream.raw is sys.stdout.buffer
        stream.write(b"to stdout")
    assert capfdbinary.readouterr().out == b"to stdout"


class _Trickle:
    """A stream that takes at most 3 bytes per write, as a pipe may."""

    def __init__(self):
        self.data = bytearray()

    def write(self, data):
        self.data += bytes(data[:3])
        return min(3, len(data))


def test_short_writes_are_completed():
    trickle = _Trickle()
    assert CompleteWrites(trickle).write(np.arange(10, dtype=np.uint16).data) == 20
    assert bytes(trickle.data) == np.arange(10, dtype=np.uint16).tobytes()


@pytest.mark.parametrize("fmt", ["npy", "png", "tif"])
def test_closed_pipe_raises_broken_pipe(tmp_path, fmt):
    # np.save wrote through fwrite on the descriptor: "OSError: N requested and 0 written".
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        with pytest.raises(BrokenPipeError):
            write_image(np.zeros((3, 300, 300), np.float32), f"/dev/fd/{write_end}", fmt=fmt)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("fmt", ["npy", "png", "tif"])
def test_reader_leaving_mid_write_exits_141_quietly(tmp_path, fmt):
    big = tmp_path / "big.npy"
    np.save(big, np.random.default_rng(0).random((3, 1000, 1000), np.float32))
    command = f"{sys.executable} -m convcli apply {big} -k box:3 -o - --format {fmt} -q"
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command} | head -c 10 > /dev/null"],
        capture_output=True,
    )
    assert b"Traceback" not in result.stderr, result.stderr.decode()
    assert result.returncode == 141, result.stderr.decode()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_full_stdout_is_one_error_line(tmp_path):
    command = f"{sys.executable} -m convcli apply {SAMPLE} -k box:3 -o - -q > /dev/full"
    result = subprocess.run(["bash", "-c", command], capture_output=True)
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        f"Error: {SAMPLE}: <stdout>: cannot write (No space left on device)"
    ]


@pytest.mark.parametrize("name", ["n" * 251 + ".png", "é" * 125 + ".png", "short.png"])
def test_the_temporary_name_fits_wherever_the_name_does(tmp_path, name):
    temporary = _temporary_name(tmp_path, name)
    assert len(os.fsencode(temporary)) <= 255 and temporary.endswith(".part")
    assert temporary.startswith("." + name[:5])
    temporary.encode("utf-8")  # cut at a character, never inside one
    with atomic_output(str(tmp_path / name)) as stream:
        stream.write(b"data")
    assert os.listdir(tmp_path) == [name]


def test_stdout_closed_is_an_output_error(monkeypatch):
    monkeypatch.setattr(sys, "stdout", None)
    with pytest.raises(OutputError, match="standard output is closed"), atomic_output("-"):
        pass


# Staged outputs: complete but not in place until committed ---------------------------------


def test_staged_output_is_in_place_only_once_committed(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    staged = []
    with atomic_output(str(target), staged=staged) as stream:
        stream.write(b"new")
    assert target.read_bytes() == b"old" and len(staged) == 1
    assert staged[0].temporary.read_bytes() == b"new"
    staged[0].sync()
    staged[0].commit()
    assert target.read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == ["out.png"]


def test_discarded_or_failing_staged_outputs_leave_nothing(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    for fail in (False, True):
        staged = []
        with atomic_output(str(target), staged=staged) as stream:
            stream.write(b"new")
        if not fail:
            staged[0].discard()
        else:
            monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "EIO")))
            with pytest.raises(OutputError, match="out.png: cannot write"):
                staged[0].commit()
        assert target.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["out.png"]


def test_special_targets_are_written_at_once_even_when_staging(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(
        [sys.executable, "-c", f"print(len(open({str(fifo)!r}, 'rb').read()))"],
        stdout=subprocess.PIPE,
    )
    staged = []
    with atomic_output(str(fifo), staged=staged) as stream:
        stream.write(b"12345")
    assert reader.communicate(timeout=10)[0].strip() == b"5" and staged == []


def test_an_abandoned_batch_removes_every_temporary_not_in_place(tmp_path):
    staged = []
    with atomic_output(str(tmp_path / "staged.png"), staged=staged) as stream:
        stream.write(b"complete")
    with atomic_output(str(tmp_path / "writing.png"), staged=[]) as stream:
        stream.write(b"half")
        remove_unplaced()  # another thread, say, while this one is still writing
    with atomic_output(str(tmp_path / "placed.png")) as stream:
        stream.write(b"in place")
    remove_unplaced()
    assert sorted(os.listdir(tmp_path)) == ["placed.png"]


def test_no_temporary_appears_after_an_interrupted_batch_cleaned_up(tmp_path, monkeypatch):
    # A worker thread still running after the signal's cleanup must not leave a new
    # temporary behind: creating one is refused from then on.
    from convcli.images import outputs

    monkeypatch.setattr(outputs, "_closed", False)
    with atomic_output(str(tmp_path / "before.png")) as stream:
        stream.write(b"complete")
    outputs.remove_unplaced(final=True)
    with pytest.raises(OutputError, match="interrupted"), atomic_output(str(tmp_path / "x.png")):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["before.png"]


@pytest.mark.parametrize("staging", [False, True])
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o755])
def test_replacing_a_file_keeps_its_permissions(tmp_path, mode, staging):
    # The temporary's mode (0o666 less the umask) replaced the old file's, as neither cp
    # nor ImageMagick does: a 0o640 output became world-readable.
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    os.chmod(target, mode)
    staged = [] if staging else None
    with atomic_output(str(target), staged=staged) as stream:
        stream.write(b"new")
    for output in staged or ():
        output.commit()
    assert target.read_bytes() == b"new" and (os.stat(target).st_mode & 0o7777) == mode


def test_a_new_file_has_the_umask_s_mode(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic_output(str(tmp_path / "new.png")) as stream:
            stream.write(b"new")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "new.png").st_mode & 0o7777 == 0o640
