"""A convolution picture as SVG text: one static frame, no dependency.

Every grid cell is one ``<rect>`` with classes (``input``, ``pad``, ``zero``, ``window``,
``output``, ``current``, ``unread``, ``extra``) and ``data-row``/``data-col`` (and
``data-source``: the input cell a padded cell copies), so the picture can be restyled
with CSS and checked by a program.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from convcli.shapes.diagram import Diagram
from convcli.shapes.layout import COLORS, Line, Picture, Rect, Text, layout

FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"


def render_svg(d: Diagram, frame: int = 0, *, animated: bool = False) -> str:
    """Frame ``frame`` of the picture as an SVG document.

    Examples
    --------
    >>> from convcli.conv.geometry import conv2d_geometry
    >>> from convcli.shapes.diagram import build_diagram
    >>> svg = render_svg(build_diagram(conv2d_geometry((1, 1, 4, 4), (1, 1, 3, 3))))
    >>> svg.count('class="input'), svg.count('class="window"'), svg.count('class="output')
    (16, 9, 4)
    """
    return picture_svg(layout(d, frame, animated=animated), title=d.notes[0])


def picture_svg(pic: Picture, *, title: str = "") -> str:
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{pic.width}" height="{pic.height}" '
        f'viewBox="0 0 {pic.width} {pic.height}" font-family={quoteattr(FONT)}>',
        f"<title>{escape(title)}</title>",
        f'<rect class="background" width="100%" height="100%" fill="{COLORS["background"]}"/>',
    ]
    for item in pic.items:
        if isinstance(item, Rect):
            out.append(_rect(item))
        elif isinstance(item, Line):
            out.append(
                f'<line x1="{item.x1:g}" y1="{item.y1:g}" x2="{item.x2:g}" y2="{item.y2:g}" '
                f'stroke="{item.color}" stroke-width="{item.width:g}" stroke-linecap="round"/>'
            )
        elif isinstance(item, Text):
            out.append(_text(item))
    out.append("</svg>\n")
    return "\n".join(out)


def _rect(r: Rect) -> str:
    attrs = [f'x="{r.x:g}" y="{r.y:g}" width="{r.w:g}" height="{r.h:g}" fill="{r.fill}"']
    if r.classes:
        attrs.insert(0, f'class="{" ".join(r.classes)}"')
    if r.stroke:
        attrs.append(f'stroke="{r.stroke}" stroke-width="{r.width:g}"')
    if r.dashed:
        attrs.append('stroke-dasharray="3 2"')
    attrs += [f"data-{key}={quoteattr(value)}" for key, value in r.data]
    return f"<rect {' '.join(attrs)}/>"


def _text(t: Text) -> str:
    weight = ' font-weight="bold"' if t.bold else ""
    return (
        f'<text x="{t.x:g}" y="{t.y:g}" font-size="{t.size:g}" fill="{t.color}" '
        f'text-anchor="{t.anchor}" dominant-baseline="central"{weight}>{escape(t.text)}</text>'
    )
