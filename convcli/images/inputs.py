"""Reading an input's bytes safely: regular files whole, pipes and standard input as
bounded streams, anything else refused before it is read.

Every input is held in memory while it is decoded, so what may be read is bounded by
what an image within the pixel limit can take (:func:`byte_budget`): a regular file
larger than that is refused from its size alone, a stream (``-``, a named pipe,
``<(...)``) is read until it ends or passes the budget, and a stream whose first bytes
are no image format's is refused there, so that ``cat /dev/urandom | convcli apply -``
stops at once. Devices (``/dev/zero``, a terminal) and sockets never end, or were not
meant to be read whole: they are refused without reading.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

from convcli.errors import ImageError, shown_name

# The most a raster convcli reads can store per pixel: four float64 samples (.npy), or
# four 16-bit samples with a worst-case LZW expansion; headers, profiles and
# thumbnails are what the slack is for.
BYTES_PER_PIXEL = 32
SLACK = 64 << 20
PREFIX = 1 << 16  # what a stream shows before it is recognised (or refused) as an image
_CHUNK = 1 << 20


def byte_budget(max_pixels: int) -> int:
    """The most bytes an input within ``max_pixels`` may hold.

    Examples
    --------
    >>> byte_budget(1000) == 1000 * BYTES_PER_PIXEL + SLACK
    True
    """
    return max_pixels * BYTES_PER_PIXEL + SLACK


def shown(path: str | Path) -> str:
    """How an input is named in messages: ``<stdin>`` for ``-``, else
    :func:`~convcli.errors.shown_name` (quoted when it holds a control character)."""
    return "<stdin>" if str(path) == "-" else shown_name(path)


def is_stream(path: str | Path) -> bool:
    """True for ``-`` and named pipes: inputs whose reading may wait without end (a pipe
    with no writer yet), which a caller should read where a signal can stop it.

    Examples
    --------
    >>> is_stream("-"), is_stream("/dev/zero"), is_stream("no-such-file.png")
    (True, False, False)
    """
    if str(path) == "-":
        return True
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


def _kind(mode: int) -> str | None:
    """What a file that cannot be read as an image input is, or None when it can (a
    socket can: standard input may be one, as a pipe from some programs is)."""
    if stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "a special file"


def _refuse(source: str, kind: str) -> ImageError:
    if kind == "a directory":
        return ImageError(f"{source}: is a directory, not an image")
    return ImageError(
        f"{source}: is {kind}, not an image file; convcli reads regular files, named pipes "
        f"and '-' (standard input)"
    )


def read_input(
    path: str | Path,
    *,
    limit: int,
    recognise: Callable[[bytes], bool] | None = None,
    budget_hint: str = "",
) -> tuple[bytes, str]:
    """The bytes of ``path`` (``-`` for standard input) and the name to show for it.

    A regular file is read whole once its size is known to be at most ``limit``; a
    pipe is read up to ``limit`` bytes, and refused after its first bytes when
    ``recognise(prefix)`` is false; devices, sockets and directories are refused
    without being read. ``budget_hint`` ends the message of an input over the limit
    (e.g. how to raise it).

    Examples
    --------
    >>> read_input("/dev/zero", limit=100)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    convcli.errors.ImageError: /dev/zero: is a character device, not an image file; ...
    """
    source = shown(path)
    if source == "<stdin>":
        fd = _stdin_fd()
        if fd is None:  # a stream with no descriptor (a test's or an embedding program's)
            stream = sys.stdin.buffer  # type: ignore[union-attr]
            over = _over(source, limit, budget_hint)
            return _read_stream(stream.read, source, limit, recognise, over), source
        return _read_fd(fd, source, os.fstat(fd).st_mode, limit, recognise, budget_hint), source
    try:
        mode = os.stat(path).st_mode
        kind = "a socket" if stat.S_ISSOCK(mode) else _kind(mode)  # opening a device can act
        if kind is not None:
            raise _refuse(source, kind)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ImageError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{source}: is a directory, not an image") from None
    except OSError as err:
        raise ImageError(f"{source}: cannot read it ({err.strerror or err})") from None
    try:
        return _read_fd(fd, source, os.fstat(fd).st_mode, limit, recognise, budget_hint), source
    finally:
        os.close(fd)


def _stdin_fd() -> int | None:
    """Standard input's descriptor (None for a Python stream without one), or an error
    when it is closed (``<&-``)."""
    stream = sys.stdin
    try:
        fd = stream.fileno()  # type: ignore[union-attr]
        os.fstat(fd)
    except io.UnsupportedOperation:
        return None
    except (AttributeError, ValueError, OSError):
        raise ImageError(
            "<stdin>: standard input is closed; pipe an image in, or name the file"
        ) from None
    if os.isatty(fd):
        raise ImageError(
            "<stdin>: standard input is a terminal; pipe an image in (cat a.png | convcli "
            "apply - ...), or name the file"
        )
    return fd


def _over(source: str, limit: int, hint: str) -> str:
    return (
        f"{source}: more than {limit:,} bytes, more than an image within the pixel limit "
        f"can hold{hint}"
    )


def _read_fd(
    fd: int,
    source: str,
    mode: int,
    limit: int,
    recognise: Callable[[bytes], bool] | None,
    hint: str,
) -> bytes:
    kind = _kind(mode)
    if kind is not None:
        raise _refuse(source, kind)
    over = _over(source, limit, hint)
    try:
        if stat.S_ISREG(mode) and os.fstat(fd).st_size:
            if os.fstat(fd).st_size > limit:
                raise ImageError(over)
            with os.fdopen(os.dup(fd), "rb") as stream:
                data = stream.read()  # sized from fstat: no growing copies
            if len(data) > limit:  # it grew while being read
                raise ImageError(over)
            return data
        # A pipe, or a regular file of no stated size (/proc): read it as a stream.
        stream = not stat.S_ISREG(mode)
        return _read_stream(
            lambda size: os.read(fd, size), source, limit, recognise if stream else None, over
        )
    except OSError as err:
        raise ImageError(f"{source}: cannot read it ({err.strerror or err})") from None


def _read_stream(
    read: Callable[[int], bytes],
    source: str,
    limit: int,
    recognise: Callable[[bytes], bool] | None,
    over: str,
) -> bytes:
    """A stream's bytes until it ends; refused past ``limit`` or when it starts as no image."""
    buffer = io.BytesIO()  # getvalue() hands over its buffer without a copy
    checked = recognise is None
    while True:
        chunk = read(_CHUNK)
        if chunk:
            buffer.write(chunk)
        size = buffer.tell()
        if not checked and (size >= PREFIX or not chunk):
            with buffer.getbuffer() as view:
                prefix = bytes(view[:PREFIX])
            if size and not recognise(prefix):  # type: ignore[misc]
                raise ImageError(
                    f"{source}: its first bytes are no image format convcli reads; stopped "
                    f"reading there"
                )
            checked = True
        if not chunk:
            return buffer.getvalue()
        if size > limit:
            raise ImageError(over)
