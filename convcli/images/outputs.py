"""Writing outputs safely: never half-written, never a temporary left behind.

Regular files are written to a temporary file in the target directory and
renamed into place only when complete, so a failure (disk full, Ctrl-C) leaves
the old file, or nothing, behind. Targets that are not regular files (a device
such as ``/dev/full`` or ``/dev/stdout``, a named pipe) are written directly and
never renamed over; ``-`` is standard output. Names, formats and the checks made
before writing are :mod:`convcli.images.output_paths`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from convcli.errors import OutputError, shown_name
from convcli.images.output_paths import check_output_directory, is_special, name_max


def _temporary_name(directory: Path, name: str) -> str:
    """``.NAME.<hex>.part``, with NAME cut (at a character) so that it fits wherever
    NAME itself does: a legal 250-byte output name must not fail for its temporary."""
    token = secrets.token_hex(6)
    room = name_max(str(directory)) - len(f"..{token}.part")
    while len(os.fsencode(name)) > room:
        name = name[:-1]
    return f".{name}.{token}.part"


class CompleteWrites:
    """A binary stream whose ``write`` writes all of its data or raises.

    ``io.BufferedWriter.write`` of a large buffer to a pipe returns a short
    count, without an error, when the reader goes away mid-write (measured with
    CPython 3.11: 65536 of 12,000,000 bytes to ``| head -c 10``). A caller that
    trusts the count would finish "successfully" with a truncated output; here
    the rest is written again, so the closed pipe raises ``BrokenPipeError``.

    Examples
    --------
    >>> import io
    >>> stream = CompleteWrites(io.BytesIO())
    >>> stream.write(b"pixels"), stream.getvalue()
    (6, b'pixels')
    """

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        total = len(view)
        while view:
            count = self.raw.write(view)
            if not count:  # None (would block) or 0: no progress is possible
                raise OSError(errno.EIO, "the output accepted no more data")
            view = view[count:]
        return total

    def __getattr__(self, name: str):
        return getattr(self.raw, name)


# Temporaries created and not yet renamed into place nor removed, by any thread: what a
# batch abandoned mid-way (a signal) removes while its workers may still be writing.
_unplaced: set[Path] = set()
_unplaced_lock = threading.Lock()
_closed = False  # set by remove_unplaced: no new temporary may appear after it ran
_REMOVE_TRIES = 100  # passes over a temporary directory that writers still add to


def _create(temporary: Path, *, directory: bool = False) -> int | None:
    """Create ``temporary`` (a new file, opened for writing, or a new directory) and track
    it, in one step under the lock, so that a worker still running after
    :func:`remove_unplaced` cannot leave a new one behind."""
    with _unplaced_lock:
        if _closed:
            raise OutputError(
                f"{shown_name(temporary.parent)}: not written, the command was interrupted"
            )
        if directory:
            os.mkdir(temporary)
            fd = None
        else:
            # O_EXCL: never an existing file; mode 0o666 less the umask, as any new output.
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        _unplaced.add(temporary)
        return fd


def _placed(temporary: Path) -> None:
    """``temporary`` was renamed into place or removed: nothing left to clean up."""
    with _unplaced_lock:
        _unplaced.discard(temporary)


def remove_unplaced(*, final: bool = False) -> None:
    """Remove every temporary output not yet in place: those being written on threads
    that a signal does not stop, and those staged but not committed. For a process
    that is about to end (a batch interrupted): with ``final``, no new temporary can be
    created afterwards either, so that a worker still running cannot leave one behind.
    A concurrent batch in the same process would lose its staged outputs too (they
    would fail to commit, never appear half written)."""
    global _closed
    with _unplaced_lock:
        _closed = _closed or final
        temporaries = list(_unplaced)
        _unplaced.clear()
    for temporary in temporaries:
        _remove(temporary)


def _remove(temporary: Path) -> None:
    """Remove a temporary output: a file, or a directory store (Zarr) and what it holds.

    A worker that cannot be waited for (on a cluster) may still add a file while the
    tree goes, which leaves its directory behind: removed again until it is gone. Once
    the top directory is gone nothing can be added to it (see
    :func:`convcli.images.zarr_arrays.write_region`)."""
    if temporary.is_dir() and not temporary.is_symlink():
        for _ in range(_REMOVE_TRIES):
            shutil.rmtree(temporary, ignore_errors=True)
            if not os.path.lexists(temporary):
                break
    else:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


class Staged:
    """A complete output in a temporary file beside its target, not yet in place.

    :meth:`commit` makes its data durable (fsync) and only then renames it over
    the target: after a crash the target holds its old content (or nothing) or the
    complete new file, never part of one; a rename not yet on disk may be lost, as
    with any program that does not also fsync the directory. :meth:`discard`
    removes the temporary. A batch writes outputs on worker threads and commits
    them in input order on one thread, so that fsync waits for the disk while the
    workers go on, and an input that fails (``--fail-fast``) leaves no later output.

    The temporary may be a directory (a Zarr store): every file in it is fsynced, and
    an existing directory at the target is moved aside, replaced, then removed.
    """

    def __init__(self, temporary: Path, target: str) -> None:
        self.temporary = temporary
        self.target = target  # as the user named it
        self.synced = False

    def sync(self) -> None:
        """fsync the data (on any thread); an :class:`OutputError`, and the temporary
        removed, if that fails."""
        if self.synced:
            return
        try:
            for name in _files(self.temporary):
                fd = os.open(name, os.O_RDONLY)
                try:
                    os.fsync(fd)  # any descriptor of the file flushes its data
                finally:
                    os.close(fd)
        except BaseException as err:
            self._failed(err)
        self.synced = True

    def commit(self) -> None:
        """:meth:`sync`, then rename into place; an :class:`OutputError` (and no
        temporary left behind) if either fails."""
        self.sync()
        try:
            if self.temporary.is_dir() and os.path.isdir(self.target):
                aside = self.temporary.with_name(self.temporary.name + ".old")
                os.rename(self.target, aside)
                os.rename(self.temporary, self.target)
                shutil.rmtree(aside, ignore_errors=True)
            else:
                keep_mode(self.temporary, self.target)
                os.replace(self.temporary, self.target)
        except BaseException as err:
            self._failed(err)
        _placed(self.temporary)

    def _failed(self, err: BaseException):
        self.discard()
        if isinstance(err, OSError):
            raise OutputError(
                f"{shown_name(self.target)}: cannot write ({err.strerror or err})"
            ) from None
        raise err

    def discard(self) -> None:
        _remove(self.temporary)
        _placed(self.temporary)


def keep_mode(temporary: Path, target: str | Path) -> None:
    """Give ``temporary`` the permissions of the file it is about to replace, as cp and
    ImageMagick keep them (they write into it): a 0o640 output stays 0o640. A new
    output keeps the temporary's, 0o666 less the umask."""
    try:
        mode = os.stat(target).st_mode
    except OSError:  # nothing there (or nothing we may look at): a new file's mode
        return
    if stat.S_ISREG(mode):
        os.chmod(temporary, stat.S_IMODE(mode) & 0o777)  # no set-id bit on new data


