"""Elementwise passes over tap views, grouped by equal weights, and what they cost.

The ``taps`` and ``separable`` engines both run their taps through :func:`accumulate`;
:func:`passes_cost` is the cost model :func:`convcli.conv.engines.correlate.choose_path`
compares the engines by.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class TapGroup(NamedTuple):
    """Taps of one weight: ``kind`` is 1 or -1 when every weight is that, else 0."""

    weight: np.ndarray
    taps: list[int]
    kind: int


def tap_groups(weights: np.ndarray) -> list[TapGroup]:
    """The taps of ``weights`` (..., T) grouped by equal weights, zeros left out, in
    order of first appearance.

    Taps sharing a weight (a box's, a symmetric kernel's pairs, a sharpening kernel's
    -1s) are summed first and multiplied once: m taps cost m + 1 passes, not 2m.

    Examples
    --------
    >>> [(float(g.weight), g.taps, g.kind) for g in tap_groups(np.array([0, -1, 0, 5, -1.]))]
    [(-1.0, [1, 4], -1), (5.0, [3], 0)]
    """
    groups: dict[bytes, TapGroup] = {}
    for t in range(weights.shape[-1]):
        w = weights[..., t]
        if not np.any(w):
            continue
        key = np.ascontiguousarray(w).tobytes()
        if key not in groups:
            groups[key] = TapGroup(w, [], 1 if np.all(w == 1) else -1 if np.all(w == -1) else 0)
        groups[key].taps.append(t)
    return list(groups.values())


def accumulate(out: np.ndarray, views, groups: list[TapGroup], buffer) -> None:
    """``out = sum over groups of weight * (sum of the group's views)``, a pass at a time.

    ``views[t]`` is tap t's input (broadcastable to ``out``); ``groups`` come from
    :func:`tap_groups`, with weights broadcastable against ``out``; ``buffer(slot, shape)``
    gives scratch arrays. A weight of 1 or -1 is an addition or a subtraction (exact, as
    multiplying is). No groups: zeros. Elementwise, so a value does not depend on where a
    tile starts. The sums are taken in ``out``'s type whatever the views' (8-bit
    integers summed into int16 or float32, never in 8 bits).
    """
    if not groups:
        out[...] = 0
        return
    dtype = out.dtype  # in out's type, not the views': 8-bit views' sums would wrap around
    for index, (weight, taps, kind) in enumerate(groups):
        total, shape = views[taps[0]], views[taps[0]].shape
        if len(taps) > 1:
            total = out if index == 0 and shape == out.shape else buffer("sum", shape)
            np.add(views[taps[0]], views[taps[1]], out=total, dtype=dtype)
            for t in taps[2:]:
                np.add(total, views[t], out=total, dtype=dtype)
        if index == 0:
            if kind == -1:
                np.negative(total, out=out, dtype=dtype)
            elif kind == 0:
                np.multiply(total, weight, out=out, dtype=dtype)
            elif total is not out:
                np.copyto(out, total)
        elif kind:
            (np.add if kind == 1 else np.subtract)(out, total, out=out, dtype=dtype)
        else:
            # A group's own sum is scaled in place; a single tap (a view of the window) not.
            owned = len(taps) > 1 and shape == out.shape
            product = total if owned else buffer("product", out.shape)
            np.multiply(total, weight, out=product, dtype=dtype)
            np.add(out, product, out=out)


# What a pass over a tile costs, relative to an in-place addition of a window's view (the
# unit), measured on 2 cores (1024x768 RGB, float32, tiles in L2: one unit is about 0.2 ms):
# a multiplication into a buffer and its addition cost 3.4; the rows engine about 10 plus
# 1 a tap; an FFT tile about 175 whatever the kernel (every output, kept or not).
_MULTIPLY, _MULTIPLY_ADD = 1.7, 3.4
ROWS_COST, ROWS_TAP_COST, FFT_COST = 10.0, 1.0, 175.0


def passes_cost(groups: list[TapGroup]) -> float:
    """What :func:`accumulate` costs for ``groups``, in passes (see above)."""
    cost = 0.0
    for index, group in enumerate(groups):
        cost += len(group.taps) - 1  # the group's sum
        if index == 0:
            cost += 0.0 if group.kind == 1 else _MULTIPLY
        else:
            cost += 1.0 if group.kind else _MULTIPLY_ADD
    return cost
