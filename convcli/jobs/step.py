"""One step of a job: a filter with its resolved options (:class:`Step`), and what the
step alone decides: the weight it runs (flipped, normalized), whether its result is a
derivative, and, for upsampling, what its stride phases add up to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from convcli.conv.geometry import pair
from convcli.errors import shown_name
from convcli.kernels.filters import Filter
from convcli.kernels.shaping import flip_kernel, normalize_kernel
from convcli.kernels.values import check_float32


@dataclass(frozen=True)
class Step:
    """One filter with its resolved options (command line over file over defaults)."""

    filter: Filter
    stride: int | tuple[int, int] = 1
    padding: object = "same"
    dilation: int | tuple[int, int] = 1
    groups: int | None = None
    pad_mode: str | None = None  # None: reflect, or symmetric where the image is too small
    flip: bool = False
    normalize: bool = False
    bias: tuple[float, ...] | None = None
    output_padding: int | tuple[int, int] = 0
    transpose: bool = False


def effective_weight(step: Step) -> np.ndarray:
    """The filter's float64 weight as the step runs it: flipped, normalized."""
    f = step.filter
    weight = f.weight
    if step.flip:
        weight = flip_kernel(weight)
    if step.normalize:
        weight = normalize_kernel(weight)
        if step.transpose:
            # A transposed convolution spreads each pixel over stride_h * stride_w outputs:
            # a kernel summing to that keeps a flat image flat (when its phases sum alike).
            weight = weight * math.prod(pair(step.stride, "stride"))
        # Dividing by a small sum can push values past float32.
        check_float32(weight, f"kernel {f.source or 'weight'} after --normalize")
    return weight


def phase_sums(weight: np.ndarray, stride, dilation=1) -> np.ndarray:
    """Per stride phase (a, b), the sum of the 2-D ``weight``'s taps a transposed
    convolution adds into output positions of that phase: what a flat image of 1 becomes
    there, away from the borders. Tap ``(i, j)`` lands on phase
    ``(i*dilation_h mod stride_h, j*dilation_w mod stride_w)``; a phase no tap reaches
    sums to 0.

    Examples
    --------
    >>> phase_sums(np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 16, 2).tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    >>> phase_sums(np.ones((3, 3)), 2).tolist()
    [[4.0, 2.0], [2.0, 1.0]]
    """
    (sh, sw), (dh, dw) = pair(stride, "stride"), pair(dilation, "dilation")
    kh, kw = weight.shape
    rows = (np.arange(kh) * dh) % sh
    cols = (np.arange(kw) * dw) % sw
    sums = np.zeros((sh, sw))
    np.add.at(sums, (rows[:, None], cols[None, :]), weight)
    return sums


def phase_warning(step: Step) -> str | None:
    """A warning when a per-channel kernel's stride phases do not all sum to 1: upsampling
    then changes the brightness of flat areas (and, unequal, draws a grid)."""
    if not step.transpose or step.filter.weight.ndim != 2:
        return None
    sums = phase_sums(effective_weight(step), step.stride, step.dilation)
    if np.all(np.abs(sums - 1) <= 1e-6):
        return None
    lo, hi = float(sums.min()), float(sums.max())
    (sh, sw), name = pair(step.stride, "stride"), shown_name(step.filter.source or "the kernel")
    uneven = hi - lo > 1e-6 * max(1.0, abs(hi))
    span = f"{lo:.4g} to {hi:.4g}" if uneven else f"{lo:.4g}"
    text = (
        f"kernel {name} at stride {pair_text((sh, sw))}: its {sh * sw} stride phases sum to "
        f"{span}, not 1, so flat areas come out {span} times as bright"
        + (" in a grid pattern" if uneven else "")
    )
    if not step.normalize:
        return text + (
            f"; --normalize scales the kernel sum to {sh * sw} (stride_h*stride_w), making the "
            f"phases sum to 1 on average"
            + (f", or use a kernel made for the factor {_MADE_FOR_FACTOR}" if uneven else "")
        )
    return text + (
        f"; --normalize makes them 1 on average only; use a kernel made for the factor "
        f"{_MADE_FOR_FACTOR}"
    )


_MADE_FOR_FACTOR = "(bilinear:F, bicubic:F, lanczos:F, nearest:F)"


def pair_text(p: tuple[int, int]) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"


def is_derivative(step: Step) -> bool:
    """A step whose result is a response, not a colour: a filter bank (a magnitude), or
    a kernel whose every filter sums to 0 (a derivative: flat areas give 0)."""
    f = step.filter
    if step.transpose:
        return False
    if f.bank:
        return True
    per_filter = f.weight.reshape(len(f.weight) if f.weight.ndim == 4 else 1, -1)
    return bool(np.all(np.abs(per_filter.sum(1)) <= 1e-9 * np.abs(per_filter).sum(1)))
