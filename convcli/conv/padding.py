"""Padding: the one resolver for padding specs, and the padding modes.

Every operation (``conv2d``, ``conv_transpose2d``, ``conv2d_backward``) and the
shape calculator turn a user's padding spec into ``(top, bottom, left, right)``
through :func:`resolve_padding`. Padding values are then realised by an *index
map* per axis (:func:`source_index`): padded position -> source position, or -1
for a zero. The same map pads (:class:`PaddedSource`, window by window) and folds
gradients back (:func:`pad_adjoint`), so the forward and backward passes cannot
disagree about a mode.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np

from convcli.errors import ParameterError

PAD_MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")


Pads = tuple[int, int, int, int]


def _int(value: object, name: str) -> int:
    """Return ``value`` as a Python int, or raise naming ``name``."""
    if isinstance(value, bool):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ParameterError(f"{name} must be an integer, got {value!r}") from None


def _same_axis(size: int, k: int, s: int, d: int, *, transpose: bool) -> tuple[int, int]:
    """TensorFlow's "same" rule on one axis, and its adjoint for the transpose.

    Forward: ``out = ceil(size / s)``, ``total = max((out - 1)*s + (k-1)*d + 1 - size, 0)``,
    the smaller half before. Transposed "same" is the adjoint of the forward rule on an
    input of ``size * s``: there ``total = (k-1)*d + 1 - s``; when the kernel is shorter
    than the stride that total is negative, and the negative part goes *after*, meaning
    zero rows appended (as ``output_padding`` would), so the output is exactly ``size*s``.
    """
    if transpose:
        total = (k - 1) * d + 1 - s
        before = max(total, 0) // 2
        return before, total - before
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def resolve_padding(
    padding: int | str | Sequence[int],
    *,
    kernel_size: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
    stride: tuple[int, int] = (1, 1),
    input_size: tuple[int, int],
    transpose: bool = False,
) -> Pads:
    """Resolve a padding spec to ``(top, bottom, left, right)``.

    Parameters
    ----------
    padding : int, (p,), (h, w), (top, bottom, left, right), "valid" or "same"
        The spec. "same" follows TensorFlow's rule at every stride.
    kernel_size, dilation, stride, input_size : (h, w)
        Needed by "same" only (``input_size`` is the operation's input).
    transpose : bool
        Resolve "same" for a transposed convolution (output exactly ``input * stride``).
        Its bottom/right value can then be negative: rows appended, not removed.

    Returns
    -------
    (top, bottom, left, right) : tuple of int

    Examples
    --------
    >>> resolve_padding("same", kernel_size=(4, 4), input_size=(8, 8))
    (1, 2, 1, 2)
    >>> resolve_padding((1, 2), kernel_size=(3, 3), input_size=(8, 8))
    (1, 1, 2, 2)
    """
    if isinstance(padding, str):
        spec = padding.strip().lower()
        if spec == "valid":
            return (0, 0, 0, 0)
        if spec == "same":
            top, bottom = _same_axis(
                input_size[0], kernel_size[0], stride[0], dilation[0], transpose=transpose
            )
            left, right = _same_axis(
                input_size[1], kernel_size[1], stride[1], dilation[1], transpose=transpose
            )
            return (top, bottom, left, right)
        raise ParameterError(
            f"padding must be an integer, (h, w), (top, bottom, left, right), 'valid' or "
            f"'same'; got {padding!r}"
        )
    if isinstance(padding, bytes):
        raise ParameterError(
            f"padding must be an integer, a tuple or 'same'/'valid'; got {padding!r}"
        )
    if isinstance(padding, Sequence):
        values = tuple(_int(v, "padding") for v in padding)
        if len(values) == 1:  # (p,) pads every side, as in PyTorch
            values = values * 4
        elif len(values) == 2:
            values = (values[0], values[0], values[1], values[1])
        elif len(values) != 4:
            raise ParameterError(
                f"padding takes an integer, (p,), (h, w) or (top, bottom, left, right); "
                f"got {len(values)} values: {tuple(padding)!r}"
            )
    else:
        p = _int(padding, "padding")
        values = (p, p, p, p)
    if min(values) < 0:
        raise ParameterError(f"padding must not be negative, got {values!r}")
    return values  # type: ignore[return-value]


def check_pad_mode(mode: str, pads: Pads, input_size: tuple[int, int]) -> None:
    """Raise :class:`ParameterError` when ``mode`` is unknown or cannot pad that much.

    ``reflect`` mirrors without repeating the edge, so (as in PyTorch) each side's
    padding must be smaller than the input along that axis. The other modes pad
    any amount, as numpy.pad does (``circular`` wraps again, ``symmetric`` mirrors
    again), where PyTorch stops at one wrap.
    """
    if mode not in PAD_MODES:
        raise ParameterError(f"padding_mode must be one of {', '.join(PAD_MODES)}; got {mode!r}")
    if mode == "reflect":
        top, bottom, left, right = pads
        height, width = input_size
        if max(top, bottom) >= height or max(left, right) >= width:
            raise ParameterError(
                f"reflect padding {pads} (top, bottom, left, right) must be smaller than the "
                f"input {height}x{width} on each side; use padding_mode 'symmetric' or "
                f"'replicate', or less padding"
            )


def source_of(positions: np.ndarray, size: int, mode: str) -> np.ndarray:
    """Source index of each padded position (0 = the input's first row; -1 = zero).

    numpy.pad's modes in closed form (mirrored or wrapped as often as needed), for
    positions however far out; :func:`source_index` is this over one padded axis.

    Examples
    --------
    >>> source_of(np.array([-2, -1, 0, 2, 3, 4]), 3, "reflect").tolist()
    [2, 1, 0, 2, 1, 0]
    """
    p = positions
    if mode == "zeros":
        return np.where((p >= 0) & (p < size), p, -1)
    if mode == "replicate":
        return np.clip(p, 0, size - 1)
    if mode == "circular":
        return p % size
    if mode == "symmetric":
        q = p % (2 * size)
        return np.where(q < size, q, 2 * size - 1 - q)
    if size == 1:  # reflect: numpy.pad repeats a single row
        return np.zeros_like(p)
    period = 2 * (size - 1)
    q = p % period
    return np.where(q < size, q, period - q)


def source_index(size: int, before: int, after: int, mode: str) -> np.ndarray:
    """Index map of one padded axis: padded position -> source position (-1 = zero).

    Examples
    --------
    >>> source_index(3, 2, 1, "reflect").tolist()
    [2, 1, 0, 1, 2, 1]
    >>> source_index(3, 1, 1, "zeros").tolist()
    [-1, 0, 1, 2, -1]
    """
    return source_of(np.arange(-before, size + after, dtype=np.intp), size, mode)


def _fold_axis(g: np.ndarray, index: np.ndarray, before: int, size: int, axis: int) -> np.ndarray:
    """Adjoint of gathering ``index`` along ``axis``: sum each padded slice into its source."""
    inner = [slice(None)] * g.ndim
    inner[axis] = slice(before, before + size)
    out = g[tuple(inner)].copy()
    for position in [*range(before), *range(before + size, index.size)]:
        source = index[position]
        if source >= 0:
            dst = [slice(None)] * g.ndim
            src = [slice(None)] * g.ndim
            dst[axis], src[axis] = source, position
            out[tuple(dst)] += g[tuple(src)]
    return out


def pad_adjoint(g: np.ndarray, pads: Pads, mode: str, size: tuple[int, int]) -> np.ndarray:
    """Fold a gradient w.r.t. the padded input back onto the unpadded input.

    Each padded position sends its gradient to the source pixel it was copied
    from (nowhere for zeros), exactly reversing :func:`pad`.
    """
    top, bottom, left, right = pads
    height, width = size
    rows = source_index(height, top, bottom, mode)
    cols = source_index(width, left, right, mode)
    return _fold_axis(_fold_axis(g, rows, top, height, -2), cols, left, width, -1)


class PaddedSource:
    """The padded input, produced window by window instead of all at once.

    Tiles ask for the padded-coordinate window they need. Windows inside the
    image are views (no copy); border windows copy the interior by slicing and
    fill only their border rows and columns through the index maps. This keeps
    padding's memory to one tile, whatever the image size.

    With ``divisor``, ``x`` holds integers (an 8-bit image's values) that are read as
    ``float32(x) / divisor``, each window converted as it is made: no float copy of the
    whole image ever exists, and the conversion runs in the tile threads while the
    window is in cache. The values are exactly those of dividing the whole image first.
    """

    def __init__(self, x: np.ndarray, pads: Pads, mode: str, *, divisor: int | None = None) -> None:
        top, bottom, left, right = pads
        height, width = x.shape[-2:]
        self._setup(
            x,
            source_index(height, top, bottom, mode),
            source_index(width, left, right, mode),
            (top, top + height),
            (left, left + width),
            divisor,
        )

    @classmethod
    def from_maps(
        cls,
        x: np.ndarray,
        rows: np.ndarray,
        cols: np.ndarray,
        *,
        divisor: int | None = None,
        dtype=None,
    ) -> PaddedSource:
        """A source with explicit index maps (padded position -> row or column of ``x``,
        -1 = zero): a shifted and cropped input for the transposed convolution's phases,
        or a block's window of rows read from a larger image (``convcli.scale``).
        Windows inside the longest stretch of consecutive rows and columns are views.
        ``dtype`` is the windows' type (default: float32 with a ``divisor``, else
        ``x``'s); 8-bit integers widened to int16 are converted once, where they land,
        so that every later pass runs on one type."""
        source = cls.__new__(cls)
        source._setup(x, rows, cols, _linear_span(rows), _linear_span(cols), divisor, dtype)
        return source

    def _setup(self, x, rows, cols, row_span, col_span, divisor, dtype=None) -> None:
        self.x, self.rows, self.cols, self.divisor = x, rows, cols, divisor
        # Padded positions lo:hi read source position p + offset: a plain slice.
        self.row_span, self.col_span = row_span, col_span
        self.shape = (*x.shape[:-2], rows.size, cols.size)
        if dtype is None:
            dtype = np.float32 if divisor is not None else x.dtype
        self.dtype = np.dtype(dtype)

    def remapped(self, rows: np.ndarray, cols: np.ndarray) -> PaddedSource:
        """The source whose padded position ``p`` is this one's ``rows[p]`` (and
        ``cols``), -1 still a zero: a padded input cut or shifted again (the transposed
        phases of an edge-padded image) without a copy of it."""
        rows = np.where(rows >= 0, self.rows[np.maximum(rows, 0)], -1)
        cols = np.where(cols >= 0, self.cols[np.maximum(cols, 0)], -1)
        return PaddedSource.from_maps(self.x, rows, cols, divisor=self.divisor, dtype=self.dtype)

    def window(
        self, r0: int, r1: int, c0: int, c1: int, n0: int = 0, n1: int | None = None, *, empty=None
    ) -> np.ndarray:
        """Samples ``n0:n1``, padded rows ``r0:r1`` and columns ``c0:c1`` of the padded input.

        ``empty(shape, dtype, slot)`` allocates a window (default ``numpy.empty``); the
        tiled engines pass a reusable per-thread buffer for each ``slot``.
        """
        empty = empty or (lambda shape, dtype, slot: np.empty(shape, dtype))
        x = self.x[n0:n1]
        rlo, rhi = max(r0, self.row_span[0]), min(r1, self.row_span[1])
        clo, chi = max(c0, self.col_span[0]), min(c1, self.col_span[1])
        if rlo >= rhi or clo >= chi:
            rlo = rhi = r0  # no interior: every position comes through the maps
        roff = int(self.rows[rlo]) - rlo if rlo < rhi else 0
        coff = int(self.cols[clo]) - clo if clo < chi else 0
        if (
            (rlo, rhi, clo, chi) == (r0, r1, c0, c1)
            and self.divisor is None
            and self.dtype == x.dtype
        ):
            return x[..., r0 + roff : r1 + roff, c0 + coff : c1 + coff]
        block = empty((*x.shape[:-2], r1 - r0, c1 - c0), self.dtype, "window")
        put = self._put
        if rlo < rhi:
            inner = block[..., rlo - r0 : rhi - r0, :]
            lines = x[..., rlo + roff : rhi + roff, :]
            put(inner[..., clo - c0 : chi - c0], lines[..., clo + coff : chi + coff])
            for lo, hi in ((c0, clo), (chi, c1)):  # border columns: one gather each side
                if lo < hi:
                    _put_mapped(put, inner[..., lo - c0 : hi - c0], lines, self.cols[lo:hi])
        cols = self.cols[c0:c1]
        for lo, hi in ((r0, rlo), (rhi, r1)):  # border rows: one gather each side
            if lo < hi:
                part = block[..., lo - r0 : hi - r0, :]
                srcs = self.rows[lo:hi]
                _put_mapped(put, part, x[..., np.maximum(srcs, 0), :], cols)
                part[..., srcs < 0, :] = 0
        return block

    def _put(self, into: np.ndarray, values: np.ndarray) -> None:
        """Copy source values into a window, divided when they are integers to read so
        (each value converted once, where it lands)."""
        if self.divisor is None:
            into[...] = values
        else:
            np.divide(values, np.float32(self.divisor), out=into, dtype=np.float32)


def _put_mapped(put, into: np.ndarray, lines: np.ndarray, cols: np.ndarray) -> None:
    """``into[..., k] = lines[..., cols[k]]`` (0 where ``cols[k]`` is -1), in one gather."""
    put(into, lines[..., np.maximum(cols, 0)])
    if cols.min() < 0:
        into[..., cols < 0] = 0


def _linear_span(index: np.ndarray) -> tuple[int, int]:
    """The longest run of positions ``p`` whose map is ``index[lo] + (p - lo) >= 0``, where
    windows are plain slices (may be empty).

    Examples
    --------
    >>> _linear_span(np.array([-1, 2, 1, 0, 1, 2, 3, -1]))
    (3, 7)
    """
    valid = index >= 0
    if not valid.any():
        return (0, 0)
    # Run boundaries: where the map stops being valid or stops stepping by one.
    breaks = np.flatnonzero(~valid[1:] | ~valid[:-1] | (np.diff(index) != 1)) + 1
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [index.size]))
    starts, stops = starts[valid[starts]], stops[valid[starts]]
    longest = int(np.argmax(stops - starts))
    return int(starts[longest]), int(stops[longest])
