"""The geometry of a convolution picture, as data: which cells are input, padding,
window and output in frame ``k``, and what each cell shows (the words are in
:mod:`convcli.shapes.captions`).

A picture is drawn the way Dumoulin & Visin draw convolution arithmetic: the padded
input with the kernel window on it, and the output grid beside it. A transposed
convolution is drawn as its equivalent direct convolution: stride 1 over the input
with ``stride - 1`` zeros inserted between cells, padded by ``dilation*(k-1) - padding``
(negative: cells cut), the kernel flipped. Everything here is computed from the
library's geometry (:mod:`convcli.conv.geometry`) and index maps
(:func:`convcli.conv.padding.source_index`); :mod:`convcli.shapes.layout` places it,
:mod:`convcli.shapes.svg` and :mod:`convcli.shapes.raster` paint it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from convcli.conv.geometry import ConvGeometry
from convcli.conv.operations import conv2d
from convcli.conv.padding import source_index
from convcli.conv.transposed import conv_transpose2d
from convcli.errors import ParameterError
from convcli.shapes import captions

MAX_CELLS = 32  # per axis of the drawn grid (the padded or stretched input)
MAX_FRAMES = 400


@dataclass(frozen=True)
class Axis:
    """One axis of the drawn grid and of the output.

    ``kinds[g]`` is "input", "pad" or "zero" (a zero inserted between the input cells of
    a transposed convolution); ``source[g]`` the input index grid position ``g`` shows
    (-1: a zero). Output ``o`` reads grid positions ``offset + o*step + i*dilation``
    (``i < taps``); ``extra`` trailing outputs (and up to as many trailing padding
    positions) exist only because of output_padding or a negative padding after.
    """

    kinds: tuple[str, ...]
    source: tuple[int, ...]
    offset: int
    step: int
    dilation: int
    taps: int
    outputs: int
    extra: int = 0

    def window(self, o: int) -> list[int]:
        start = self.offset + o * self.step
        return [start + i * self.dilation for i in range(self.taps)]

    def read(self) -> set[int]:
        return {g for o in range(self.outputs) for g in self.window(o)}

    def extra_grid(self) -> set[int]:
        """Trailing padding positions that are there for the extra outputs."""
        size = len(self.kinds)
        trailing = next((n for n in range(size) if self.kinds[size - 1 - n] != "pad"), size)
        return set(range(size - min(self.extra, trailing), size))


def direct_axis(
    size: int, k: int, s: int, d: int, before: int, after: int, mode: str, outputs: int
) -> Axis:
    """An axis of a convolution: the padded input, windows ``stride`` apart."""
    kinds = ("pad",) * before + ("input",) * size + ("pad",) * after
    source = tuple(int(v) for v in source_index(size, before, after, mode))
    return Axis(kinds, source, 0, s, d, k, outputs)


def transposed_axis(
    size: int, k: int, s: int, d: int, before: int, after: int, output_padding: int, outputs: int
) -> Axis:
    """An axis of a transposed convolution drawn as a direct one: ``s - 1`` zeros between
    input cells, padded by ``d*(k-1) - padding`` each side (plus output_padding after);
    a negative amount cuts that many cells, which no window then reads."""
    span = d * (k - 1)
    lead, trail = span - before, span - after + output_padding
    stretched = (size - 1) * s + 1
    kinds, source = [], []
    for q in range(-max(lead, 0), stretched + max(trail, 0)):
        inside = 0 <= q < stretched
        kinds.append("input" if inside and q % s == 0 else "zero" if inside else "pad")
        source.append(q // s if kinds[-1] == "input" else -1)
    extra = output_padding + max(-after, 0)
    return Axis(tuple(kinds), tuple(source), max(-lead, 0), 1, d, k, outputs, extra)


@dataclass(frozen=True)
class Numbers:
    """The numbers of one channel: input (H, W), kernel (kh, kw) as applied by the
    picture's window (flipped for a transposed convolution), bias, output from the library."""

    x: np.ndarray
    kernel: np.ndarray
    bias: float
    y: np.ndarray


