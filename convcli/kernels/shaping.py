"""Shaping a filter for an image: flip (true convolution), normalize (sum 1), and the
one shape rule that makes a 2-D, 3-D or 4-D weight the 4-D weight of a convolution,
used by the pipeline and the shape calculator alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from convcli.errors import KernelError, shown_name

if TYPE_CHECKING:
    from convcli.kernels.filters import Filter


def flip_kernel(weight: np.ndarray) -> np.ndarray:
    """Rotate 180 degrees in the last two axes: cross-correlation becomes true convolution.

    Examples
    --------
    >>> flip_kernel(np.array([[1, 2], [3, 4]])).tolist()
    [[4, 3], [2, 1]]
    """
    return np.ascontiguousarray(weight[..., ::-1, ::-1])


def centre_origin(matrix: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
    """Pad a 2-D matrix with zeros so that its ``origin`` (x, y: column and row, from the
    top left, ImageMagick's notation) becomes the centre convcli anchors kernels at:
    correlating with the result reads the same pixels, relative to each output, as
    ImageMagick reads with the matrix and its origin (and ``--flip`` still convolves).

    Examples
    --------
    >>> centre_origin(np.array([[3.0, 2.0, 1.0]]), (0, 0)).tolist()
    [[0.0, 0.0, 3.0, 2.0, 1.0]]
    """
    (x, y), (height, width) = origin, matrix.shape
    if (x, y) == ((width - 1) // 2, (height - 1) // 2):
        return matrix  # where convcli anchors it already (an even size's too)
    reach_x, reach_y = max(x, width - 1 - x), max(y, height - 1 - y)
    top, left = reach_y - y, reach_x - x
    bottom, right = 2 * reach_y + 1 - height - top, 2 * reach_x + 1 - width - left
    return np.pad(matrix, ((top, bottom), (left, right)))


def normalize_kernel(weight: np.ndarray) -> np.ndarray:
    """Divide each filter by its sum so that flat regions keep their value.

    A 2-D or 3-D weight is one filter; a 4-D weight has one filter per output channel.

    Examples
    --------
    >>> normalize_kernel(np.array([[1.0, 2.0, 1.0]])).tolist()
    [[0.25, 0.5, 0.25]]
    """
    per_filter = weight.ndim == 4
    sums = weight.sum(axis=tuple(range(1 if per_filter else 0, weight.ndim)), keepdims=True)
    if np.any(np.abs(sums) < 1e-12):
        raise KernelError(
            "the kernel sums to zero (an edge or gradient kernel); --normalize needs a kernel "
            "with a non-zero sum, drop --normalize"
        )
    return weight / sums


def weight_for_channels(
    f: Filter, channels: int, *, groups: int | None = None, transpose: bool = False
) -> tuple[np.ndarray, int]:
    """(4-D float32 weight, groups) for an image of ``channels``, by :func:`shape_for_channels`.

    Examples
    --------
    >>> from convcli.kernels.loader import load_filter
    >>> w, g = weight_for_channels(load_filter("box:3"), 3)
    >>> w.shape, g
    ((3, 1, 3, 3), 3)
    """
    weight = f.weight
    shape, groups = shape_for_channels(
        weight.shape, channels, groups=groups, transpose=transpose, source=f.source
    )
    if weight.ndim == 2:
        weight = np.broadcast_to(weight, shape)
    return weight.reshape(shape).astype(np.float32), groups


def shape_for_channels(
    shape: tuple[int, ...],
    channels: int,
    *,
    groups: int | None = None,
    transpose: bool = False,
    source: str = "",
) -> tuple[tuple[int, int, int, int], int]:
    """The one shape rule: (4-D weight shape, groups) for a weight of ``shape`` on an
    image of ``channels``; used for real weights and by the shape calculator alike.

    - 2-D (Hf, Wf): every channel filtered on its own -> (C, 1, Hf, Wf), groups = C;
    - 3-D (C, Hf, Wf): all channels into one output channel -> (1, C, Hf, Wf), or
      (C, 1, Hf, Wf) for a transposed convolution;
    - 4-D (F, C/groups, Hf, Wf): as is; groups from the option or C / weight.shape[1].
      A transposed convolution's 4-D weight is (C, F/groups, Hf, Wf), PyTorch's
      layout; its groups come from the option only (default 1).

    Examples
    --------
    >>> shape_for_channels((3, 5, 5), 3), shape_for_channels((3, 5, 5), 3, transpose=True)
    (((1, 3, 5, 5), 1), ((3, 1, 5, 5), 1))
    """
    name = shown_name(source) if source else "weight"
    if len(shape) == 2:
        return (channels, 1, *shape), channels  # type: ignore[return-value]
    if len(shape) == 3:
        if shape[0] != channels:
            raise KernelError(
                f"kernel {name} is 3-D with {shape[0]} channels, but the image has "
                f"{channels}; a 3-D kernel needs one 2-D slice per image channel"
            )
        return ((channels, 1, *shape[1:]) if transpose else (1, *shape)), 1  # type: ignore[return-value]
    if len(shape) != 4:
        raise KernelError(f"kernel {name} has shape {tuple(shape)}; weights are 2-D, 3-D or 4-D")
    if transpose:
        if shape[0] != channels:
            raise KernelError(
                f"kernel {name} is a transposed weight (C, F/groups, Hf, Wf) with "
                f"C = {shape[0]}, but the image has {channels} channels"
            )
        groups = 1 if groups is None else groups
        if channels % groups:
            raise KernelError(f"groups={groups} does not divide the image's {channels} channels")
        return tuple(shape), groups  # type: ignore[return-value]
    per_group = shape[1]
    inferred = groups is None
    if groups is None:
        if channels % per_group:
            raise KernelError(
                f"kernel {name} takes {per_group} channels per group, which does not divide "
                f"the image's {channels} channels"
            )
        groups = channels // per_group
    if per_group * groups != channels:
        raise KernelError(
            f"kernel {name} takes {per_group} channels x groups={groups} = "
            f"{per_group * groups}, but the image has {channels} channels"
        )
    if shape[0] % groups:
        why = (
            f"it takes {per_group} channel(s) per group, so the image's {channels} channels "
            f"make groups={groups}"
            if inferred
            else f"groups={groups} was asked for"
        )
        raise KernelError(
            f"kernel {name} has {shape[0]} filters, not divisible by groups={groups}: {why}; "
            f"give a (F, {channels}, Hf, Wf) weight for a full convolution of these channels"
        )
    return tuple(shape), groups  # type: ignore[return-value]
