"""Valid cross-correlation of a padded source, tile by tile, on the chosen engine."""

from __future__ import annotations

import numpy as np

from convcli.conv.engines import forced_path, tile_budget
from convcli.conv.engines.algorithms import ENGINES, FFT, kernel_rank
from convcli.conv.engines.tiles import plan_tiles, reduce_parallel, run_parallel, scratch
from convcli.conv.padding import PaddedSource

Pair = tuple[int, int]


def choose_path(weight: np.ndarray, groups: int, dtype, stride: Pair = (1, 1)) -> str:
    """Pick the engine for this weight; thresholds measured on 2 cores (see benchmarks/).

    Per-channel filters (one input channel per group) larger than 3x3 go to
    ``separable`` when a low-rank decomposition needs few enough passes (box,
    gaussian, motion blur). Large kernels go to ``fft``: from about 9x9 for
    per-channel filters, 7x7 for weights that mix channels (more products per
    transform); with a stride, later, since the FFT computes every output and
    the other paths only the kept ones. Everything else goes to ``rows``.
    """
    forced = forced_path()
    if forced is not None:
        if forced == "separable" and weight.shape[1] != 1:
            return "rows"
        return forced
    if not np.isfinite(weight).all():
        return "rows"  # every tap multiplied, as torch does; no SVD or spectrum of NaN
    f, cg, kh, kw = weight.shape
    taps = kh * kw
    if cg == 1 and taps > 9:
        passes = kernel_rank(weight, dtype) * (kh + kw)
        if passes * 1.5 <= taps and passes <= 40:
            return "separable"
    fft_from = 81 if cg == 1 and f == groups else 49
    return "fft" if taps >= fft_from * stride[0] * stride[1] else "rows"


def _finite(x: np.ndarray) -> bool:
    """No NaN or Inf in ``x``: its min and max are finite (two passes, no temporary,
    spread over the tile threads)."""
    if x.size == 0:
        return True
    return bool(
        np.isfinite(reduce_parallel(np.minimum, x[None]))
        & np.isfinite(reduce_parallel(np.maximum, x[None]))
    )


def correlate(
    source: PaddedSource,
    weight: np.ndarray,
    *,
    stride: Pair,
    dilation: Pair,
    groups: int,
    out: np.ndarray,
) -> np.ndarray:
    """Fill ``out`` (n, F, Ho, Wo), any strides, with the valid correlation of ``source``.

    ``source.shape`` is the padded input's; ``out``'s spatial size must be the
    valid output size of that padded input.
    """
    n, _, ho, wo = out.shape
    if out.size == 0:
        return out
    name = choose_path(weight, groups, out.dtype, stride)
    if name in ("fft", "separable") and forced_path() is None and not _finite(source.x):
        # A NaN or Inf would spread over a whole FFT tile, and the separable passes make
        # Inf - Inf = NaN from mixed-sign factors; a GEMM over the taps keeps them local.
        name = "rows"
    options = {"groups": groups, "stride": stride, "dilation": dilation, "dtype": out.dtype}
    if name == "fft":
        engine = FFT(weight, padded=source.shape[-2:], **options)
    else:
        engine = ENGINES[name](weight, **options)
    rows, cols = engine.tile_rows_cols()
    tiles = plan_tiles(
        n,
        ho,
        wo,
        per_pixel=engine.per_pixel,
        budget=tile_budget(engine.budget),
        rows=rows,
        block_w=cols,
    )

    span = ((weight.shape[2] - 1) * dilation[0] + 1, (weight.shape[3] - 1) * dilation[1] + 1)

    def work(t) -> None:
        window = source.window(
            t.r0 * stride[0],
            (t.r1 - 1) * stride[0] + span[0],
            t.c0 * stride[1],
            (t.c1 - 1) * stride[1] + span[1],
            t.n0,
            t.n1,
            empty=lambda shape, dtype: scratch("window", shape, dtype),
        )
        engine(window, out[t.n0 : t.n1, :, t.r0 : t.r1, t.c0 : t.c1])

    run_parallel(work, tiles)
    return out