def numbers_for(
    geo: ConvGeometry, x: np.ndarray, weight: np.ndarray, bias: float = 0.0, *, padding=None
) -> Numbers:
    """Numbers for a picture: ``x`` (H, W) and ``weight`` (kh, kw), the output computed by
    :func:`convcli.conv2d` or :func:`convcli.conv_transpose2d`.

    ``padding`` is the user's spec (a transposed "same" resolves to a negative padding
    after, which only the spec expresses); ``geo.padding`` by default.

    Examples
    --------
    >>> from convcli.conv.geometry import conv2d_geometry
    >>> geo = conv2d_geometry((1, 1, 3, 3), (1, 1, 2, 2))
    >>> numbers_for(geo, np.arange(9.0).reshape(3, 3), np.ones((2, 2))).y.tolist()
    [[8.0, 12.0], [20.0, 24.0]]
    """
    x4 = np.asarray(x, np.float32)[None, None]
    w4 = np.asarray(weight, np.float32)[None, None]
    b = np.array([bias], np.float32)
    options = dict(stride=geo.stride, dilation=geo.dilation)
    pads = geo.padding if padding is None else padding
    if geo.transpose:
        y = conv_transpose2d(x4, w4, b, padding=pads, output_padding=geo.output_padding, **options)
        kernel = np.asarray(weight, np.float64)[::-1, ::-1]
    else:
        y = conv2d(x4, w4, b, padding=pads, padding_mode=geo.padding_mode, **options)
        kernel = np.asarray(weight, np.float64)
    return Numbers(np.asarray(x, np.float64), kernel, float(bias), y[0, 0].astype(np.float64))


@dataclass(frozen=True)
class Tap:
    """One kernel tap of a window: grid cell (row, col) times kernel[i, j]."""

    row: int
    col: int
    i: int
    j: int


@dataclass(frozen=True)
class Diagram:
    """Everything a picture of one convolution shows, frame by frame (frame ``k`` is
    output ``k`` in row-major order)."""

    geometry: ConvGeometry
    rows: Axis
    cols: Axis
    numbers: Numbers | None
    frames: int  # frames drawn: the output cells, at most MAX_FRAMES
    padding_spec: object = None  # the user's padding ("same" is explained in the notes)

    @cached_property
    def notes(self) -> tuple[str, ...]:
        """The captions under the picture, the same in every frame."""
        return tuple(captions.notes(self))

    @property
    def grid_shape(self) -> tuple[int, int]:
        return len(self.rows.kinds), len(self.cols.kinds)

    @property
    def output_shape(self) -> tuple[int, int]:
        return self.rows.outputs, self.cols.outputs

    def kind(self, r: int, c: int) -> str:
        """One of "input", "pad", "zero" (a zero inserted between a transposed input's cells)."""
        kinds = (self.rows.kinds[r], self.cols.kinds[c])
        return "pad" if "pad" in kinds else "zero" if "zero" in kinds else "input"

    def source(self, r: int, c: int) -> tuple[int, int] | None:
        """The input cell that grid cell (r, c) shows, or None for a zero."""
        if self.kind(r, c) == "zero":
            return None
        sr, sc = self.rows.source[r], self.cols.source[c]
        return (sr, sc) if sr >= 0 and sc >= 0 else None

    def value(self, r: int, c: int) -> float:
        src = self.source(r, c)
        return 0.0 if src is None or self.numbers is None else float(self.numbers.x[src])

    def unread(self, r: int, c: int) -> bool:
        return r not in self._read[0] or c not in self._read[1]

    def extra(self, r: int, c: int) -> bool:
        """Grid cell there only for output_padding (or a negative padding after)."""
        return r in self._extra[0] or c in self._extra[1]

    def extra_output(self, oh: int, ow: int) -> bool:
        return (
            oh >= self.rows.outputs - self.rows.extra or ow >= self.cols.outputs - self.cols.extra
        )

    @cached_property
    def _read(self) -> tuple[set[int], set[int]]:
        return self.rows.read(), self.cols.read()

    @cached_property
    def _extra(self) -> tuple[set[int], set[int]]:
        return self.rows.extra_grid(), self.cols.extra_grid()

    def position(self, k: int) -> tuple[int, int]:
        """Output (row, column) of frame ``k``."""
        return divmod(k, self.cols.outputs)

    def window(self, k: int) -> list[Tap]:
        """The taps of output ``k``'s window, kernel index as the window applies it."""
        oh, ow = self.position(k)
        rows, cols = self.rows.window(oh), self.cols.window(ow)
        return [Tap(r, c, i, j) for i, r in enumerate(rows) for j, c in enumerate(cols)]

    def reads(self, k: int) -> list[tuple[int, int]]:
        """The input cells output ``k`` reads, once per tap that reads them."""
        return [src for t in self.window(k) if (src := self.source(t.row, t.col)) is not None]

    def terms(self, k: int) -> list[tuple[float, float]]:
        """(cell value, kernel value) of each product in output ``k``'s sum; the zeros a
        transposed convolution inserts or pads with are left out."""
        n = self.numbers
        assert n is not None
        skip = ("zero", "pad") if self.geometry.transpose else ()
        return [
            (self.value(t.row, t.col), float(n.kernel[t.i, t.j]))
            for t in self.window(k)
            if self.kind(t.row, t.col) not in skip
        ]

    def frame_caption(self, k: int) -> str:
        """What frame ``k`` says: the sum being formed, or the cells the window covers."""
        return captions.frame_caption(self, k)


