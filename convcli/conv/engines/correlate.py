"""Valid cross-correlation of a padded source, tile by tile, on the chosen engine."""

from __future__ import annotations

import functools
import math
from typing import Protocol

import numpy as np

from convcli.conv.engines import forced_path, tile_budget
from convcli.conv.engines.algorithms import ENGINES, FFT, kernel_rank, separable_cost, taps_cost
from convcli.conv.engines.passes import FFT_COST, ROWS_COST, ROWS_TAP_COST
from convcli.conv.engines.tiles import plan_tiles, reduce_parallel, run_parallel, scratch
from convcli.conv.padding import PaddedSource

Pair = tuple[int, int]


def choose_path(weight: np.ndarray, groups: int, dtype, stride: Pair = (1, 1)) -> str:
    """Pick the engine for this weight by what each would cost (measured on 2 cores; see
    the costs in :mod:`convcli.conv.engines.algorithms`).

    Per-channel filters (one input channel per group) go to the cheapest of ``taps``
    (a pass per group of equal taps: small, sparse or symmetric kernels), ``separable``
    (low rank: box, gaussian, motion blur), ``rows`` and ``fft`` (large dense kernels;
    with a stride, later, since the FFT computes every output and the other paths only
    the kept ones). Weights that mix channels go to ``fft`` from 7x7 (times the
    stride), else to ``rows``.
    """
    forced = forced_path()
    if forced is not None:
        if forced in ("separable", "taps") and weight.shape[1] != 1:
            return "rows"
        return forced
    if not np.isfinite(weight).all():
        return "rows"  # every tap multiplied, as torch does; no SVD or spectrum of NaN
    # The same kernel on every image of a batch: its SVD and tap groups once (60 us).
    return _cheapest(
        weight.tobytes(),
        weight.shape,
        np.dtype(weight.dtype).str,
        groups,
        np.dtype(dtype).str,
        tuple(stride),
    )


@functools.lru_cache(maxsize=64)
def _cheapest(data: bytes, shape, weight_type: str, groups: int, dtype: str, stride) -> str:
    """:func:`choose_path` by cost, for finite weights (given as bytes, so as to be cached)."""
    weight = np.frombuffer(data, weight_type).reshape(shape)
    f, cg, kh, kw = weight.shape
    taps = kh * kw
    if cg != 1:
        return "fft" if taps >= 49 * stride[0] * stride[1] else "rows"
    costs = {
        "taps": taps_cost(weight, dtype),
        "rows": ROWS_COST + ROWS_TAP_COST * taps,
        "fft": FFT_COST * stride[0] * stride[1],
    }
    if kh > 1 and kw > 1 and kernel_rank(weight, dtype) <= min(kh, kw) // 2:
        costs["separable"] = separable_cost(weight, dtype)
    return min(costs, key=costs.__getitem__)


def _finite(x: np.ndarray) -> bool:
    """No NaN or Inf in ``x``: its min and max are finite (two passes, no temporary,
    spread over the tile threads)."""
    if x.size == 0 or not np.issubdtype(x.dtype, np.floating):
        return True
    return bool(
        np.isfinite(reduce_parallel(np.minimum, x[None]))
        & np.isfinite(reduce_parallel(np.maximum, x[None]))
    )


class Sink(Protocol):
    """Where the tiles of a result go instead of an array: each tile as soon as it is
    computed, on the thread that computed it, while it is in cache (the command line
    turns them into an image file's integers there; no float result is ever whole).

    ``shape`` is the whole result's (N, F, Ho, Wo); ``put`` takes the values of samples,
    rows and columns ``at`` (three slices, with steps where the tiles of a transposed
    convolution's stride phase land) as a float array it may overwrite. Tiles never
    overlap; ``put`` is called from several threads at once.

    A sink may also take exact integer tiles whose values are ``block / divisor``: when
    it has ``takes_integers(divisor)`` and that says True, :func:`correlate` hands such
    tiles to ``put_integers(at, block, divisor)`` instead, if an integer source meets
    integer weights (see :func:`_exact_dtype`).
    """

    shape: tuple[int, int, int, int]

    def put(self, at: tuple[slice, slice, slice], block: np.ndarray) -> None: ...


