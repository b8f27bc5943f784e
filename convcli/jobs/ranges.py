"""From filtered values to pixels: ``--range`` (clip, abs, normalize) and the clipped
counts the reports show."""

from __future__ import annotations

import numpy as np

from convcli.conv.engines.tiles import reduce_parallel
from convcli.errors import ParameterError

RANGES = ("clip", "abs", "normalize")


def extreme(x: np.ndarray, reduce: np.ufunc) -> np.ndarray:
    """Per-sample min (``np.fmin``) or max (``np.fmax``), NaN ignored; NaN if all are.

    fmin/fmax skip NaN without the warnings of nanmin/nanmax, and without
    ``warnings.catch_warnings``, whose state is shared with the read-ahead thread.
    """
    if x.size == 0:
        return np.zeros(len(x))
    return reduce_parallel(reduce, x)


def finite_extremes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample (min, max) of the finite values: what ``normalize`` stretches (an Inf
    would make the span infinite and every finite value 0); NaN where a sample has none.

    Examples
    --------
    >>> low, high = finite_extremes(np.array([[[[np.inf, 2.0, np.nan, -1.0]]]]))
    >>> low.tolist(), high.tolist()
    ([-1.0], [2.0])
    """
    low, high = extreme(x, np.fmin), extreme(x, np.fmax)
    for sample in np.flatnonzero(np.isinf(low) | np.isinf(high)):  # rare: a copy is fine
        values = x[sample]
        finite = values[np.isfinite(values)]
        low[sample], high[sample] = (finite.min(), finite.max()) if finite.size else (np.nan,) * 2
    return low, high


def colours(x: np.ndarray, *, alpha: bool) -> np.ndarray:
    """The channels ``normalize`` stretches: all but alpha (the last channel) if any."""
    return x[:, :-1] if alpha and x.shape[1] > 1 else x


def map_range(
    x: np.ndarray,
    value_range: str | None,
    *,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    alpha: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values -> [0, 1] pixels by ``clip``, ``abs`` (then clip) or ``normalize``
    (each sample's finite min..max stretched to 0..1, so +Inf becomes 1 and -Inf 0, both
    counted as clipped, and NaN stays NaN; a constant sample is clipped). With ``alpha``
    (the last channel is alpha), normalize stretches the colour channels by their own
    bounds and only clips alpha, as ImageMagick's ``-normalize`` and ``-auto-level`` leave
    transparency alone: ``bounds`` are then the colour channels' (:func:`colours`);
    ``None`` keeps the raw values (for .npy). Also returns, per sample, how many
    values were below 0 and above 1 before clipping. ``x`` may be overwritten: clip and
    abs work in place, since a full-size copy of a large image costs as much as a 3x3
    convolution of it (normalize makes a new array).
    ``bounds``, each sample's (min, max) if known, lets values already inside
    [0, 1] skip the counting and clipping passes, and is what normalize stretches
    (a part of an image, normalized by the whole image's bounds, is that part of
    the whole image normalized); infinite bounds are taken again over ``x``'s finite
    values, so ``x`` must then be whole samples (a part's are :func:`finite_extremes`).

    Examples
    --------
    >>> pixels, low, high = map_range(np.array([[[[-0.5, 0.25, 1.5]]]], np.float32), "clip")
    >>> pixels.ravel().tolist(), low.tolist(), high.tolist()
    ([0.0, 0.25, 1.0], [1], [1])
    """
    if value_range not in (*RANGES, None):
        raise ParameterError(f"--range must be one of {', '.join(RANGES)}; got {value_range!r}")
    axes = (1, 2, 3)
    none = np.zeros(len(x), np.int64)
    inside = bounds is not None and np.all(bounds[0] >= 0) and np.all(bounds[1] <= 1)
    if value_range is None or (value_range == "clip" and inside):
        return x, none, none
    if value_range == "abs":
        x = np.abs(x, out=x)
    elif value_range == "normalize":
        stretched = colours(x, alpha=alpha)
        if bounds is None or np.isinf(bounds[0]).any() or np.isinf(bounds[1]).any():
            bounds = finite_extremes(stretched)
        low, high = bounds
        low, high = low[:, None, None, None], high[:, None, None, None]
        span = np.where(high > low, high - low, 1.0)
        mapped = np.where(high > low, (stretched - low) / span, stretched)
        if stretched is x:
            x = mapped.astype(np.float32)
        else:
            x = x.astype(np.float32)  # a new array, as without alpha
            x[:, :-1] = mapped
    clipped_low = np.count_nonzero(x < 0, axis=axes)
    clipped_high = np.count_nonzero(x > 1, axis=axes)
    return np.clip(x, 0.0, 1.0, out=x), clipped_low, clipped_high
