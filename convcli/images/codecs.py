"""tifffile and imagecodecs: imported on first use, their log messages caught per thread.

Both libraries report what they find odd in a file through :mod:`logging`
(tifffile: "incorrect StripByteCounts count", "invalid page offset";
imagecodecs' libpng: "IDAT: Too much image data"). With no logging set up,
Python's last-resort handler would print them on stderr, mid-progress bar.
Here one handler, installed once, keeps them off stderr and hands the records
logged on the reading thread to :func:`logged`'s caller, which turns them into
the user's warnings or errors. An application that sets up logging itself still
receives them as usual.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Iterator

_LOGGERS = ("tifffile", "imagecodecs")
_local = threading.local()


class _PerThread(logging.Handler):
    """Appends each record to the list of the thread that logged it, if it asked."""

    def emit(self, record: logging.LogRecord) -> None:
        records = getattr(_local, "records", None)
        if records is not None:
            records.append(record)


@functools.cache
def _installed() -> None:
    handler = _PerThread(logging.WARNING)
    for name in _LOGGERS:
        logging.getLogger(name).addHandler(handler)


@contextlib.contextmanager
def logged() -> Iterator[list[logging.LogRecord]]:
    """The warnings and errors tifffile and imagecodecs log on this thread meanwhile.

    Examples
    --------
    >>> with logged() as records:
    ...     logging.getLogger("tifffile").warning("odd tag")
    >>> [r.getMessage() for r in records]
    ['odd tag']
    """
    _installed()
    outer = getattr(_local, "records", None)
    _local.records = records = []
    try:
        yield records
    finally:
        _local.records = outer
        if outer is not None:
            outer.extend(records)


def message(record: logging.LogRecord) -> str:
    """A record's text without tifffile's leading ``<tifffile.TiffPage 0 @8>``.

    Examples
    --------
    >>> message(logging.makeLogRecord({"msg": "<tifffile.TiffPage 0 @8> missing tag"}))
    'missing tag'
    """
    text = record.getMessage()
    if text.startswith("<tifffile.") and "> " in text:
        text = text.split("> ", 1)[1]
    return text


@functools.cache
def tifffile():
    """The ``tifffile`` module, its log messages caught (see :func:`logged`)."""
    import tifffile as module

    _installed()
    return module


@functools.cache
def imagecodecs():
    """The ``imagecodecs`` module, its log messages caught (see :func:`logged`)."""
    import imagecodecs as module

    _installed()
    return module
