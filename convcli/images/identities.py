"""Which file a path or a standard descriptor is: (device, inode) identities.

An output must never be an input or a kernel file, also through a link, another name,
or a standard stream redirected to one (``-o - >> in.png``); these are the facts that
check compares, and the names (``/dev/stdout`` and its aliases) that stand for a
descriptor rather than a file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable


def stream_identity(fd: int) -> tuple[int, int] | None:
    """(device, inode) of the file a standard descriptor is open on, when it is a regular
    file (``< in.png``, ``>> out.png``); None for a terminal, a pipe, /dev/null or a
    closed one, which hold no file an output could overwrite."""
    try:
        found = os.fstat(fd)
    except OSError:
        return None
    return (found.st_dev, found.st_ino) if stat.S_ISREG(found.st_mode) else None


def names_descriptor(path: str, fd: int) -> bool:
    """True when ``path`` is a name of this process's descriptor ``fd`` (``/dev/stdout``,
    ``/dev/fd/1``, ``/proc/self/fd/1``, or a link to one): followed name by name, since
    the file behind it may be /dev/null, where convcli holds a closed standard stream.

    Examples
    --------
    >>> names_descriptor("/dev/stdout", 1), names_descriptor("out.png", 1)
    (True, False)
    """
    standard = {0: "/dev/stdin", 1: "/dev/stdout", 2: "/dev/stderr"}.get(fd)
    names = {standard, f"/dev/fd/{fd}", f"/proc/self/fd/{fd}", f"/proc/{os.getpid()}/fd/{fd}"}
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on links followed
        if current in names:
            return True
        try:
            link = os.readlink(current)
        except OSError:
            return False
        current = os.path.normpath(os.path.join(os.path.dirname(current), link))
    return False


def file_identities(
    inputs: Iterable[str], kernels: Iterable[str] = ()
) -> dict[tuple[int, int], tuple[str, str]]:
    """(device, inode) of each existing input and kernel file -> ("input" or "kernel",
    the name it was given by); the first input of a file names it. An input ``-`` is
    the file standard input is open on, if it is one."""
    found: dict[tuple[int, int], tuple[str, str]] = {}
    for kind, paths in (("input", inputs), ("kernel", kernels)):
        for source in paths:
            if source == "-":
                identity = stream_identity(0)
                if identity is not None:
                    found.setdefault(identity, (kind, source))
                continue
            try:
                info = os.stat(source)
            except OSError:
                continue
            found.setdefault((info.st_dev, info.st_ino), (kind, source))
    return found


def same_path(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` name the same file, existing or not (``-`` is never a file)."""
    if "-" in (a, b):
        return False
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
