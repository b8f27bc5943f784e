"""What every correlation engine shares: the :class:`Engine` set-up, a window's stride
phases as flat :class:`Planes`, and the flat accumulators the elementwise engines fill.
"""

from __future__ import annotations

import numpy as np

from convcli.conv.engines.tiles import scratch

Pair = tuple[int, int]


def split_groups(a: np.ndarray, groups: int) -> np.ndarray:
    """View (n, G*k, h, w) as (n, G, k, h, w) without copying (writes go through)."""
    view = a.view()
    view.shape = (a.shape[0], groups, a.shape[1] // groups, *a.shape[2:])
    return view


class Engine:
    """Shared set-up: shapes, stride, dilation, dtype, and the tile budget."""

    budget = 1 << 20  # buffer elements per tile; measured best on 2 cores (1 MiB L2 each)

    def __init__(self, w: np.ndarray, *, groups: int, stride: Pair, dilation: Pair, dtype) -> None:
        self.f, self.cg, self.kh, self.kw = w.shape
        self.groups, self.fg = groups, self.f // groups
        # A dilation along an axis with one tap changes nothing; dropping it keeps the
        # engines' buffers and loops (Rows has one per row phase) independent of its value.
        dilation = (dilation[0] if self.kh > 1 else 1, dilation[1] if self.kw > 1 else 1)
        self.stride, self.dilation, self.dtype = stride, dilation, np.dtype(dtype)

    @property
    def per_pixel(self) -> int:
        return 2 * self.f

    def tile_rows_cols(self) -> tuple[int | None, int | None]:
        return None, None

    def values(self, win: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """The tile of ``shape`` (n, F, ho, wo) as an array its caller may overwrite (a
        per-thread buffer, reused by the next tile); ``self(win, out)`` fills ``out``."""
        block = scratch("tile", shape, self.dtype)
        self(win, block)
        return block


class Planes:
    """A window as flat, contiguous stride phases: every tap reads one 1-D slice.

    Output pixel (r, c) of tap (i, j) reads window[r*sh + i*dh, c*sw + j*dw], which
    is phase ((i*dh) % sh, (j*dw) % sw) at (r + (i*dh)//sh, c + (j*dw)//sw). With
    each phase flattened at a common row pitch, a tap is the slice starting at
    ``row_shift * pitch + col_shift`` of length ``(ho - 1) * pitch + wo``; the
    ``pitch - wo`` columns that wrap into the next row are computed and dropped.
    Contiguous slices run about twice as fast in NumPy as 2-D strided views.
    Only the phases that the ``kernel``'s taps read are built: at most kh * kw,
    however large the stride (a stride of 10**9 must not make 10**18 planes).
    """

    def __init__(
        self, win: np.ndarray, stride: Pair, dilation: Pair, out_hw: Pair, kernel: Pair
    ) -> None:
        self.stride, self.dilation = stride, dilation
        row_phases = sorted({i * dilation[0] % stride[0] for i in range(kernel[0])})
        col_phases = sorted({j * dilation[1] % stride[1] for j in range(kernel[1])})
        (sh, sw), (ho, wo) = stride, out_hw
        h_in, w_in = win.shape[-2:]
        if stride == (1, 1):
            self.pitch = w_in
            if not win.flags.c_contiguous:
                win = _copy_to(scratch("planes", win.shape, win.dtype), win)
            self.planes = {(0, 0): win.reshape(*win.shape[:-2], -1)}
        else:
            rows, self.pitch = -(-h_in // sh), -(-w_in // sw)
            self.planes = {}
            # Only the phases some tap reads (at most kh * kw of them, whatever the stride).
            phases = [(a, b) for a in row_phases for b in col_phases]
            for index, (a, b) in enumerate(phases):
                phase = win[..., a::sh, b::sw]
                plane = scratch(f"plane{index}", (*win.shape[:-2], rows, self.pitch), win.dtype)
                plane[..., : phase.shape[-2], : phase.shape[-1]] = phase
                # Cells past the phase are read only by dropped columns; keep them finite.
                plane[..., phase.shape[-2] :, :] = 0
                plane[..., : phase.shape[-2], phase.shape[-1] :] = 0
                self.planes[a, b] = plane.reshape(*win.shape[:-2], -1)
        self.length = (ho - 1) * self.pitch + wo

    def tap(self, i: int, j: int) -> np.ndarray:
        (sh, sw), (dh, dw) = self.stride, self.dilation
        start = (i * dh // sh) * self.pitch + j * dw // sw
        return self.planes[(i * dh) % sh, (j * dw) % sw][..., start : start + self.length]


def flat_accumulator(shape: tuple[int, ...], groups: int, pitch: int, dtype) -> np.ndarray:
    """A (n, G, F/G, ho*pitch) buffer laid out at the planes' row pitch, for an output of
    ``shape`` (n, F, ho, wo)."""
    n, f, ho, _ = shape
    return scratch("acc", (n, groups, f // groups, ho * pitch), dtype)


def valid_columns(acc: np.ndarray, ho: int, wo: int) -> np.ndarray:
    """A flat accumulator's outputs as an (n, F, ho, wo) view (rows at its pitch)."""
    n, groups, fg, length = acc.shape
    return acc.reshape(n, groups * fg, ho, length // ho)[..., :wo]


def _copy_to(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    dst[...] = src
    return dst


def store(acc: np.ndarray, out: np.ndarray, groups: int, pitch: int) -> None:
    """Copy the valid columns of a flat accumulator into the output block."""
    ho, wo = out.shape[-2:]
    split_groups(out, groups)[...] = acc.reshape(*acc.shape[:3], ho, pitch)[..., :wo]


def flat_im2col(planes: Planes, kernel: Pair, groups: int, dtype) -> np.ndarray:
    """Columns (n, G, C/G * kh * kw, length) of a window's planes, ordered (c, i, j)
    like a weight reshaped to (F, C/G * kh * kw): one contiguous copy per tap."""
    kh, kw = kernel
    first = planes.tap(0, 0)
    n, c = first.shape[:2]
    cols = scratch("cols", (n, groups, c // groups, kh * kw, planes.length), dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i * kw + j] = split_groups(planes.tap(i, j), groups)
    return cols.reshape(n, groups, -1, planes.length)
