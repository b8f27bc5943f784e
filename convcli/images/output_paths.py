"""Output names before anything is written: formats by extension, never over an input,
a directory that exists and is writable, a name the file system takes.

The writing itself (temporaries renamed into place) is :mod:`convcli.images.outputs`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from convcli.errors import OutputError, ParameterError, shown_name
from convcli.images.identities import file_identities, stream_identity

FORMAT_NAMES = {
    "png": "PNG",
    "jpg": "JPEG",
    "jpeg": "JPEG",
    "tif": "TIFF",
    "tiff": "TIFF",
    "webp": "WEBP",
    "bmp": "BMP",
    "ppm": "PPM",
    "pgm": "PPM",
    "pnm": "PPM",
    "npy": "NPY",
    "zarr": "ZARR",
}
FORMATS = {f".{name}": fmt for name, fmt in FORMAT_NAMES.items()}  # by extension


def output_format_for(path: str, fmt: str | None = None) -> str:
    """The format to write ``path`` in: ``fmt`` if given, else from the extension.

    ``-`` (standard output) defaults to PNG. Unknown names, and a ``fmt`` that
    disagrees with a known extension (JPEG into ``x.png``), are usage errors.

    Examples
    --------
    >>> output_format_for("out.JPG"), output_format_for("-"), output_format_for("x", "tiff")
    ('JPEG', 'PNG', 'TIFF')
    """
    suffix = "" if path == "-" else Path(path).suffix.lower()
    if fmt:
        name = FORMAT_NAMES.get(fmt.lower().lstrip("."))
        if name is None:
            raise ParameterError(
                f"--format {fmt!r} is not supported; use one of {', '.join(sorted(FORMAT_NAMES))}"
            )
        if suffix in FORMATS and FORMATS[suffix] != name:
            # A .png holding JPEG bytes misleads every program that opens it.
            raise ParameterError(
                f"--format {fmt} disagrees with the extension of {path!r} ({FORMATS[suffix]}); "
                f"drop --format or give the output a .{fmt.lower().lstrip('.')} name"
            )
        return name
    if path == "-":
        return "PNG"
    if suffix not in FORMATS:
        shown = f"extension {suffix!r}" if suffix else "no extension"
        raise ParameterError(
            f"output {path!r} has {shown}; convcli writes {', '.join(sorted(FORMATS))} "
            f"(or give --format)"
        )
    return FORMATS[suffix]


def check_output_path(
    path: str,
    inputs: Iterable[str],
    *,
    what: str = "output",
    kernels: Iterable[str] = (),
    known: dict[tuple[int, int], tuple[str, str]] | None = None,
) -> None:
    """Refuse an output that is one of the inputs or one of the kernel files read by ``-k``
    (also through a link or another path): a :class:`ParameterError` (exit 2).

    ``-`` is standard output, and an input ``-`` standard input: they are compared by
    the files they are open on (``-o - >> in.png``, ``apply - -o in.png < in.png``).
    ``known`` is :func:`file_identities` of ``inputs`` and ``kernels``, made once when
    many outputs are checked against the same files (else each check looks at every
    input: a thousand outputs that exist made a million ``stat`` calls).

    Examples
    --------
    >>> check_output_path("no-such-file.png", ["a.png"], kernels=["w.npy"])  # nothing to refuse
    """
    if path == "-":
        identity = stream_identity(1)
    elif os.path.exists(path):
        try:
            found = os.stat(path)
        except OSError:
            return
        identity = (found.st_dev, found.st_ino)
    else:
        return
    if identity is None:
        return
    if known is None:
        known = file_identities(inputs, kernels)
    kind, source = known.get(identity, (None, ""))
    if kind is None:
        return
    shown = f"{what} - (standard output)" if path == "-" else f"{what} {path!r}"
    held = f"the kernel file {source!r} (-k)" if kind == "kernel" else f"the input {_named(source)}"
    raise ParameterError(
        f"{shown} is {held}; convcli never overwrites its inputs, choose another "
        f"{'file to write to' if path == '-' else f'{what} name'}"
    )


def _named(source: str) -> str:
    return "- (standard input)" if source == "-" else repr(source)


def check_output_directory(path: str) -> None:
    """Refuse an output whose directory is missing, is a file or is not writable,
    or which is itself a directory: an :class:`OutputError` naming the path."""
    if path == "-" or is_special(Path(path)) and not os.path.isdir(path):
        return  # stdout, a device or a pipe: written directly
    if os.path.isdir(path):
        raise OutputError(
            f"{shown_name(path)}: is a directory; give a file name (or end it with '/')"
        )
    directory = os.path.dirname(path) or "."
    if os.path.isdir(directory):
        if not os.access(directory, os.W_OK | os.X_OK):
            raise OutputError(
                f"{shown_name(path)}: "
                f"the directory {directory!r} is not writable; choose another output"
            )
        return
    # The nearest ancestor that is not a directory says what is wrong.
    blocker = directory
    while blocker and not os.path.exists(blocker) and os.path.dirname(blocker) != blocker:
        blocker = os.path.dirname(blocker)
    if blocker and os.path.exists(blocker) and not os.path.isdir(blocker):
        raise OutputError(
            f"{shown_name(path)}: "
            f"{blocker!r} is a file, not a directory; choose another output path"
        )
    raise OutputError(
        f"{shown_name(path)}: the directory {directory!r} does not exist; create it first"
    )


def name_max(directory: str) -> int:
    """The longest file name (in bytes) ``directory``'s file system takes; 255 if unknown."""
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def check_output_name(path: str) -> None:
    """Refuse an output whose file name is longer than its file system allows: an
    :class:`OutputError`, before any input is read.

    Examples
    --------
    >>> check_output_name("out.png")
    >>> check_output_name("x" * 300 + ".png")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    convcli.errors.OutputError: xxx...x.png: the file name is 304 bytes, more than the 255 ...
    """
    name = os.path.basename(path)
    if path == "-" or not name:
        return
    directory = os.path.dirname(path) or "."
    limit = name_max(directory if os.path.isdir(directory) else ".")
    size = len(os.fsencode(name))
    if size > limit:
        raise OutputError(
            f"{shown_name(path)}: "
            f"the file name is {size} bytes, more than the {limit} the file system "
            f"allows; choose a shorter name"
        )


def is_special(path: Path) -> bool:
    """True for existing targets that are not regular files (devices, pipes)."""
    try:
        return path.exists() and not path.is_file()
    except OSError:
        return False
