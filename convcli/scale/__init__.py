"""Scale-out: ``conv2d`` and ``conv_transpose2d`` over Dask arrays, for images of any size.

Install with ``pip install 'convcli[dask]'``. The results are lazy Dask arrays whose
computed values equal the in-memory functions on the whole array::

    >>> import numpy as np
    >>> from convcli import scale
    >>> y = scale.conv2d(np.ones((1, 3, 64, 64), np.float32), np.ones((8, 3, 3, 3)),
    ...                  padding=1, chunks=32)
    >>> y.chunks[2:], float(y[0, 0, 10, 10].compute())
    (((32, 32), (32, 32)), 27.0)

Modules: :mod:`~convcli.scale.plan` (the output blocks and what each reads; NumPy
only), :mod:`~convcli.scale.sources` (region sources read inside the workers),
:mod:`~convcli.scale.blocks` (one block: the in-memory operation on its window),
:mod:`~convcli.scale.graph` (one Dask layer) and :mod:`~convcli.scale.operations`
(the two functions). Importing this package needs only NumPy; the two functions need
Dask, and without it raise :class:`convcli.DependencyError` naming the install command.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "conv2d": "convcli.scale.operations",
    "conv_transpose2d": "convcli.scale.operations",
    "ArraySource": "convcli.scale.sources",
    "RegionSource": "convcli.scale.sources",
    "Plan": "convcli.scale.plan",
    "plan_blocks": "convcli.scale.plan",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'convcli.scale' has no attribute {name!r}")


__all__ = sorted(_LAZY)