def commit_together(staged: Sequence[Staged]) -> None:
    """Put several outputs in place as one (a multi-frame input's files): every one
    synced first, then each renamed over its target with the file it replaces kept
    (a hard link) until all are in place. If one fails, those already placed are
    undone (the old file back, a new name removed), the rest discarded, and its
    :class:`OutputError` raised: none of them changes, not some. (An existing
    directory store replaced is not kept: it cannot be brought back.)
    """
    try:
        for output in staged:
            output.sync()
    except BaseException:
        for output in staged:
            output.discard()
        raise
    placed: list[tuple[Staged, Path | None]] = []
    try:
        for output in staged:
            old = _keep_old(output.target) if len(staged) > 1 else None
            try:
                output.commit()
            except BaseException:
                if old is not None:
                    _remove(old)
                    _placed(old)
                raise
            placed.append((output, old))
    except BaseException:
        for output in staged[len(placed) :]:
            output.discard()
        for output, old in reversed(placed):
            if old is None:
                _remove(Path(output.target))
            else:
                with contextlib.suppress(OSError):
                    os.replace(old, output.target)
                _placed(old)
        raise
    for _, old in placed:
        if old is not None:
            _remove(old)
            _placed(old)


def _keep_old(target: str) -> Path | None:
    """A hard link to the file (or symbolic link) at ``target``, tracked as a temporary;
    None when there is nothing to keep."""
    path = Path(target)
    if not os.path.lexists(path) or path.is_dir() and not path.is_symlink():
        return None
    old = path.parent / _temporary_name(path.parent, path.name)
    with _unplaced_lock:
        try:
            os.link(path, old, follow_symlinks=False)
        except OSError as err:
            raise OutputError(
                f"{shown_name(target)}: cannot keep the old file ({err.strerror})"
            ) from None
        _unplaced.add(old)
    return old


