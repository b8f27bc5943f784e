"""The one exception hierarchy of convcli.

Every error the library raises on purpose is a :class:`ConvcliError`, itself a
``ValueError`` so that callers who only know NumPy conventions still catch it.
Each subclass carries the process exit code the command line uses for it:
2 for a usage error (a bad option, kernel or shape), 1 for an input or output
that could not be processed.

Messages name the parameter, the value and, where there is one, the fix::

    kernel 7x7 (dilation 1) does not fit the padded input 5x5

A file name in a message goes through :func:`shown_name`, so that one message stays
one line whatever the name holds.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO


class ConvcliError(ValueError):
    """Base class of every error convcli raises on purpose.

    Attributes
    ----------
    exit_code : int
        The exit status the command line reports for this error.
    """

    exit_code = 2


class ParameterError(ConvcliError):
    """An argument of a convolution or shape computation is invalid."""


class KernelError(ConvcliError):
    """A kernel spec, filter file or filter configuration is invalid."""


class ImageError(ConvcliError):
    """An input image could not be read, decoded or accepted."""

    exit_code = 1


class OutputError(ConvcliError):
    """An output could not be written (or writing it would harm an input)."""

    exit_code = 1


class ResourceError(ConvcliError):
    """A job would need more memory or pixels than allowed."""

    exit_code = 1


class SchedulerError(ConvcliError):
    """The cluster named by ``--scheduler`` could not be reached or set up."""

    exit_code = 1


class DependencyError(ConvcliError, ImportError):
    """An optional dependency is not installed; the message names the ``pip install`` that
    adds it. Also an ``ImportError``, so ``except ImportError`` around an import sees it."""

    exit_code = 1


def shown_name(name: str | os.PathLike) -> str:
    """A file name as messages, warnings, per-image lines and text reports show it: as
    it is when every character prints, else quoted and escaped as a Python string
    literal (``ls --quoting-style=c`` does the same), so that a name holding a newline,
    an escape sequence or undecodable bytes cannot split a message, forge a line or
    drive the terminal. JSON reports keep the exact name (JSON escapes it).

    Examples
    --------
    >>> print(shown_name("in put.png"), shown_name("a\\nb.png"), shown_name("\\x1b[31m.png"))
    in put.png 'a\\nb.png' '\\x1b[31m.png'
    """
    text = os.fspath(name)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    return text if text.isprintable() else repr(text)


@contextlib.contextmanager
def numpy_load_errors(source: str, error: type[ConvcliError], what: str) -> Iterator[None]:
    """``numpy.load``'s refusals inside the block as one ``error`` naming ``source``: the
    one translation for ``.npy`` images and NumPy kernel files alike.

    Examples
    --------
    >>> with numpy_load_errors("w.npy", KernelError, "NumPy file"):  # doctest: +ELLIPSIS
    ...     raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
    Traceback (most recent call last):
    convcli.errors.KernelError: w.npy: refused: it holds Python objects (pickle), ...
    """
    try:
        yield
    except ConvcliError:
        raise  # already ours (and a ValueError too)
    except ValueError as err:
        text = str(err).lower()
        if "max_header_size" in text:  # its refusal also speaks of allow_pickle
            raise error(
                f"{source}: its .npy header is over NumPy's safety limit of 10,000 bytes (a "
                f"plain array's needs about a hundred); it is damaged, or not written by "
                f"numpy.save"
            ) from None
        if "pickle" in text or "object" in text:
            raise error(
                f"{source}: refused: it holds Python objects (pickle), which convcli never "
                f"loads; save plain numeric arrays"
            ) from None
        raise error(f"{source}: not a readable {what} ({err})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise error(f"{source}: not a readable {what} ({err})") from None
    except (RuntimeError, NotImplementedError) as err:
        # zipfile's refusals of members it cannot extract: encrypted, or compressed by a
        # method it lacks
        raise error(f"{source}: not a readable {what} ({err})") from None


def check_npy_data(
    stream: BinaryIO, stored: int, source: str, error: type[ConvcliError]
) -> tuple[tuple[int, ...], Any]:
    """Refuse a ``.npy`` whose header declares more data than the ``stored`` bytes hold;
    return the declared shape and dtype (for the caller's own limits).

    ``numpy.load`` allocates the array the header declares before it reads a byte of
    it, so a few bytes declaring (100000, 100000) float64 would ask for 75 GiB. Reads
    the header from ``stream`` (at the start of the array) and leaves it after it.

    Examples
    --------
    >>> import io, numpy as np
    >>> stream = io.BytesIO()
    >>> header = {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)}
    >>> np.lib.format.write_array_header_1_0(stream, header)
    >>> size, _ = stream.tell(), stream.seek(0)
    >>> check_npy_data(stream, size, "w.npy", KernelError)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    convcli.errors.KernelError: w.npy: its header declares a (100000, 100000) array ...
    """
    import math

    import numpy as np

    with numpy_load_errors(source, error, ".npy array"):
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    declared = math.prod(shape) * dtype.itemsize
    held = stored - stream.tell()
    if declared > held:
        raise error(
            f"{source}: its header declares a {tuple(shape)} array of {dtype} ({declared:,} "
            f"bytes), but the file holds {max(held, 0):,} bytes after it; it is truncated or "
            f"damaged"
        )
    return tuple(shape), dtype


__all__ = [
    "ConvcliError",
    "ParameterError",
    "KernelError",
    "ImageError",
    "OutputError",
    "ResourceError",
    "DependencyError",
    "SchedulerError",
    "numpy_load_errors",
    "check_npy_data",
    "shown_name",
]
