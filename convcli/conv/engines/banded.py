"""Separable passes as matrix products with banded (Toeplitz) matrices.

A pass of k taps along one axis is a product with a matrix whose rows hold the taps
on a diagonal band. Over a small block that matrix is small, and BLAS does the
block's (block + k - 1) multiply-adds per output faster than NumPy does k: a pass
as one multiply and one add per tap (two array passes each) ran 2.8x slower than
these products, for both axes, on 2 cores (9 taps, 4096-wide rows). The products
use blocks of 32 columns (row pass) and the tile's rows (column pass).

Stride 1 and dilation 1 only; the tap loop of
:class:`convcli.conv.engines.algorithms.Separable` does the rest.
"""

from __future__ import annotations

import numpy as np

from convcli.conv.engines.tiles import scratch

_BLOCK = 32  # output columns per row-pass product: fewest operations per output measured


def banded(taps: np.ndarray, outputs: int) -> np.ndarray:
    """(..., outputs, outputs + k - 1) matrices whose row r holds the k ``taps`` (the last
    axis of ``taps``) from column r on: a correlation as a matrix product.

    Examples
    --------
    >>> banded(np.array([1.0, 2.0]), 3).tolist()
    [[1.0, 2.0, 0.0, 0.0], [0.0, 1.0, 2.0, 0.0], [0.0, 0.0, 1.0, 2.0]]
    """
    k = taps.shape[-1]
    matrix = np.zeros((*taps.shape[:-1], outputs, outputs + k - 1), taps.dtype)
    rows = np.arange(outputs)
    for j in range(k):
        matrix[..., rows, rows + j] = taps[..., j, None]
    return matrix


def row_pass(win: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:
    """``out`` (n, G, F/G, h, wo) = each group's rows of ``win`` (n, G, h, wo + kw - 1)
    correlated with its filters' row taps ``v`` (G, F/G, kw)."""
    wo, kw = out.shape[-1], v.shape[-1]
    block = min(_BLOCK, wo)
    blocks = wo // block
    if blocks:
        n, g, h, _ = win.shape
        s = win.strides
        # Overlapping column blocks of each row, a view: (n, G, 1, h, blocks, block + kw - 1).
        windows = np.lib.stride_tricks.as_strided(
            win,
            (n, g, 1, h, blocks, block + kw - 1),
            (s[0], s[1], 0, s[2], block * s[3], s[3]),
            writeable=False,
        )
        products = out[..., : blocks * block].reshape(*out.shape[:-1], blocks, block)
        matrix = banded(v, block).swapaxes(-1, -2)[None, :, :, None]  # (1, G, F/G, 1, K, B)
        np.matmul(windows, matrix, out=products)
    rest = blocks * block
    if rest < wo:  # the last columns, fewer than a block: tap by tap
        tail = out[..., rest:]
        for j in range(kw):
            part = win[:, :, None, :, rest + j : wo + j] * v[None, :, :, None, j, None]
            if j:
                tail += part
            else:
                tail[...] = part


def column_pass(band: np.ndarray, u: np.ndarray, out: np.ndarray, *, add: bool) -> None:
    """``out`` (n, G, F/G, ho, wo) = (or +=, with ``add``) the rows of ``band``
    (n, G, F/G, ho + kh - 1, wo) correlated with the column taps ``u`` (G, F/G, kh)."""
    matrix = banded(u, out.shape[-2])[None]  # (1, G, F/G, ho, ho + kh - 1)
    if not add:
        np.matmul(matrix, band, out=out)
        return
    product = scratch("column_pass", out.shape, out.dtype)
    np.matmul(matrix, band, out=product)
    out += product