def _files(path: Path) -> list[str]:
    """A file, or every file and directory under a directory (the directories last)."""
    if not path.is_dir():
        return [str(path)]
    found = []
    for directory, _, names in os.walk(path, topdown=False):
        found += [os.path.join(directory, name) for name in names] + [directory]
    return found


def staged_output(path: str, *, directory: bool = False) -> Staged:
    """A new, empty temporary beside ``path`` (a file, or a directory for a store), to be
    written by its name (by other processes too) and put in place by
    :meth:`Staged.commit`; removed by :func:`remove_unplaced` if the run is interrupted
    before that."""
    if not directory:  # a store's target is checked by its writer (it may be a store)
        check_output_directory(path)
    target = Path(path)
    temporary = target.parent / _temporary_name(target.parent, target.name)
    try:
        fd = _create(temporary, directory=directory)
    except OSError as err:
        raise OutputError(f"{shown_name(path)}: cannot write ({err.strerror or err})") from None
    if fd is not None:
        os.close(fd)
    return Staged(temporary, path)


@contextlib.contextmanager
def atomic_output(path: str, *, staged: list[Staged] | None = None) -> Iterator[BinaryIO]:
    """A binary stream for ``path`` that only replaces it once fully written.

    With ``staged`` (a list), a regular file is left complete in its temporary
    file and appended there as a :class:`Staged`, for the caller to commit (or
    discard); standard output, devices and pipes are written directly either way.
    ``BrokenPipeError`` (the reader of a pipe went away) passes through unchanged,
    so the command line can stop quietly; every other OS error becomes an
    :class:`OutputError` naming the path.
    """
    if path == "-":
        if sys.stdout is None:  # closed when the process started (>&-)
            raise OutputError("<stdout>: standard output is closed; write to a file instead")
        try:
            yield CompleteWrites(sys.stdout.buffer)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            raise
        except OSError as err:
            raise OutputError(f"<stdout>: cannot write ({err.strerror or err})") from None
        return
    target = Path(path)
    if is_special(target):
        if target.is_dir():
            raise OutputError(
                f"{shown_name(path)}: is a directory; give a file name (or end it with '/')"
            )
        try:
            with open(target, "wb") as stream:
                yield CompleteWrites(stream)
        except BrokenPipeError:
            raise
        except OSError as err:
            raise OutputError(f"{shown_name(path)}: cannot write ({err.strerror or err})") from None
        return
    check_output_directory(path)
    directory = target.parent
    # The name is chosen before the file exists, so that whenever the block is left
    # (even by a Ctrl-C between creating the file and using it) cleanup knows it.
    temporary = directory / _temporary_name(directory, target.name)
    try:
        fd = _create(temporary)
        with os.fdopen(fd, "wb") as stream:
            yield CompleteWrites(stream)
            stream.flush()
            if staged is None:
                os.fsync(stream.fileno())
        if staged is None:
            keep_mode(temporary, target)
            os.replace(temporary, target)
            _placed(temporary)
        else:
            staged.append(Staged(temporary, path))
    except BaseException as err:
        if not isinstance(err, FileExistsError):
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            _placed(temporary)
        if isinstance(err, OSError) and not isinstance(err, BrokenPipeError):
            raise OutputError(f"{shown_name(path)}: cannot write ({err.strerror or err})") from None
        raise
