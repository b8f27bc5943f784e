"""Kernels: named kernels (:mod:`~convcli.kernels.named`), filter-file parsers
(:mod:`~convcli.kernels.parsers`, :mod:`~convcli.kernels.numpy_files`; their values
checked by :mod:`~convcli.kernels.values`), the loader that
ends every spec in one :class:`Filter` (:mod:`~convcli.kernels.loader`), its shaping for
an image (:mod:`~convcli.kernels.shaping`), and what
``convcli kernels SPEC`` prints (:mod:`~convcli.kernels.describe`).

    >>> from convcli.kernels import load_filter
    >>> load_filter("box:3").weight.shape
    (3, 3)
"""

from __future__ import annotations

from convcli.kernels.filters import Filter
from convcli.kernels.loader import NAMED, list_kernels, load_filter
from convcli.kernels.shaping import (
    flip_kernel,
    normalize_kernel,
    shape_for_channels,
    weight_for_channels,
)

__all__ = [
    "NAMED",
    "Filter",
    "flip_kernel",
    "list_kernels",
    "load_filter",
    "normalize_kernel",
    "shape_for_channels",
    "weight_for_channels",
]
