"""The correlation engines. Each computes one tile: a padded input window
(n, C, h_in, w_in) correlated (valid) into an output block view (n, F, ho, wo).

Engines are built once per call from the weight (``__init__`` precomputes
factors, spectra or matrices) and then called once per tile from worker
threads, so ``__call__`` only reads ``self``.
"""

from __future__ import annotations

import numpy as np

from convcli.conv.engines.base import (
    Engine,
    Pair,
    Planes,
    flat_accumulator,
    split_groups,
    store,
    valid_columns,
)
from convcli.conv.engines.passes import accumulate, passes_cost, tap_groups
from convcli.conv.engines.tiles import scratch


def taps_cost(w: np.ndarray, dtype) -> float:
    """The :class:`Taps` engine's cost for per-channel weights ``w`` (F, 1, kh, kw)."""
    return passes_cost(tap_groups(w.astype(dtype).reshape(w.shape[0], -1)))


class FlatEngine(Engine):
    """An elementwise engine filling a flat accumulator at the planes' row pitch
    (:meth:`flat`); its tile is that accumulator's valid columns."""

    def flat(self, win: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
        """The tile of ``shape`` as a flat accumulator, and its row pitch."""
        raise NotImplementedError

    def __call__(self, win: np.ndarray, out: np.ndarray) -> None:
        acc, pitch = self.flat(win, out.shape)
        store(acc, out, self.groups, pitch)

    def values(self, win: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        # The accumulator's valid columns as they are: no copy into a block.
        return valid_columns(self.flat(win, shape)[0], *shape[2:])


class Taps(FlatEngine):
    """One elementwise pass per tap group over the window's flat planes (per-channel
    kernels, one input channel per group): taps of weight 0 skipped, taps of equal weight
    summed before one multiplication, weights of 1 and -1 added or subtracted.

    A 3x3 sharpening kernel is 5 passes where the ``rows`` engine copies the window three
    times and runs a matrix product per row; the result does not depend on the tiles.
    """

    budget = 1 << 19  # elements per tile and buffer: a tile's buffers stay in L2

    def __init__(self, w: np.ndarray, **kw) -> None:
        super().__init__(w, **kw)
        weights = w.astype(self.dtype).reshape(self.groups, self.fg, self.kh * self.kw)
        groups = tap_groups(weights)
        if self.dtype.kind == "i":
            # Integer sums are exact in any order: start from a group that needs no
            # negation (a sharpening kernel's 5, then its -1s subtracted: 5 passes, not 6).
            groups.sort(key=lambda group: group.kind == -1)
        self.groups_of_taps = [
            group._replace(weight=group.weight[None, :, :, None]) for group in groups
        ]

    @property
    def per_pixel(self) -> int:
        return 2 * self.f + self.groups

    def flat(self, win: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
        """The tile of ``shape`` as a flat accumulator, and its row pitch."""
        planes = Planes(win, self.stride, self.dilation, shape[-2:], (self.kh, self.kw))
        acc = flat_accumulator(shape, self.groups, planes.pitch, self.dtype)
        head = acc[..., : planes.length]
        taps = {t for group in self.groups_of_taps for t in group.taps}
        views = {t: split_groups(planes.tap(*divmod(t, self.kw)), self.groups) for t in taps}
        accumulate(
            head,
            views,
            self.groups_of_taps,
            lambda slot, size: scratch(slot, size, head.dtype),
        )
        return acc, planes.pitch


def kernel_rank_factors(w: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Column and row factors (r, F, kh), (r, F, kw) with sum_q u_q v_q^T = each filter.

    Singular values below the dtype's resolution (relative to the largest) are
    dropped; they are below what the result can show.
    """
    f, _, kh, kw = w.shape
    u, s, vt = np.linalg.svd(w.reshape(f, kh, kw).astype(np.float64))
    tol = np.finfo(dtype).eps * max(kh, kw) * s[:, :1]
    rank = max(1, int((s > tol).sum(axis=1).max()))
    root = np.sqrt(s[:, :rank])
    cols = (u[:, :, :rank] * root[:, None, :]).transpose(2, 0, 1)
    rows = (vt[:, :rank, :] * root[:, :, None]).transpose(1, 0, 2)
    return cols, rows


def kernel_rank(w: np.ndarray, dtype) -> int:
    return kernel_rank_factors(w, dtype)[0].shape[0]


def separable_cost(w: np.ndarray, dtype) -> float:
    """The :class:`Separable` engine's cost for per-channel weights ``w``: each rank-1
    term's two passes (the row pass over the kh - 1 extra rows of its band too), and the
    terms' sum."""
    cols, rows = kernel_rank_factors(w, dtype)
    cost = 2.0 * (cols.shape[0] - 1)
    for u, v in zip(cols.astype(dtype), rows.astype(dtype), strict=True):
        cost += 1.25 * passes_cost(tap_groups(v)) + passes_cost(tap_groups(u)) + 2
    return cost


class Separable(FlatEngine):
    """Sum of rank-1 passes: a row pass (Wf taps) then a column pass (Hf taps) each, both
    by :func:`accumulate` (a symmetric factor's pairs summed before one multiplication)."""

    budget = 1 << 19  # elements per buffer: a tile's buffers stay in L2

    def __init__(self, w: np.ndarray, **kw) -> None:
        super().__init__(w, **kw)
        cols, rows = kernel_rank_factors(w, self.dtype)
        shape = (cols.shape[0], self.groups, self.fg)
        u = cols.astype(self.dtype).reshape(*shape, self.kh)
        v = rows.astype(self.dtype).reshape(*shape, self.kw)
        self.terms = [
            (
                [g._replace(weight=g.weight[None, :, :, None]) for g in tap_groups(ui)],
                [g._replace(weight=g.weight[None, :, :, None]) for g in tap_groups(vi)],
            )
            for ui, vi in zip(u, v, strict=True)
        ]

    @property
    def per_pixel(self) -> int:
        return 4 * self.f + self.groups

    def flat(self, win: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
        """The tile of ``shape`` as a flat accumulator, and its row pitch."""
        planes = Planes(win, self.stride, self.dilation, shape[-2:], (self.kh, self.kw))
        (sh, sw), (dh, dw) = self.stride, self.dilation
        plane_len = next(iter(planes.planes.values())).shape[-1]
        band_len = plane_len - (self.kw - 1) * dw // sw
        acc = flat_accumulator(shape, self.groups, planes.pitch, self.dtype)
        head = acc[..., : planes.length]
        band_shape = (*head.shape[:3], band_len)

        def buffer(slot: str, shape: tuple[int, ...]) -> np.ndarray:
            return scratch(slot, shape, acc.dtype)

        for term, (column_groups, row_groups) in enumerate(self.terms):
            bands = {}
            for index, a in enumerate(sorted({(i * dh) % sh for i in range(self.kh)})):
                views = {}
                for j in range(self.kw):
                    shift = j * dw // sw
                    xs = planes.planes[a, (j * dw) % sw][..., shift : shift + band_len]
                    views[j] = split_groups(xs, self.groups)
                bands[a] = buffer(f"band{index}", band_shape)
                accumulate(bands[a], views, row_groups, buffer)
            views = {}
            for i in range(self.kh):
                shift = (i * dh // sh) * planes.pitch
                views[i] = bands[(i * dh) % sh][..., shift : shift + planes.length]
            target = head if term == 0 else buffer("term", head.shape)
            accumulate(target, views, column_groups, buffer)
            if term:
                head += target
        return acc, planes.pitch


def next_fast_len(n: int) -> int:
    """Smallest 2-3-5-smooth integer >= n (sizes pocketfft handles fastest)."""
    best = 2 * n
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def fft_tile(span: Pair, padded: Pair, stride: Pair) -> tuple[Pair, Pair]:
    """The FFT engine's transform size and the output rows and columns of one tile.

    An FFT a few times the kernel span wastes little on halos; never more than the
    (padded) input. ``convcli.scale`` cuts blocks at multiples of the tile so that
    each block's tiles are the whole image's.

    Examples
    --------
    >>> fft_tile((9, 9), (4096, 100), (1, 1))
    ((256, 100), (248, 92))
    """
    shape = tuple(
        min(next_fast_len(max(256, 4 * sp)), next_fast_len(p))
        for sp, p in zip(span, padded, strict=True)
    )
    rows_cols = tuple(
        max(1, (size - sp) // st + 1) for size, sp, st in zip(shape, span, stride, strict=True)
    )
    return shape, rows_cols  # type: ignore[return-value]


class FFT(Engine):
    """Overlap-save: each tile's window and the kernel multiplied as spectra."""

    def __init__(self, w: np.ndarray, *, padded: Pair, **kw) -> None:
        super().__init__(w, **kw)
        self.real = np.float32 if self.dtype == np.float32 else np.float64
        span = ((self.kh - 1) * self.dilation[0] + 1, (self.kw - 1) * self.dilation[1] + 1)
        self.shape, self.rows_cols = fft_tile(span, padded, self.stride)
        dilated = np.zeros((self.f, self.cg, *span), self.real)
        dilated[:, :, :: self.dilation[0], :: self.dilation[1]] = w
        spectrum = np.conj(np.fft.rfft2(dilated, s=self.shape))
        self.spectrum = spectrum.reshape(self.groups, self.fg, self.cg, *spectrum.shape[-2:])

    @property
    def per_pixel(self) -> int:
        return 4 * self.f

    def tile_rows_cols(self) -> tuple[int | None, int | None]:
        return self.rows_cols

    def __call__(self, win: np.ndarray, out: np.ndarray) -> None:
        ho, wo = out.shape[-2:]
        spectra = np.fft.rfft2(
            split_groups(win.astype(self.real, copy=False), self.groups), s=self.shape
        )
        if self.cg == 1:
            product = spectra * self.spectrum[None, :, :, 0]
        else:
            product = np.einsum("ngchw,gfchw->ngfhw", spectra, self.spectrum)
        full = np.fft.irfft2(product, s=self.shape)
        og = split_groups(out, self.groups)
        og[...] = full[
            ...,
            : (ho - 1) * self.stride[0] + 1 : self.stride[0],
            : (wo - 1) * self.stride[1] + 1 : self.stride[1],
        ]


class Rows(Engine):
    """One matrix product per output row, over column-shifted copies of the window.

    im2col copies every input pixel ``C*kh*kw`` times. Here each window row is
    copied only ``kw`` times, once per column tap, into ``z[row, j, c, :] =
    win[c, row, j*dw :: sw]``; the ``kh`` rows an output row reads are then
    consecutive in ``z``, so with K ordered (i, j, c) they form a
    ``(kh*kw*C/G, wo)`` matrix at a uniform stride: a view, not a copy. A row
    dilation ``dh`` sorts the copied rows by phase (row mod ``dh``) so that the
    rows an output row reads stay consecutive. The product writes straight into
    the output block. Against a tap loop of elementwise multiply-adds it runs
    depthwise 3x3 kernels 10-20 % faster and 7x7 twice as fast; against im2col
    plus one GEMM per tile, dense 64->64 3x3 layers twice as fast (2 cores).
    """

    budget = 1 << 21  # z elements per tile; measured best on 2 cores (1 << 20: 20 % slower)

    def __init__(self, w: np.ndarray, **kw) -> None:
        super().__init__(w, **kw)
        matrix = w.astype(self.dtype).reshape(self.groups, self.fg, self.cg, self.kh, self.kw)
        # K ordered (i, j, c), as z's rows are laid out.
        matrix = matrix.transpose(0, 1, 3, 4, 2).reshape(self.groups, self.fg, -1)
        self.matrix = np.ascontiguousarray(matrix)[None, :, None]  # (1, G, 1, F/G, K)

    @property
    def per_pixel(self) -> int:
        return self.stride[0] * self.groups * self.cg * self.kw + self.f

    def tile_rows_cols(self) -> tuple[int | None, int | None]:
        channels = self.groups * self.cg
        return None, self.tile_width(self.stride[0], channels, self.f, self.kh, self.kw)

    @classmethod
    def tile_width(cls, stride_h: int, channels: int, filters: int, kh: int, kw: int) -> int:
        """Output columns per tile. A tile copies (rows*sh + kh - 1) window rows kw times:
        with a tall kernel, narrower column blocks keep a tile of 8+ output rows within
        the budget. (Each output row is one matrix product as wide as its tile.)"""
        per_column = (8 * stride_h + kh) * kw * channels + 8 * filters
        return max(16, cls.budget // per_column)

    def __call__(self, win: np.ndarray, out: np.ndarray) -> None:
        n, _, h_in, _ = win.shape
        ho, wo = out.shape[-2:]
        (sh, sw), (dh, dw) = self.stride, self.dilation
        per_phase = -(-h_in // dh)
        z = scratch("shifted", (n, self.groups, dh, per_phase, self.kw, self.cg, wo), self.dtype)
        source = split_groups(win, self.groups)  # (n, G, C/G, h_in, w_in)
        for q in range(dh):
            rows = source[..., q::dh, :]
            for j in range(self.kw):
                columns = rows[..., j * dw : j * dw + (wo - 1) * sw + 1 : sw]
                z[:, :, q, : columns.shape[-2], j] = columns.transpose(0, 1, 3, 2, 4)
        # Output row r reads rows r*sh + i*dh: phase (r*sh) % dh, rows from (r*sh)//dh on.
        # Rows r0, r0 + period, ... share a phase and step ``advance`` rows in it.
        period = dh // np.gcd(sh, dh)
        advance = period * sh // dh
        og = split_groups(out, self.groups).transpose(0, 1, 3, 2, 4)  # (n, G, ho, F/G, wo)
        sn, sg, sq, sr, _, _, sx = z.strides
        for r0 in range(min(period, ho)):
            q, first = divmod(r0 * sh, dh)[::-1]
            count = len(range(r0, ho, period))
            start = z[:, :, q, first]
            b = np.lib.stride_tricks.as_strided(
                start,
                (n, self.groups, count, self.kh * self.kw * self.cg, wo),
                (sn, sg, advance * sr, wo * sx, sx),
                writeable=False,
            )
            np.matmul(self.matrix, b, out=og[:, :, r0::period])


ENGINES = {"rows": Rows, "separable": Separable, "fft": FFT, "taps": Taps}
