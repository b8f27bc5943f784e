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

``force_path(name)`` forces one path (tests check each against the reference);
``tile_elements(n)`` overrides the tile budget (tests use it to cross seams).
The number of worker threads comes from ``CONVCLI_THREADS`` or the CPU count.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from convcli.errors import ParameterError

PATHS = ("rows", "separable", "fft")

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


def forced_path() -> str | None:
    return _forced


def tile_budget(default: int) -> int:
    return _tile_elements or default


def thread_count() -> int:
    """Worker threads: ``CONVCLI_THREADS`` if set (>= 1), else the CPU count."""
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