def build_diagram(
    geo: ConvGeometry,
    *,
    numbers: Numbers | None = None,
    padding_spec: object = None,
    max_frames: int | None = None,
) -> Diagram:
    """The picture of one convolution (one channel: every channel has the same geometry).

    ``padding_spec`` is the user's padding (for the caption of "same"); grids over
    ``MAX_CELLS`` cells on a side are refused with a :class:`ParameterError`. Frames
    (output positions) past ``max_frames`` (default ``MAX_FRAMES``) are left out.

    Examples
    --------
    >>> from convcli.conv.geometry import conv2d_geometry
    >>> d = build_diagram(conv2d_geometry((1, 1, 5, 5), (1, 1, 3, 3), stride=2, padding=1))
    >>> d.grid_shape, d.output_shape, d.frames
    ((7, 7), (3, 3), 9)
    >>> d.kind(0, 3), d.kind(1, 1), [(t.row, t.col) for t in d.window(1)][:3]
    ('pad', 'input', [(0, 2), (0, 3), (0, 4)])
    """
    (h, w), (kh, kw), (oh, ow) = geo.input_shape[2:], geo.kernel_size, geo.output_shape[2:]
    (sh, sw), (dh, dw), (t, b, left, right) = geo.stride, geo.dilation, geo.padding
    if geo.transpose:
        op = geo.output_padding
        rows = transposed_axis(h, kh, sh, dh, t, b, op[0], oh)
        cols = transposed_axis(w, kw, sw, dw, left, right, op[1], ow)
    else:
        rows = direct_axis(h, kh, sh, dh, t, b, geo.padding_mode, oh)
        cols = direct_axis(w, kw, sw, dw, left, right, geo.padding_mode, ow)
    grid = (len(rows.kinds), len(cols.kinds))
    if max(grid) > MAX_CELLS:
        what = "stretched and padded" if geo.transpose else "padded"
        raise ParameterError(
            f"--diagram draws grids up to {MAX_CELLS}x{MAX_CELLS} cells; this {what} input "
            f"is {grid[0]}x{grid[1]}: use a smaller input (e.g. --input 7x7) or less padding"
        )
    frames = min(oh * ow, MAX_FRAMES if max_frames is None else max_frames)
    return Diagram(geo, rows, cols, numbers, frames, padding_spec)