# The float32 pipeline's error on a sum of T taps over values of at most ``top`` is below
# (T + 2) * 2**-24 * sum|w| * top levels; a safety factor 4 covers the other engines'
# factors (rows, separable). Under half a level, it rounds to the exact integers.
_FLOAT_AGREES = 0.5 / 4 / 2.0**-24


def exact_integers(weight: np.ndarray, stored, bias=None) -> np.dtype | None:
    """The integer type that sums ``weight`` (F, C/G, kh, kw) over values of the unsigned
    type ``stored`` exactly, or None: every weight an integer (sharpen, laplacian, sobel,
    emboss, box sums), no bias, and int16 when the largest sum (sum |w| times the largest
    stored value) fits, else int32. Only where the float32 pipeline provably rounds to the
    same integers (its error bound under half a level), so that an image in blocks, or
    read by a decoder that gives floats, gets the same pixels: an 8-bit image with most
    kernels, a 16-bit one with the smallest (``[-1, 1]``) only.

    Examples
    --------
    >>> sharpen = np.array([[[[0, -1, 0], [-1, 5, -1], [0, -1, 0]]]], np.float32)
    >>> exact_integers(sharpen, np.uint8), exact_integers(sharpen, np.uint16)
    (dtype('int16'), None)
    >>> exact_integers(sharpen / 9, np.uint8) is None
    True
    """
    if np.dtype(stored).kind != "u" or (bias is not None and np.any(bias)):
        return None
    if not np.isfinite(weight).all() or not (weight == np.rint(weight)).all():
        return None
    flat = np.abs(weight.astype(np.float64)).reshape(len(weight), -1)
    reach = float(flat.sum(axis=1).max()) * np.iinfo(stored).max
    taps = int(np.count_nonzero(flat, axis=1).max())
    if (taps + 2) * reach >= _FLOAT_AGREES:
        return None
    for dtype in (np.int16, np.int32):
        if reach <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return None


def _exact_dtype(source: PaddedSource, weight: np.ndarray, bias, out) -> np.dtype | None:
    """:func:`exact_integers`, when ``source`` reads stored integers (``x / divisor``) and
    the sink takes integer tiles of that divisor (``takes_integers``: see :class:`Sink`).

    An 8-bit 3x3 sharpen then never makes a float: no conversion of the window, passes
    over int16, and a tile that is clipped and cast (a 1024x768 RGB image on one thread:
    3.5 ms, 7.9 in floats). The float pipeline rounds to the same integers (where
    :func:`exact_integers` takes it, its error is under half a level and the exact result
    an integer, so no ties), and counts its clipped values less exactly: a sum that is
    exactly 0 can come out as -1e-9 in floats.
    """
    takes = getattr(out, "takes_integers", None)
    if source.divisor is None or takes is None or not takes(source.divisor):
        return None
    return exact_integers(weight, source.x.dtype, bias)


class _Exact:
    """Integer tiles (the values are ``block / divisor``) handed to ``sink.put_integers``."""

    def __init__(self, sink: Sink, divisor: int) -> None:
        self.sink, self.divisor, self.shape = sink, divisor, sink.shape

    def put(self, at: tuple[slice, slice, slice], block: np.ndarray) -> None:
        self.sink.put_integers(at, block, self.divisor)  # type: ignore[attr-defined]


