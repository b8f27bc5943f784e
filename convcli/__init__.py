"""convcli: image convolution from the shell, on a vectorized NumPy library.

The library follows PyTorch's ``conv2d`` / ``conv_transpose2d`` semantics
(cross-correlation over (N, C, H, W) arrays)::

    >>> import numpy as np
    >>> from convcli import conv2d
    >>> conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), padding=1)[0, 0, 0]
    array([4., 6., 6., 4.])
"""

from __future__ import annotations

import importlib

from convcli.errors import (
    ConvcliError,
    DependencyError,
    ImageError,
    KernelError,
    OutputError,
    ParameterError,
    ResourceError,
    SchedulerError,
)

__version__ = "0.1.0"

# The operations load NumPy; they are imported on first use, so that the command
# line's --help (which needs only __version__) starts without it.
_LAZY = {
    "conv2d": "convcli.conv.operations",
    "conv2d_output_shape": "convcli.conv.operations",
    "conv_transpose2d": "convcli.conv.transposed",
    "conv_transpose2d_output_shape": "convcli.conv.transposed",
    "conv2d_backward": "convcli.conv.backward",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'convcli' has no attribute {name!r}")


__all__ = [
    "ConvcliError",
    "DependencyError",
    "ImageError",
    "KernelError",
    "OutputError",
    "ParameterError",
    "ResourceError",
    "SchedulerError",
    "__version__",
    "conv2d",
    "conv2d_backward",
    "conv2d_output_shape",
    "conv_transpose2d",
    "conv_transpose2d_output_shape",
]
