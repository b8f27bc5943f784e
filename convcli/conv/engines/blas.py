"""Keep BLAS single-threaded while our tile threads run matrix products.

OpenBLAS starts its own threads for every large product; with our tile pool
already using every core that oversubscribes them, and on 2 cores the dense
convolution ran about twice as slowly. This finds the OpenBLAS that NumPy
loaded (the same way threadpoolctl does, without the dependency) and sets
its thread count for the duration of a call. Where no OpenBLAS can be found
it does nothing.

The setting is process-wide while callers can overlap (Dask runs blocks in several
threads at once), so the first caller in sets it and the last one out restores it:
a caller leaving early must not hand the others' products back to every core, nor
leave the process at one thread after they all finish.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

_PREFIXES = ("scipy_openblas_", "openblas_")
_SUFFIXES = ("64_", "")


@cache
def _openblas() -> tuple | None:
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                get = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    return get, put
    return None


_lock = threading.Lock()
_inside = 0  # callers inside blas_threads, in every thread
_saved = 0  # the count before the first of them came in


@contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Run the block with OpenBLAS limited to ``n`` threads (no-op without OpenBLAS).

    Overlapping calls from several threads share one setting: the first caller's ``n``
    holds until the last caller leaves, which restores the count from before the first.
    """
    global _inside, _saved
    funcs = _openblas()
    if funcs is None:
        yield
        return
    get, put = funcs
    with _lock:
        if _inside == 0:
            _saved = get()
            put(n)
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0:
                put(_saved)