def correlate(
    source: PaddedSource,
    weight: np.ndarray,
    *,
    stride: Pair,
    dilation: Pair,
    groups: int,
    out: np.ndarray | Sink,
    bias: np.ndarray | None = None,
) -> np.ndarray | Sink:
    """Fill ``out`` (n, F, Ho, Wo), any strides, with the valid correlation of ``source``.

    ``source.shape`` is the padded input's; ``out``'s spatial size must be the
    valid output size of that padded input. A :class:`Sink` gets each tile instead, plus
    ``bias`` (one value per filter; an array ``out`` gets none: its caller adds it).
    """
    n, _, ho, wo = out.shape
    if math.prod(out.shape) == 0:
        return out
    dtype = out.dtype if isinstance(out, np.ndarray) else np.result_type(source.dtype, np.float32)
    name = choose_path(weight, groups, dtype, stride)
    if name != "rows" and forced_path() is None and not _finite(source.x):
        # A NaN or Inf would spread over a whole FFT tile, the separable passes make
        # Inf - Inf = NaN from mixed-sign factors, and the taps engine skips zero taps
        # (0 * NaN is NaN, as in torch); a GEMM over every tap keeps them local.
        name = "rows"
    exact = _exact_dtype(source, weight, bias, out) if name == "taps" else None
    if exact is not None:  # the integers as they are, summed exactly
        out, dtype = _Exact(out, source.divisor), exact
        source = PaddedSource.from_maps(source.x, source.rows, source.cols, dtype=exact)
    unit = 1
    if name in ("taps", "separable") and not isinstance(out, np.ndarray):
        interleaved = _interleaved(source, weight, groups, stride, dilation, out, bias)
        if interleaved is not None:
            source, weight, groups, dilation, out, bias = interleaved
            n, _, ho, wo = out.shape
            unit = _PixelSink.channels_of(out)
    options = {"groups": groups, "stride": stride, "dilation": dilation, "dtype": dtype}
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
        unit=unit,
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
            empty=lambda shape, dtype, slot: scratch(slot, shape, dtype),
        )
        at = (slice(t.n0, t.n1), slice(t.r0, t.r1), slice(t.c0, t.c1))
        if isinstance(out, np.ndarray):
            engine(window, out[at[0], :, at[1], at[2]])
            return
        block = engine.values(window, (t.n1 - t.n0, out.shape[1], t.r1 - t.r0, t.c1 - t.c0))
        if bias is not None:
            block += bias.astype(dtype)[:, None, None]
        out.put(at, block)

    run_parallel(work, tiles)
    return out


def _interleaved(source: PaddedSource, weight, groups, stride, dilation, out, bias):
    """The same per-channel correlation as one channel, pixels' channels side by side,
    when ``source`` holds them so (a decoder's (H, W, C) array): one kernel for every
    channel, one input channel per group, no column stride. Its window rows are then
    contiguous and its tiles' values interleaved as image files hold them, so neither
    converting the input nor quantizing the output gathers or scatters channels; the
    elementwise engines compute exactly the values they compute on planes. None when it
    does not apply."""
    x = source.x
    n, c, h, w = x.shape
    f, cg, kh, kw = weight.shape
    if c < 2 or groups != c or f != c or stride[1] != 1 or x.strides[3] != c * x.strides[1]:
        return None
    if not (weight == weight[:1]).all():
        return None
    flat = np.lib.stride_tricks.as_strided(
        x, (n, 1, h, w * c), (x.strides[0], 0, x.strides[2], x.strides[1]), writeable=False
    )
    cols = source.cols[:, None]
    cols = np.where(cols >= 0, cols * c + np.arange(c), -1).ravel()
    source = PaddedSource.from_maps(
        flat, source.rows, cols, divisor=source.divisor, dtype=source.dtype
    )
    return source, weight[:1], 1, (dilation[0], dilation[1] * c), _PixelSink(out, c, bias), None


class _PixelSink:
    """Tiles of the one-channel, channels-side-by-side correlation handed to ``sink`` as
    (n, C, rows, cols) views (channels innermost), plus each channel's bias."""

    def __init__(self, sink: Sink, channels: int, bias: np.ndarray | None) -> None:
        n, _, height, width = sink.shape
        self.sink, self.channels, self.bias = sink, channels, bias
        self.shape = (n, 1, height, width * channels)

    @staticmethod
    def channels_of(sink: _PixelSink) -> int:
        return sink.channels

    def put(self, at: tuple[slice, slice, slice], block: np.ndarray) -> None:
        c = self.channels
        n, _, rows, cols = block.shape
        pixels = block.reshape(n, rows, cols // c, c).transpose(0, 3, 1, 2)
        if self.bias is not None:
            pixels += self.bias.astype(block.dtype)[:, None, None]
        self.sink.put((at[0], at[1], slice(at[2].start // c, at[2].stop // c)), pixels)
