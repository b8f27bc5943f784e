"""Where everything of a convolution picture goes: one frame of a
:class:`~convcli.shapes.diagram.Diagram` as rectangles, lines and text in pixels.

The SVG writer (:mod:`convcli.shapes.svg`) and the raster painter
(:mod:`convcli.shapes.raster`) both paint this, so the two cannot disagree. Every
grid cell is one rectangle whose classes say what it is (``input``, ``pad``, ``zero``,
``output``; ``current`` for the output being computed; ``unread``, ``extra``), and each
tap of the window is one more rectangle of class ``window`` on top.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from convcli.shapes.captions import show_number, wrap
from convcli.shapes.diagram import Diagram

COLORS = {
    "input": "#8fc1e3",
    "input-line": "#1f78b4",
    "pad": "#eeeeee",
    "zero": "#ffffff",
    "pad-line": "#9a9a9a",
    "unread": "#c9c9c9",
    "hatch": "#8a8a8a",
    "window": "#08306b",
    "output": "#b2e2d2",
    "output-line": "#1b7f6b",
    "current": "#1b7f6b",
    "pending": "#ffffff",
    "extra": "#e6550d",
    "text": "#1a1a1a",
    "grey": "#707070",
    "white": "#ffffff",
    "background": "#ffffff",
}
WINDOW_OPACITY = 0.33
MARGIN, LABEL, TITLE, GAP = 16, 18, 24, 64
CAPTION, LINE = 12, 17  # caption font size and line height
CHAR = 0.6  # width of a character in ems (the monospace font the SVG asks for)


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str
    stroke: str | None = None
    width: float = 1.0
    dashed: bool = False
    classes: tuple[str, ...] = ()
    data: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    color: str
    width: float = 1.0


@dataclass(frozen=True)
class Text:
    """Text centred vertically on ``y``; ``anchor`` is "start", "middle" or "end"."""

    x: float
    y: float
    text: str
    size: float
    color: str = COLORS["text"]
    anchor: str = "middle"
    bold: bool = False


@dataclass
class Picture:
    width: int
    height: int
    items: list[Rect | Line | Text] = field(default_factory=list)


def window_fill(under: str) -> str:
    """The window's colour over a cell of colour ``under``: a translucent shadow, blended
    here so that every renderer (and the GIF palette) gets the same colours."""
    top, bottom = (
        tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in (COLORS["window"], under)
    )
    mixed = (
        round(WINDOW_OPACITY * t + (1 - WINDOW_OPACITY) * b)
        for t, b in zip(top, bottom, strict=True)
    )
    return "#" + "".join(f"{v:02x}" for v in mixed)


def text_width(text: str, size: float) -> float:
    return len(text) * CHAR * size


def _cell_size(d: Diagram) -> int:
    if d.numbers is not None:
        n = d.numbers
        labels = [show_number(v) for v in (*n.x.ravel(), *n.y.ravel())]
        weights = [f"x{show_number(v)}" for v in n.kernel.ravel()]
        longest = max(text_width(s, 11) for s in labels + weights)
        return int(min(max(longest + 10, 34), 72))
    big = max(*d.grid_shape, *d.output_shape)
    size = 30 if big <= 10 else 24 if big <= 18 else 18
    return max(size, 28) if _source_labels(d) else size


def _source_labels(d: Diagram) -> bool:
    """Label cells with the input cell they show: padding modes that copy, small grids."""
    g = d.geometry
    return (
        d.numbers is None
        and not g.transpose
        and g.padding_mode != "zeros"
        and any(g.padding)
        and max(d.grid_shape) <= 16
    )


class Layout:
    """What every frame of a picture shares (cell size, places, wrapped notes), worked
    out once; :meth:`picture` draws one frame. ``animated``: outputs after the current
    one are still empty (an animation fills them in); otherwise the whole output shows."""

    def __init__(self, d: Diagram, *, animated: bool = False) -> None:
        self.d, self.animated = d, animated
        self.cell = cell = _cell_size(d)
        (gh, gw), (oh, ow) = d.grid_shape, d.output_shape
        h, w = d.geometry.input_shape[2:]
        padded = "stretched and padded" if d.geometry.transpose else "padded"
        self.titles = (
            f"input {h}x{w}" + (f", {padded} to {gh}x{gw}" if (gh, gw) != (h, w) else ""),
            f"output {oh}x{ow}",
        )
        self.ix, self.iy = MARGIN + LABEL, MARGIN + TITLE + LABEL
        self.input_width = max(gw * cell, text_width(self.titles[0], 13) - LABEL)
        self.ox = self.ix + self.input_width + GAP + LABEL
        right = self.ox + max(ow * cell, text_width(self.titles[1], 13)) + MARGIN
        self.width = int(max(right, 560))
        self.chars = max(int((self.width - 2 * MARGIN) / (CHAR * CAPTION)), 20)
        self.frame_lines = max(len(wrap(d.frame_caption(k), self.chars)) for k in range(d.frames))
        self.notes = [line for note in d.notes for line in wrap(note, self.chars)]

    def picture(self, frame: int = 0) -> Picture:
        d, cell, ix, iy, ox = self.d, self.cell, self.ix, self.iy, self.ox
        (gh, _), (oh, _) = d.grid_shape, d.output_shape
        pic = Picture(self.width, 0)
        items = pic.items
        items.append(Text(ix - LABEL, MARGIN + 8, self.titles[0], 13, anchor="start", bold=True))
        items.append(Text(ox - LABEL, MARGIN + 8, self.titles[1], 13, anchor="start", bold=True))
        _input_grid(d, items, ix, iy, cell, frame)
        _output_grid(d, items, ox, iy, cell, frame, self.animated)
        _arrow(items, ix + self.input_width + 12, ox - LABEL - 12, iy + min(gh, oh) * cell / 2)
        y = iy + max(gh, oh) * cell + 18
        lines = wrap(d.frame_caption(frame), self.chars)
        for line in lines:
            items.append(Text(MARGIN, y, line, CAPTION, anchor="start", bold=True))
            y += LINE
        y += LINE * (self.frame_lines - len(lines))
        y = _legend(d, items, y + 6, self.width, self.animated) + 8
        for line in self.notes:
            items.append(Text(MARGIN, y, line, CAPTION, anchor="start"))
            y += LINE
        pic.height = int(y + MARGIN - LINE / 2)
        return pic


def layout(d: Diagram, frame: int = 0, *, animated: bool = False) -> Picture:
    """Frame ``frame`` of the picture (see :class:`Layout`)."""
    return Layout(d, animated=animated).picture(frame)


def _input_grid(d: Diagram, items: list, x0: float, y0: float, cell: int, frame: int) -> None:
    rows, cols = d.rows, d.cols
    labels = _source_labels(d)
    for r in range(len(rows.kinds)):
        items.append(
            _axis_label(rows.kinds[r], rows.source[r], x0 - 4, y0 + (r + 0.5) * cell, "end")
        )
    for c in range(len(cols.kinds)):
        items.append(_axis_label(cols.kinds[c], cols.source[c], x0 + (c + 0.5) * cell, y0 - 9))
    window = {(t.row, t.col): t for t in d.window(frame)}
    texts, fills = [], {}
    for r in range(len(rows.kinds)):
        for c in range(len(cols.kinds)):
            kind, x, y = d.kind(r, c), x0 + c * cell, y0 + r * cell
            classes = [kind]
            fill, stroke = COLORS[kind], COLORS["input-line" if kind == "input" else "pad-line"]
            if d.unread(r, c):
                classes.append("unread")
                fill = COLORS["unread"]
            fills[r, c] = fill
            if d.extra(r, c):
                classes.append("extra")
                stroke = COLORS["extra"]
            src = d.source(r, c)
            data = (("row", str(r)), ("col", str(c)))
            if src is not None:
                data += (("source", f"{src[0]},{src[1]}"),)
            if d.numbers is not None:
                data += (("value", repr(d.value(r, c))),)
            width = 1.5 if d.extra(r, c) else 1.0
            dashed = kind != "input"
            items.append(Rect(x, y, cell, cell, fill, stroke, width, dashed, tuple(classes), data))
            if "unread" in classes:
                items.append(Line(x + 2, y + cell - 2, x + cell - 2, y + 2, COLORS["hatch"]))
            under = (r, c) in window
            color = COLORS["white"] if under else COLORS["text" if kind == "input" else "grey"]
            if d.numbers is not None:
                shift = -cell * 0.14 if under else 0
                texts.append(
                    Text(x + cell / 2, y + cell / 2 + shift, show_number(d.value(r, c)), 11, color)
                )
            elif labels and src is not None:
                texts.append(Text(x + cell / 2, y + cell / 2, f"{src[0]},{src[1]}", 9, color))
    for (r, c), tap in window.items():
        x, y = x0 + c * cell, y0 + r * cell
        data = (("row", str(r)), ("col", str(c)), ("tap", f"{tap.i},{tap.j}"))
        fill = window_fill(fills[r, c])
        items.append(
            Rect(x, y, cell, cell, fill, COLORS["window"], 2.0, classes=("window",), data=data)
        )
        if d.numbers is not None:
            weight = f"x{show_number(d.numbers.kernel[tap.i, tap.j])}"
            texts.append(Text(x + cell / 2, y + cell * 0.75, weight, 9, COLORS["white"]))
    taps = list(window)
    top, left = min(r for r, _ in taps), min(c for _, c in taps)
    bottom, right = max(r for r, _ in taps) + 1, max(c for _, c in taps) + 1
    x, y, w, h = x0 + left * cell, y0 + top * cell, (right - left) * cell, (bottom - top) * cell
    items.append(Rect(x, y, w, h, "none", COLORS["window"], 2.5, classes=("window-extent",)))
    items.extend(texts)


def _axis_label(kind: str, source: int, x: float, y: float, anchor: str = "middle") -> Text:
    """The input row/column a grid row/column shows: black for input, grey for a copy."""
    text = str(source) if source >= 0 else ""
    return Text(x, y, text, 9, COLORS["text" if kind == "input" else "grey"], anchor)


def _output_grid(
    d: Diagram, items: list, x0: float, y0: float, cell: int, frame: int, animated: bool
) -> None:
    oh, ow = d.output_shape
    for r in range(oh):
        items.append(Text(x0 - 4, y0 + (r + 0.5) * cell, str(r), 9, COLORS["grey"], "end"))
    for c in range(ow):
        items.append(Text(x0 + (c + 0.5) * cell, y0 - 9, str(c), 9, COLORS["grey"]))
    texts = []
    for r in range(oh):
        for c in range(ow):
            index, x, y = r * ow + c, x0 + c * cell, y0 + r * cell
            state = (
                "current"
                if index == frame
                else "pending"
                if animated and index > frame
                else "output"
            )
            classes = ["output"] + (["current"] if state == "current" else [])
            stroke = COLORS["output-line"]
            if d.extra_output(r, c):
                classes.append("extra")
                stroke = COLORS["extra"]
            data = (("row", str(r)), ("col", str(c)))
            if d.numbers is not None:
                data += (("value", repr(float(d.numbers.y[r, c]))),)
            width = 2.0 if "extra" in classes else 1.0
            items.append(
                Rect(x, y, cell, cell, COLORS[state], stroke, width, False, tuple(classes), data)
            )
            if d.numbers is not None and state != "pending":
                color = COLORS["white" if state == "current" else "text"]
                texts.append(
                    Text(x + cell / 2, y + cell / 2, show_number(d.numbers.y[r, c]), 11, color)
                )
    items.extend(texts)


def _arrow(items: list, x1: float, x2: float, y: float) -> None:
    if x2 - x1 < 12:
        return
    color = COLORS["grey"]
    items.append(Line(x1, y, x2, y, color, 2.0))
    items.append(Line(x2 - 8, y - 5, x2, y, color, 2.0))
    items.append(Line(x2 - 8, y + 5, x2, y, color, 2.0))


def _legend(d: Diagram, items: list, y: float, width: int, animated: bool) -> float:
    """Swatches for what the picture holds; returns the y below them."""
    gh, gw = d.grid_shape
    kinds = {d.kind(r, c) for r in range(gh) for c in range(gw)}
    unread = any(d.unread(r, c) for r in range(gh) for c in range(gw))
    extra = d.rows.extra or d.cols.extra
    mode = "" if d.geometry.transpose else f" ({d.geometry.padding_mode})"
    entries = [("input", COLORS["input"], COLORS["input-line"], "input")]
    if "pad" in kinds:
        entries.append(("pad", COLORS["pad"], COLORS["pad-line"], f"padding{mode}"))
    if "zero" in kinds:
        entries.append(("zero", COLORS["zero"], COLORS["pad-line"], "inserted zero"))
    entries.append(("window", window_fill(COLORS["input"]), COLORS["window"], "kernel window"))
    entries.append(("output", COLORS["output"], COLORS["output-line"], "output"))
    entries.append(("current", COLORS["current"], COLORS["output-line"], "being computed"))
    if animated:
        entries.append(("pending", COLORS["pending"], COLORS["output-line"], "to come"))
    if unread:
        entries.append(("unread", COLORS["unread"], COLORS["pad-line"], "never read"))
    if extra:
        why = "output_padding" if any(d.geometry.output_padding) else "padding 'same'"
        entries.append(("extra", COLORS["zero"], COLORS["extra"], f"added by {why}"))
    x = MARGIN
    for name, fill, stroke, label in entries:
        step = 14 + 6 + text_width(label, 11) + 16
        if x + step > width - MARGIN and x > MARGIN:
            x, y = MARGIN, y + LINE + 2
        dashed = name in ("pad", "zero")
        items.append(
            Rect(x, y - 7, 14, 14, fill, stroke, 1.0, dashed, ("legend",), (("legend", name),))
        )
        items.append(Text(x + 20, y, label, 11, anchor="start"))
        x += step
    return y + LINE + 4
