"""Fast paths for valid cross-correlation, chosen per call by :func:`choose_path`.

Paths (all tile by tile, in a thread pool; see :mod:`convcli.conv.engines.tiles`):

``rows``
    One matrix product per output row over column-shifted copies of the input
    window, so BLAS does the work without an im2col matrix. Handles every case;
    the automatic choice below the FFT's kernel size when no low-rank split helps.
``separable``
    Rank decomposition of each 2-D filter (SVD) into row and column passes:
    rank-1 kernels (box, gaussian) cost Hf + Wf taps instead of Hf * Wf.
    Needs one input channel per group (``weight.shape[1] == 1``); otherwise it
    falls back to ``rows``.
``fft``
    Overlap-save FFT per tile (numpy.fft, float32 stays float32). Handles every
    case; chosen automatically for large kernels.
``taps``
    One elementwise pass per group of equal taps (zeros skipped, equal weights summed
    first) over the window's flat planes. Needs one input channel per group (else
    ``rows``); the automatic choice for small per-channel kernels.

``force_path(name)`` forces one path (tests check each against the reference);
``tile_elements(n)`` overrides the tile budget (tests use it to cross seams).
The number of worker threads comes from ``CONVCLI_THREADS`` or the CPU count.

Those three are process-wide. :func:`using` sets all three for the calling thread
only: ``convcli.scale`` runs each block inside it, single-threaded (Dask's workers
are the parallel unit there), with the path and tile budget that were in force
where the block's graph was built.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from convcli.errors import ParameterError

PATHS = ("rows", "separable", "fft", "taps")

_forced: str | None = None
_tile_elements: int | None = None


@contextmanager
def force_path(name: str) -> Iterator[None]:
    """Force every correlation inside the block onto path ``name`` (for tests)."""
    global _forced
    if name not in PATHS:
        raise ParameterError(f"path must be one of {', '.join(PATHS)}; got {name!r}")
    previous, _forced = _forced, name
    try:
        yield
    finally:
        _forced = previous


@contextmanager
def tile_elements(n: int) -> Iterator[None]:
    """Override the per-tile element budget inside the block (for tests)."""
    global _tile_elements
    previous, _tile_elements = _tile_elements, n
    try:
        yield
    finally:
        _tile_elements = previous


@dataclass(frozen=True)
class Settings:
    """The engines' knobs: a forced path, a tile budget and a thread count (None: the
    default: automatic choice, each engine's budget, ``CONVCLI_THREADS`` or the CPUs)."""

    path: str | None = None
    tile_elements: int | None = None
    threads: int | None = None


_thread = threading.local()


def _override() -> Settings | None:
    return getattr(_thread, "settings", None)


def settings() -> Settings:
    """The settings in force in this thread (the thread count only if set by :func:`using`).

    Examples
    --------
    >>> with force_path("fft"):
    ...     settings()
    Settings(path='fft', tile_elements=None, threads=None)
    """
    override = _override()
    return override if override is not None else Settings(_forced, _tile_elements)


@contextmanager
def using(chosen: Settings) -> Iterator[None]:
    """Run the block with ``chosen`` in force in the calling thread only; other threads,
    and this one afterwards, keep what they had.

    Examples
    --------
    >>> with using(Settings(threads=1)):
    ...     thread_count()
    1
    """
    if chosen.path is not None and chosen.path not in PATHS:
        raise ParameterError(f"path must be one of {', '.join(PATHS)}; got {chosen.path!r}")
    if chosen.threads is not None and chosen.threads < 1:
        raise ParameterError(f"threads must be a positive integer, got {chosen.threads!r}")
    previous, _thread.settings = _override(), chosen
    try:
        yield
    finally:
        _thread.settings = previous


def forced_path() -> str | None:
    return settings().path


def tile_budget(default: int) -> int:
    return settings().tile_elements or default


def thread_count() -> int:
    """Worker threads: as set by :func:`using`, else ``CONVCLI_THREADS`` if set (>= 1), else
    the CPU count."""
    override = _override()
    if override is not None and override.threads is not None:
        return override.threads
    value = os.environ.get("CONVCLI_THREADS", "").strip()
    if value:
        try:
            n = int(value)
        except ValueError:
            raise ParameterError(
                f"CONVCLI_THREADS must be a positive integer, got {value!r}"
            ) from None
        if n < 1:
            raise ParameterError(f"CONVCLI_THREADS must be a positive integer, got {value!r}")
        return n
    return os.cpu_count() or 1
