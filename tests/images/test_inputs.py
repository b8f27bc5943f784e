"""inputs.py: an input's bytes by what the file is: regular files whole within the byte
budget, pipes and standard input as bounded streams, devices and sockets refused."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import sys
import threading

import pytest

from convcli.errors import ImageError
from convcli.images import inputs
from convcli.images.inputs import PREFIX, byte_budget, read_input


def _feed(path, data: bytes) -> threading.Thread:
    def write() -> None:
        # The reader may stop early, as it should: a closed pipe is expected then.
        with open(path, "wb") as stream, contextlib.suppress(BrokenPipeError):
            stream.write(data)

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def test_a_regular_file_is_read_whole(tmp_path):
    (tmp_path / "a").write_bytes(b"pixels" * 1000)
    assert read_input(tmp_path / "a", limit=6000) == (b"pixels" * 1000, str(tmp_path / "a"))


def test_a_regular_file_over_the_limit_is_refused_unread(tmp_path):
    path = tmp_path / "big"
    with open(path, "wb") as stream:
        stream.truncate(1 << 40)  # sparse: a terabyte that is never read
    with pytest.raises(ImageError, match=r"big: more than 1,000 bytes.*raise it"):
        read_input(path, limit=1000, budget_hint="; raise it")


def test_a_file_of_no_stated_size_is_read_as_a_stream():
    data, _ = read_input("/proc/self/status", limit=1 << 20)
    assert b"Name:" in data


@pytest.mark.parametrize(("path", "kind"), [("/dev/zero", "character device"), ("/", "")])
def test_devices_and_directories_are_refused_without_being_read(path, kind):
    with pytest.raises(ImageError, match=kind or "is a directory, not an image"):
        read_input(path, limit=1 << 20)


def test_a_socket_path_is_refused(tmp_path):
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "s"))
        with pytest.raises(ImageError, match="is a socket, not an image file"):
            read_input(tmp_path / "s", limit=100)


def test_a_named_pipe_is_read_to_its_end(tmp_path):
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    payload = b"\x89PNG" + bytes(3 * PREFIX)
    writer = _feed(fifo, payload)
    data, _ = read_input(fifo, limit=1 << 20, recognise=lambda prefix: prefix[:4] == b"\x89PNG")
    writer.join()
    assert data == payload


def test_a_stream_that_starts_as_no_image_is_refused_after_its_first_bytes(tmp_path):
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    seen = []

    def recognise(prefix: bytes) -> bool:
        seen.append(len(prefix))
        return False

    writer = _feed(fifo, bytes(50 << 20))
    with pytest.raises(ImageError, match="its first bytes are no image format"):
        read_input(fifo, limit=1 << 30, recognise=recognise)
    writer.join()
    assert seen == [PREFIX]


def test_a_stream_past_the_limit_is_refused(tmp_path):
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    writer = _feed(fifo, bytes(5 << 20))
    with pytest.raises(ImageError, match="more than 1,048,576 bytes"):
        read_input(fifo, limit=1 << 20, recognise=lambda prefix: True)
    writer.join()


def test_closed_standard_input_is_an_image_error(monkeypatch):
    monkeypatch.setattr(sys, "stdin", None)
    with pytest.raises(ImageError, match="<stdin>: standard input is closed"):
        read_input("-", limit=100)


def test_standard_input_without_a_descriptor_is_read_as_a_stream(monkeypatch):
    stream = io.TextIOWrapper(io.BytesIO(b"GIF89a" + bytes(100)))
    monkeypatch.setattr(sys, "stdin", stream)
    assert read_input("-", limit=1000)[0][:6] == b"GIF89a"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(bytes(2000))))
    with pytest.raises(ImageError, match="more than 1,000 bytes"):
        read_input("-", limit=1000)


def test_the_budget_grows_with_the_pixel_limit():
    assert byte_budget(10) < byte_budget(11)
    assert byte_budget(100) - byte_budget(99) == inputs.BYTES_PER_PIXEL
